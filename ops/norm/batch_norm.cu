// CUDA twin of batch_norm.cpp. x is contiguous [N, C, S]; channel c's M = N*S values sit at
// (n*C + c)*S + s.
//
// Forward (training): channel_partials gives per-(channel, split) shifted sums (sum d, sum d^2
// with d = x - x[first element of the channel], as the CPU: no cancellation when |mean| >> std),
// in f64; one thread per channel then adds its splits in order, derives mean / variance /
// invstd, the per-channel affine (a, b) and updates the running statistics on the device (no
// host sync). Eval mode skips the statistics. y = x * a + b is elementwise.
// Backward: the same partial scheme for sum(g) and sum(g * (x - mean)), one thread per channel
// for dweight / dbias and the coefficients of dx, then an elementwise dx.
#include "ops/norm/cuda_reduce.cuh"
#include "ops/norm/cuda_slots.h"

namespace evit {
namespace {
using namespace cuda_reduce;

// An optional [C] parameter: pointer (null when undefined) and stride.
template <class T>
struct Param {
  T* p = nullptr;
  int64_t stride = 0;
  __device__ double at(int64_t c, double dflt) const {
    return p ? static_cast<double>(p[c * stride]) : dflt;
  }
};

template <class T>
Param<T> param_of(const Tensor& t) {
  Param<T> r;
  if (t.defined()) {
    r.p = t.data_ptr<T>();
    r.stride = t.stride(0);
  }
  return r;
}

template <class T>
struct ShiftedSums {
  const T* x;
  int64_t C, S;
  __device__ void operator()(int64_t c, int64_t n, int64_t s, double& a, double& b) const {
    const double d = static_cast<double>(x[(n * C + c) * S + s]) - static_cast<double>(x[c * S]);
    a += d;
    b += d * d;
  }
};

// One thread per channel: statistics, saved mean / invstd, affine coefficients, running stats.
template <class T>
__global__ void bn_finalize_kernel(int64_t C, int64_t S, int64_t M, int64_t splits,
                                   const double* partial, const T* x, bool training,
                                   Param<T> weight, Param<T> bias, Param<T> rmean, Param<T> rvar,
                                   double momentum, double eps, T* save_mean, T* save_invstd,
                                   double* coef) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C;
       c += int64_t(gridDim.x) * blockDim.x) {
    double mean, var, unbiased = 0;
    if (training) {
      const double shift = static_cast<double>(x[c * S]);
      double ds, dq;
      channel_total(partial, c, splits, ds, dq);
      const double dm = ds / static_cast<double>(M);
      double m2 = dq - ds * dm;  // sum of squared deviations
      if (m2 < 0) m2 = 0;
      mean = shift + dm;
      var = m2 / static_cast<double>(M);
      unbiased = m2 / static_cast<double>(M - 1);
    } else {
      mean = rmean.at(c, 0);
      var = rvar.at(c, 1);
    }
    const double invstd = 1.0 / sqrt(var + eps);
    save_mean[c] = static_cast<T>(mean);
    save_invstd[c] = static_cast<T>(invstd);
    const double a = invstd * weight.at(c, 1);
    coef[2 * c] = a;
    coef[2 * c + 1] = bias.at(c, 0) - mean * a;
    if (training && rmean.p) {
      // PyTorch's order of terms; the mean enters rounded to T, as on the CPU.
      T& rm = rmean.p[c * rmean.stride];
      T& rv = rvar.p[c * rvar.stride];
      rm = static_cast<T>(momentum * static_cast<double>(save_mean[c]) +
                          (1 - momentum) * static_cast<double>(rm));
      rv = static_cast<T>(momentum * unbiased + (1 - momentum) * static_cast<double>(rv));
    }
  }
}

template <class T>
__global__ void bn_apply_kernel(int64_t n, int64_t C, int64_t S, const T* x, const double* coef,
                                T* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = (i / S) % C;
    y[i] = x[i] * static_cast<T>(coef[2 * c]) + static_cast<T>(coef[2 * c + 1]);
  }
}

void forward_launch(const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Tensor& running_mean, const Tensor& running_var, bool training,
                    double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                    const Tensor& save_invstd) {
  cuda::check_same_cuda_device("batch_norm",
                               {&x, &weight, &bias, &running_mean, &running_var, &y});
  cuda::DeviceGuard guard(x);
  cudaStream_t st = cuda::stream_of(x);
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t S = N == 0 || C == 0 ? 0 : x.numel() / (N * C);
  const int64_t M = N * S;
  if (C == 0) return;
  const ChannelSplit cs = channel_split(M);
  Tensor coef = empty({2 * C}, {DType::f64, x.device()});
  dispatch_floating(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_ptr<T>();
    Tensor partial;
    if (training)
      partial = channel_partials(C, S, M, cs, ShiftedSums<T>{xp, C, S}, x);
    bn_finalize_kernel<T><<<cuda::blocks_for(C), kThreads, 0, st>>>(
        C, S, M, cs.splits, training ? partial.data_ptr<double>() : nullptr, xp, training,
        param_of<T>(weight), param_of<T>(bias), param_of<T>(running_mean),
        param_of<T>(running_var), momentum, eps, save_mean.data_ptr<T>(),
        save_invstd.data_ptr<T>(), coef.data_ptr<double>());
    EVIT_CUDA_LAUNCH_CHECK("bn_finalize_kernel");
    const int64_t n = x.numel();
    if (n == 0) return;
    bn_apply_kernel<T><<<cuda::blocks_for(n), kThreads, 0, st>>>(n, C, S, xp,
                                                                  coef.data_ptr<double>(),
                                                                  y.data_ptr<T>());
    EVIT_CUDA_LAUNCH_CHECK("bn_apply_kernel");
  });
}

