// CUDA twin of softmax.cpp: one team per row (see softmax_kernels.cuh).
#include "ops/softmax/cuda_slots.h"
#include "ops/softmax/softmax_kernels.cuh"

namespace evit {
namespace {
using namespace softmax_cuda;

void forward_launch(const Tensor& x, int64_t outer, int64_t D, int64_t inner, bool log,
                    const Tensor& y) {
  cuda::check_same_cuda_device(log ? "log_softmax" : "softmax", {&x, &y});
  cuda::DeviceGuard guard(x);
  dispatch_floating(x.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    if (log) launch_softmax_forward<T, true>(x.data_ptr<T>(), y.data_ptr<T>(), outer, D, inner, x);
    else launch_softmax_forward<T, false>(x.data_ptr<T>(), y.data_ptr<T>(), outer, D, inner, x);
  });
}

void backward_launch(const Tensor& y, const Tensor& g, int64_t outer, int64_t D, int64_t inner,
                     bool log, const Tensor& gx) {
  cuda::check_same_cuda_device("softmax backward", {&y, &g, &gx});
  const int64_t rows = outer * inner;
  if (rows == 0 || D == 0) return;
  cuda::DeviceGuard guard(y);
  cudaStream_t st = cuda::stream_of(y);
  dispatch_floating(y.dtype(), "softmax backward", [&](auto tag) {
    using T = decltype(tag);
    with_team(team_for(D, inner == 1), rows, [&](auto kind, unsigned blocks) {
      constexpr TeamKind K = decltype(kind)::value;
      if (log)
        softmax_backward_kernel<T, K, true><<<blocks, kThreads, 0, st>>>(
            y.data_ptr<T>(), g.data_ptr<T>(), gx.data_ptr<T>(), rows, D, inner);
      else
        softmax_backward_kernel<T, K, false><<<blocks, kThreads, 0, st>>>(
            y.data_ptr<T>(), g.data_ptr<T>(), gx.data_ptr<T>(), rows, D, inner);
      EVIT_CUDA_LAUNCH_CHECK("softmax_backward_kernel");
    });
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(softmax_forward_cuda, forward_launch);
EVIT_REGISTER_CUDA_KERNEL(softmax_backward_cuda, backward_launch);

}  // namespace evit
