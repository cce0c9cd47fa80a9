// CUDA kernels of the pointwise family: each functor of ops/pointwise/list.h, registered once.
#include "ops/iter/pointwise_cuda.cuh"
#include "ops/pointwise/cuda_slots.h"
#include "ops/pointwise/functors.h"
#include "ops/pointwise/list.h"

namespace evit {
using namespace pointwise;

// Every functor of ops/pointwise/list.h, registered from the list itself.
#define EVIT_CUDA_UNARY_ENTRY(fn, Op) EVIT_CUDA_UNARY(Op);
#define EVIT_CUDA_UNARY_FUNCTOR(Op) EVIT_CUDA_UNARY(Op);
#define EVIT_CUDA_BINARY_FUNCTOR(Op) EVIT_CUDA_BINARY(Op);
#define EVIT_CUDA_FORWARD_BINARY_FUNCTOR(Op) EVIT_CUDA_BINARY_FORWARD(Op);
EVIT_POINTWISE_ACTIVATIONS(EVIT_CUDA_UNARY_ENTRY)
EVIT_POINTWISE_MATH(EVIT_CUDA_UNARY_ENTRY)
EVIT_POINTWISE_OTHER_UNARY_FUNCTORS(EVIT_CUDA_UNARY_FUNCTOR)
EVIT_POINTWISE_BINARY_FUNCTORS(EVIT_CUDA_BINARY_FUNCTOR)
EVIT_POINTWISE_FORWARD_BINARY_FUNCTORS(EVIT_CUDA_FORWARD_BINARY_FUNCTOR)

namespace {
void where_launch(const Tensor& y, const Tensor& cond, const Tensor& a, const Tensor& b) {
  dispatch_all(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    cuda::cuda_map<T, bool, T, T>(y, WhereOp{}, cond, a, b);
  });
}
}  // namespace
EVIT_REGISTER_CUDA_KERNEL(where_cuda, where_launch);

}  // namespace evit
