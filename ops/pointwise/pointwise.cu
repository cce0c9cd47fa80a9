// CUDA kernels of the pointwise family: each functor of functors.h, registered once.
#include "ops/iter/pointwise_cuda.cuh"
#include "ops/pointwise/cuda_slots.h"
#include "ops/pointwise/functors.h"

namespace evit {
using namespace pointwise;

// activations and math
EVIT_CUDA_UNARY(ReluOp);
EVIT_CUDA_UNARY(Relu6Op);
EVIT_CUDA_UNARY(HardswishOp);
EVIT_CUDA_UNARY(GeluOp);
EVIT_CUDA_UNARY(GeluTanhOp);
EVIT_CUDA_UNARY(SiluOp);
EVIT_CUDA_UNARY(SigmoidOp);
EVIT_CUDA_UNARY(TanhOp);
EVIT_CUDA_UNARY(ExpOp);
EVIT_CUDA_UNARY(LogOp);
EVIT_CUDA_UNARY(SqrtOp);
EVIT_CUDA_UNARY(RsqrtOp);
EVIT_CUDA_UNARY(AbsOp);
EVIT_CUDA_UNARY(PowOp);
EVIT_CUDA_UNARY(ClampOp);
EVIT_CUDA_UNARY(NegOp);

// binaries with gradients
EVIT_CUDA_BINARY(MulOp);
EVIT_CUDA_BINARY(DivOp);
EVIT_CUDA_BINARY(MaximumOp);
EVIT_CUDA_BINARY(MinimumOp);

// forward-only binaries
EVIT_CUDA_BINARY_FORWARD(AddOp);
EVIT_CUDA_BINARY_FORWARD(SubOp);
EVIT_CUDA_BINARY_FORWARD(EqOp);
EVIT_CUDA_BINARY_FORWARD(NeOp);
EVIT_CUDA_BINARY_FORWARD(LtOp);
EVIT_CUDA_BINARY_FORWARD(LeOp);
EVIT_CUDA_BINARY_FORWARD(GtOp);
EVIT_CUDA_BINARY_FORWARD(GeOp);
EVIT_CUDA_BINARY_FORWARD(AddScaledInplaceOp);
EVIT_CUDA_BINARY_FORWARD(MulInplaceOp);

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
