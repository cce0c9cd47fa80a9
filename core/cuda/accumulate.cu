// acc += x on the GPU: the one addition of the data-parallel summation tree (core/dist/tree_reduce.h).
// One IEEE addition per element, as on the CPU, so a tree summed on the GPU has the CPU's bits.
#include "core/cuda.h"
#include "core/cuda/elementwise.cuh"
#include "core/error.h"

namespace evit::cuda {
namespace {

template <class T>
struct AccumulateOp {
  __device__ T operator()(T a, T b) const { return a + b; }
};

void accumulate_cuda(const Tensor& acc, const Tensor& x) {
  EVIT_CHECK(acc.sizes() == x.sizes() && acc.dtype() == x.dtype(), "accumulate: ", acc.desc(), " += ", x.desc(),
             " (same shape and dtype needed)");
  switch (acc.dtype()) {
    case DType::f32: return cuda_map<float, float, float>(acc, AccumulateOp<float>{}, acc, x);
    case DType::f64: return cuda_map<double, double, double>(acc, AccumulateOp<double>{}, acc, x);
    case DType::i64: return cuda_map<int64_t, int64_t, int64_t>(acc, AccumulateOp<int64_t>{}, acc, x);
    default: EVIT_THROW("accumulate: ", acc.desc(), " (f32, f64 or i64 expected)");
  }
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(cuda_accumulate, accumulate_cuda);

}  // namespace evit::cuda
