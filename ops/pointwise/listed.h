// Whether a functor is in ops/pointwise/list.h, as compile-time flags the generic op templates
// check (ops/iter/pointwise.h).
#pragma once
#include "ops/pointwise/functors.h"
#include "ops/pointwise/list.h"

namespace evit::pointwise {

template <class Op> inline constexpr bool listed_unary = false;
template <class Op> inline constexpr bool listed_binary = false;          // forward and backward kernels
template <class Op> inline constexpr bool listed_forward_binary = false;  // forward kernel only

#define EVIT_LISTED_UNARY_ENTRY(fn, Op) template <> inline constexpr bool listed_unary<Op> = true;
#define EVIT_LISTED_UNARY(Op) template <> inline constexpr bool listed_unary<Op> = true;
#define EVIT_LISTED_BINARY(Op) template <> inline constexpr bool listed_binary<Op> = true;
#define EVIT_LISTED_FORWARD_BINARY(Op) template <> inline constexpr bool listed_forward_binary<Op> = true;
EVIT_POINTWISE_ACTIVATIONS(EVIT_LISTED_UNARY_ENTRY)
EVIT_POINTWISE_MATH(EVIT_LISTED_UNARY_ENTRY)
EVIT_POINTWISE_OTHER_UNARY_FUNCTORS(EVIT_LISTED_UNARY)
EVIT_POINTWISE_BINARY_FUNCTORS(EVIT_LISTED_BINARY)
EVIT_POINTWISE_FORWARD_BINARY_FUNCTORS(EVIT_LISTED_FORWARD_BINARY)
#undef EVIT_LISTED_UNARY_ENTRY
#undef EVIT_LISTED_UNARY
#undef EVIT_LISTED_BINARY
#undef EVIT_LISTED_FORWARD_BINARY

}  // namespace evit::pointwise
