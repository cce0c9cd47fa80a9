// The one list of pointwise functors (ops/pointwise/functors.h). It declares the plain unary ops
// (ops/activation.h, ops/pointwise.h), defines them (ops/pointwise/unary.cpp) and registers every
// listed functor's CUDA kernels (ops/pointwise/pointwise.cu). The generic op templates
// (ops/iter/pointwise.h) only accept listed functors: a functor left out of this list is a
// compile error, never a CUDA tensor that finds no kernel at run time.
//
// Adding a plain unary op f with functor FOp: one entry X(f, FOp) in the activation or math list.
// A functor with parameters or several entry points (gelu, pow, clamp, the binaries): one entry
// X(FOp) in the matching functor list, and its op written by hand in its family's .cpp.
#pragma once

// Plain unary ops: Tensor f(const Tensor& x). Activations are declared in ops/activation.h,
// math functions in ops/pointwise.h.
#define EVIT_POINTWISE_ACTIVATIONS(X) \
  X(relu, ReluOp)                     \
  X(relu6, Relu6Op)                   \
  X(hardswish, HardswishOp)           \
  X(silu, SiluOp)                     \
  X(sigmoid, SigmoidOp)               \
  X(tanh, TanhOp)
#define EVIT_POINTWISE_MATH(X) \
  X(neg, NegOp)                \
  X(exp, ExpOp)                \
  X(log, LogOp)                \
  X(sqrt, SqrtOp)              \
  X(rsqrt, RsqrtOp)            \
  X(abs, AbsOp)

// Unary functors whose ops are written by hand (parameters, or two ops of one functor).
#define EVIT_POINTWISE_OTHER_UNARY_FUNCTORS(X) X(GeluOp) X(GeluTanhOp) X(PowOp) X(ClampOp)
// Binary functors with gradients, and forward-only binaries (their gradients are written in ops,
// or they have none: comparisons, in-place accumulation).
#define EVIT_POINTWISE_BINARY_FUNCTORS(X) X(MulOp) X(DivOp) X(MaximumOp) X(MinimumOp)
#define EVIT_POINTWISE_FORWARD_BINARY_FUNCTORS(X) \
  X(AddOp) X(SubOp) X(EqOp) X(NeOp) X(LtOp) X(LeOp) X(GtOp) X(GeOp) X(AddScaledInplaceOp) X(MulInplaceOp)

// Declarations of the plain unary ops (used by the family headers).
#define EVIT_POINTWISE_DECLARE_UNARY(fn, Op) Tensor fn(const Tensor& x);
