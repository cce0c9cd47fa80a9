// CUDA twin of elementwise.cpp: the functors of ops/loss/functors.h per element; reductions
// through deterministic_sums (fixed ranges, fixed tree) in f64.
#include "ops/loss/cuda_slots.h"
#include "ops/loss/functors.h"
#include "ops/norm/cuda_reduce.cuh"

namespace evit {
namespace {
using namespace cuda_reduce;
using namespace loss_functors;

template <class T, class Op>
struct LossAt {
  Op op;
  const T* x;
  const T* t;
  const T* pw;
  __device__ double operator()(int, int64_t i) const {
    return op.loss(static_cast<double>(x[i]), static_cast<double>(t[i]),
                   pw ? static_cast<double>(pw[i]) : 1.0);
  }
};

template <class T, class Op>
__global__ void loss_none_kernel(int64_t n, LossAt<T, Op> f, T* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = static_cast<T>(f(0, i));
}

// out = sum (or sum / n for the mean), from the device total.
template <class T>
__global__ void loss_finish_kernel(const double* total, double divisor, T* out) {
  if (blockIdx.x == 0 && threadIdx.x == 0) out[0] = static_cast<T>(total[0] / divisor);
}

template <class T, class Op>
__global__ void loss_backward_kernel(int64_t n, Op op, const T* x, const T* t, const T* pw,
                                     const T* g, bool per_element, double scale, T* gx, T* gt,
                                     T* gp) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const double gv = scale * static_cast<double>(per_element ? g[i] : g[0]);
    const Grads d = op.grads(static_cast<double>(x[i]), static_cast<double>(t[i]),
                             pw ? static_cast<double>(pw[i]) : 1.0);
    if (gx) gx[i] = static_cast<T>(gv * d.dx);
    if (gt) gt[i] = static_cast<T>(gv * d.dt);
    if (gp) gp[i] = static_cast<T>(gv * d.dpw);
  }
}

// Calls f(op) with the functor of `kind`.
template <class F>
void with_op(int kind, double beta, const F& f) {
  switch (kind) {
    case BceOp::kind: f(BceOp{}); break;
    case MseOp::kind: f(MseOp{}); break;
    case L1Op::kind: f(L1Op{}); break;
    case SmoothL1Op::kind: f(SmoothL1Op{beta}); break;
    default: EVIT_THROW("elementwise loss: unknown CUDA loss kind ", kind);
  }
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

void forward_launch(int kind, double beta, const Tensor& x, const Tensor& t, const Tensor& pw,
                    Reduction red, const Tensor& out) {
  cuda::check_same_cuda_device("elementwise loss", {&x, &t, &pw, &out});
  cuda::DeviceGuard guard(x);
  cudaStream_t st = cuda::stream_of(x);
  const int64_t n = x.numel();
  dispatch_floating(x.dtype(), "elementwise loss", [&](auto tag) {
    using T = decltype(tag);
    with_op(kind, beta, [&](auto op) {
      using Op = decltype(op);
      LossAt<T, Op> f{op, x.data_ptr<T>(), t.data_ptr<T>(), ptr_or_null<T>(pw)};
      if (red == Reduction::none) {
        if (n == 0) return;
        loss_none_kernel<T, Op><<<cuda::blocks_for(n), kThreads, 0, st>>>(n, f, out.data_ptr<T>());
        EVIT_CUDA_LAUNCH_CHECK("loss_none_kernel");
        return;
      }
      Tensor total = empty({1}, {DType::f64, x.device()});
      deterministic_sums(1, n, f, total.data_ptr<double>(), x);
      const double divisor = red == Reduction::mean ? static_cast<double>(n) : 1.0;
      loss_finish_kernel<T><<<1, 32, 0, st>>>(total.data_ptr<double>(), divisor, out.data_ptr<T>());
      EVIT_CUDA_LAUNCH_CHECK("loss_finish_kernel");
    });
  });
}

void backward_launch(int kind, double beta, const Tensor& x, const Tensor& t, const Tensor& pw,
                     const Tensor& g, Reduction red, const Tensor& gx, const Tensor& gt,
                     const Tensor& gpw) {
  cuda::check_same_cuda_device("elementwise loss backward", {&x, &t, &pw, &g, &gx, &gt, &gpw});
  const int64_t n = x.numel();
  if (n == 0) return;
  cuda::DeviceGuard guard(x);
  cudaStream_t st = cuda::stream_of(x);
  const double scale = red == Reduction::mean ? 1.0 / static_cast<double>(n) : 1.0;
  dispatch_floating(x.dtype(), "elementwise loss backward", [&](auto tag) {
    using T = decltype(tag);
    with_op(kind, beta, [&](auto op) {
      using Op = decltype(op);
      loss_backward_kernel<T, Op><<<cuda::blocks_for(n), kThreads, 0, st>>>(
          n, op, x.data_ptr<T>(), t.data_ptr<T>(), ptr_or_null<T>(pw), g.data_ptr<T>(),
          red == Reduction::none, scale, gx.defined() ? gx.data_ptr<T>() : nullptr,
          gt.defined() ? gt.data_ptr<T>() : nullptr, gpw.defined() ? gpw.data_ptr<T>() : nullptr);
      EVIT_CUDA_LAUNCH_CHECK("loss_backward_kernel");
    });
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(elementwise_loss_forward_cuda, forward_launch);
EVIT_REGISTER_CUDA_KERNEL(elementwise_loss_backward_cuda, backward_launch);

}  // namespace evit