// ---- backward
template <class T>
struct GradSums {
  const T* g;
  const T* x;
  const T* mean;
  int64_t C, S;
  __device__ void operator()(int64_t c, int64_t n, int64_t s, double& a, double& b) const {
    const int64_t i = (n * C + c) * S + s;
    const double gv = static_cast<double>(g[i]);
    a += gv;
    b += gv * (static_cast<double>(x[i]) - static_cast<double>(mean[c]));
  }
};

// One thread per channel: dweight, dbias and dx = ka*g + kx*(x - mean) + k0 (the CPU's form).
template <class T>
__global__ void bn_backward_finalize_kernel(int64_t C, int64_t M, int64_t splits,
                                            const double* partial, bool training, Param<T> weight,
                                            const T* save_invstd, T* dw, T* db, double* coef) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C;
       c += int64_t(gridDim.x) * blockDim.x) {
    const double invstd = static_cast<double>(save_invstd[c]);
    double sum_g = 0, dot = 0;
    if (partial) channel_total(partial, c, splits, sum_g, dot);
    if (dw) dw[c] = static_cast<T>(dot * invstd);
    if (db) db[c] = static_cast<T>(sum_g);
    const double a = weight.at(c, 1) * invstd;
    double kx = 0, k0 = 0;
    if (training) {
      const double proj = dot * invstd * invstd / static_cast<double>(M);
      const double mg = sum_g / static_cast<double>(M);
      kx = -a * proj;
      k0 = -a * mg;
    }
    coef[3 * c] = a;
    coef[3 * c + 1] = kx;
    coef[3 * c + 2] = k0;
  }
}

template <class T>
__global__ void bn_dx_kernel(int64_t n, int64_t C, int64_t S, const T* g, const T* x,
                             const T* mean, const double* coef, T* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = (i / S) % C;
    const T ka = static_cast<T>(coef[3 * c]), kx = static_cast<T>(coef[3 * c + 1]),
            k0 = static_cast<T>(coef[3 * c + 2]);
    dx[i] = ka * g[i] + kx * (x[i] - mean[c]) + k0;
  }
}

void backward_launch(const Tensor& x, const Tensor& g, const Tensor& weight,
                     const Tensor& save_mean, const Tensor& save_invstd, bool training,
                     const Tensor& dx, const Tensor& dw, const Tensor& db) {
  cuda::check_same_cuda_device("batch_norm backward", {&x, &g, &weight, &dx, &dw, &db});
  cuda::DeviceGuard guard(x);
  cudaStream_t st = cuda::stream_of(x);
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t S = N == 0 || C == 0 ? 0 : x.numel() / (N * C);
  const int64_t M = N * S;
  if (C == 0) return;
  const bool reduce = training || dw.defined() || db.defined();
  const ChannelSplit cs = channel_split(M);
  Tensor coef = empty({3 * C}, {DType::f64, x.device()});
  dispatch_floating(x.dtype(), "batch_norm backward", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    const T* mp = save_mean.data_ptr<T>();
    Tensor partial;
    if (reduce) partial = channel_partials(C, S, M, cs, GradSums<T>{gp, xp, mp, C, S}, x);
    bn_backward_finalize_kernel<T><<<cuda::blocks_for(C), kThreads, 0, st>>>(
        C, M, cs.splits, reduce ? partial.data_ptr<double>() : nullptr, training,
        param_of<T>(weight), save_invstd.data_ptr<T>(), dw.defined() ? dw.data_ptr<T>() : nullptr,
        db.defined() ? db.data_ptr<T>() : nullptr, coef.data_ptr<double>());
    EVIT_CUDA_LAUNCH_CHECK("bn_backward_finalize_kernel");
    const int64_t n = x.numel();
    if (!dx.defined() || n == 0) return;
    bn_dx_kernel<T><<<cuda::blocks_for(n), kThreads, 0, st>>>(n, C, S, gp, xp, mp,
                                                               coef.data_ptr<double>(),
                                                               dx.data_ptr<T>());
    EVIT_CUDA_LAUNCH_CHECK("bn_dx_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(batch_norm_forward_cuda, forward_launch);
EVIT_REGISTER_CUDA_KERNEL(batch_norm_backward_cuda, backward_launch);

}  // namespace evit
