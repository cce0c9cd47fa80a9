// CUDA twins of layer_norm.cpp.
//
// layer_norm: x is [R, D] contiguous rows; a warp (short rows) or a block (long rows) owns one
// row at a time: mean, then the sum of squared deviations (two passes over a row that stays in
// cache), in f64 like the CPU. dweight / dbias sum over rows: block (column tile, row chunk)
// writes one partial per column and chunk, and one thread per column adds the chunks in order.
//
// layer_norm2d: x is [N, C, S]; one thread per pixel (n, s) loops over the C channels (strided
// by S, so neighbouring threads read neighbouring pixels: coalesced), in the CPU's channel order.
// dweight / dbias are per-channel sums over all pixels: channel_partials + an ordered finalize.
#include "ops/norm/cuda_reduce.cuh"
#include "ops/norm/cuda_slots.h"

namespace evit {
namespace {
using namespace cuda_reduce;

template <class T>
__device__ __forceinline__ double param_or(const T* p, int64_t j, double dflt) {
  return p ? static_cast<double>(p[j]) : dflt;
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// ---------------------------------------------------------------------------- layer_norm
template <class T, TeamKind K>
__global__ void ln_forward_kernel(const T* x, const T* w, const T* b, int64_t R, int64_t D,
                                  double eps, T* y, T* save_mean, T* save_rstd) {
  using TM = Team<K>;
  const int lane = TM::lane(), size = TM::size();
  for (int64_t r = TM::first(); r < R; r += TM::step()) {
    const T* row = x + r * D;
    double s = 0;
    for (int64_t j = lane; j < D; j += size) s += static_cast<double>(row[j]);
    const double mean = TM::reduce(s, SumOp{}) / static_cast<double>(D);
    double m2 = 0;
    for (int64_t j = lane; j < D; j += size) {
      const double d = static_cast<double>(row[j]) - mean;
      m2 += d * d;
    }
    m2 = TM::reduce(m2, SumOp{});
    const double rstd = 1.0 / sqrt(m2 / static_cast<double>(D) + eps);
    if (lane == 0) {
      save_mean[r] = static_cast<T>(mean);
      save_rstd[r] = static_cast<T>(rstd);
    }
    T* out = y + r * D;
    for (int64_t j = lane; j < D; j += size)
      out[j] = static_cast<T>((static_cast<double>(row[j]) - mean) * rstd * param_or(w, j, 1.0) +
                              param_or(b, j, 0.0));
  }
}

// dx per row: rstd * (g*w - mean(g*w) - xhat * mean(g*w*xhat)).
template <class T, TeamKind K>
__global__ void ln_backward_dx_kernel(const T* x, const T* g, const T* w, const T* save_mean,
                                      const T* save_rstd, int64_t R, int64_t D, T* dx) {
  using TM = Team<K>;
  const int lane = TM::lane(), size = TM::size();
  for (int64_t r = TM::first(); r < R; r += TM::step()) {
    const T* xr = x + r * D;
    const T* gr = g + r * D;
    const double mean = static_cast<double>(save_mean[r]), rstd = static_cast<double>(save_rstd[r]);
    double a = 0, bs = 0;
    for (int64_t j = lane; j < D; j += size) {
      const double xhat = (static_cast<double>(xr[j]) - mean) * rstd;
      const double gw = static_cast<double>(gr[j]) * param_or(w, j, 1.0);
      a += gw;
      bs += gw * xhat;
    }
    a = TM::reduce(a, SumOp{});
    bs = TM::reduce(bs, SumOp{});
    const double ma = a / static_cast<double>(D), mb = bs / static_cast<double>(D);
    T* out = dx + r * D;
    for (int64_t j = lane; j < D; j += size) {
      const double xhat = (static_cast<double>(xr[j]) - mean) * rstd;
      const double gw = static_cast<double>(gr[j]) * param_or(w, j, 1.0);
      out[j] = static_cast<T>(rstd * (gw - ma - xhat * mb));
    }
  }
}

// Block (column tile, row chunk): partial[(chunk * D + j) * 2 + {0, 1}] = sum over the chunk's
// rows of g * xhat and g, one thread per column (coalesced along the row).
template <class T>
__global__ void ln_param_partials_kernel(const T* x, const T* g, const T* save_mean,
                                         const T* save_rstd, int64_t R, int64_t D,
                                         int64_t rows_per_chunk, double* partial) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  if (j >= D) return;
  const int64_t r0 = chunk * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < R ? r0 + rows_per_chunk : R;
  double sw = 0, sb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const double gv = static_cast<double>(g[r * D + j]);
    const double xhat = (static_cast<double>(x[r * D + j]) - static_cast<double>(save_mean[r])) *
                        static_cast<double>(save_rstd[r]);
    sw += gv * xhat;
    sb += gv;
  }
  partial[(chunk * D + j) * 2] = sw;
  partial[(chunk * D + j) * 2 + 1] = sb;
}

template <class T>
__global__ void ln_param_finalize_kernel(const double* partial, int64_t chunks, int64_t D, T* dw,
                                         T* db) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < D;
       j += int64_t(gridDim.x) * blockDim.x) {
    double sw = 0, sb = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      sw += partial[(k * D + j) * 2];
      sb += partial[(k * D + j) * 2 + 1];
    }
    if (dw) dw[j] = static_cast<T>(sw);
    if (db) db[j] = static_cast<T>(sb);
  }
}

void ln_forward_launch(const Tensor& x, int64_t R, int64_t D, const Tensor& weight,
                       const Tensor& bias, double eps, const Tensor& y, const Tensor& save_mean,
                       const Tensor& save_rstd) {
  cuda::check_same_cuda_device("layer_norm", {&x, &weight, &bias, &y});
  if (R == 0 || D == 0) return;
  cuda::DeviceGuard guard(x);
  cudaStream_t st = cuda::stream_of(x);
  dispatch_floating(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    with_team(team_for(D, true), R, [&](auto kind, unsigned blocks) {
      ln_forward_kernel<T, decltype(kind)::value><<<blocks, kThreads, 0, st>>>(
          x.data_ptr<T>(), ptr_or_null<T>(weight), ptr_or_null<T>(bias), R, D, eps,
          y.data_ptr<T>(), save_mean.data_ptr<T>(), save_rstd.data_ptr<T>());
      EVIT_CUDA_LAUNCH_CHECK("ln_forward_kernel");
    });
  });
}

void ln_backward_launch(const Tensor& x, const Tensor& g, int64_t R, int64_t D,
                        const Tensor& weight, const Tensor& save_mean, const Tensor& save_rstd,
                        const Tensor& dx, const Tensor& dw, const Tensor& db) {
  cuda::check_same_cuda_device("layer_norm backward", {&x, &g, &weight, &dx, &dw, &db});
  if (D == 0) return;
  cuda::DeviceGuard guard(x);
  cudaStream_t st = cuda::stream_of(x);
  dispatch_floating(x.dtype(), "layer_norm backward", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    const T* mp = save_mean.data_ptr<T>();
    const T* rp = save_rstd.data_ptr<T>();
    if (dx.defined() && R > 0) {
      with_team(team_for(D, true), R, [&](auto kind, unsigned blocks) {
        ln_backward_dx_kernel<T, decltype(kind)::value><<<blocks, kThreads, 0, st>>>(
            xp, gp, ptr_or_null<T>(weight), mp, rp, R, D, dx.data_ptr<T>());
        EVIT_CUDA_LAUNCH_CHECK("ln_backward_dx_kernel");
      });
    }
    if (!dw.defined() && !db.defined()) return;
    // Row chunks: fixed by R only; ~16+ rows per chunk, at most 512 chunks.
    int64_t chunks = (R + 15) / 16;
    if (chunks > 512) chunks = 512;
    if (chunks < 1) chunks = 1;
    const int64_t rows_per_chunk = R > 0 ? (R + chunks - 1) / chunks : 1;
    chunks = R > 0 ? (R + rows_per_chunk - 1) / rows_per_chunk : 1;
    Tensor partial = empty({chunks * D * 2}, {DType::f64, x.device()});
    const dim3 grid(static_cast<unsigned>((D + kThreads - 1) / kThreads),
                    static_cast<unsigned>(chunks));
    ln_param_partials_kernel<T><<<grid, kThreads, 0, st>>>(xp, gp, mp, rp, R, D, rows_per_chunk,
                                                           partial.data_ptr<double>());
    EVIT_CUDA_LAUNCH_CHECK("ln_param_partials_kernel");
    ln_param_finalize_kernel<T><<<cuda::blocks_for(D), kThreads, 0, st>>>(
        partial.data_ptr<double>(), chunks, D, dw.defined() ? dw.data_ptr<T>() : nullptr,
        db.defined() ? db.data_ptr<T>() : nullptr);
    EVIT_CUDA_LAUNCH_CHECK("ln_param_finalize_kernel");
  });
}

// ---------------------------------------------------------------------------- layer_norm2d
template <class T>
__global__ void ln2d_forward_kernel(const T* x, const T* w, const T* b, int64_t N, int64_t C,
                                    int64_t S, double eps, T* y, T* save_mean, T* save_rstd) {
  const int64_t P = N * S;
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < P;
       p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = p / S, s = p - n * S;
    const T* xb = x + n * C * S + s;
    double mean = 0;
    for (int64_t c = 0; c < C; ++c) mean += static_cast<double>(xb[c * S]);
    mean /= static_cast<double>(C);
    double m2 = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double d = static_cast<double>(xb[c * S]) - mean;
      m2 += d * d;
    }
    const double rstd = 1.0 / sqrt(m2 / static_cast<double>(C) + eps);
    save_mean[p] = static_cast<T>(mean);
    save_rstd[p] = static_cast<T>(rstd);
    T* yb = y + n * C * S + s;
    for (int64_t c = 0; c < C; ++c)
      yb[c * S] = static_cast<T>((static_cast<double>(xb[c * S]) - mean) * rstd *
                                     param_or(w, c, 1.0) +
                                 param_or(b, c, 0.0));
  }
}

template <class T>
__global__ void ln2d_backward_dx_kernel(const T* x, const T* g, const T* w, const T* save_mean,
                                        const T* save_rstd, int64_t N, int64_t C, int64_t S,
                                        T* dx) {
  const int64_t P = N * S;
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < P;
       p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = p / S, s = p - n * S;
    const T* xb = x + n * C * S + s;
    const T* gb = g + n * C * S + s;
    const double mean = static_cast<double>(save_mean[p]), rstd = static_cast<double>(save_rstd[p]);
    double sa = 0, sb = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (static_cast<double>(xb[c * S]) - mean) * rstd;
      const double gw = static_cast<double>(gb[c * S]) * param_or(w, c, 1.0);
      sa += gw;
      sb += gw * xhat;
    }
    sa /= static_cast<double>(C);
    sb /= static_cast<double>(C);
    T* ob = dx + n * C * S + s;
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (static_cast<double>(xb[c * S]) - mean) * rstd;
      const double gw = static_cast<double>(gb[c * S]) * param_or(w, c, 1.0);
      ob[c * S] = static_cast<T>(rstd * (gw - sa - xhat * sb));
    }
  }
}

// Channel c, pixel (n, s): g * xhat and g.
template <class T>
struct Ln2dParamSums {
  const T* x;
  const T* g;
  const T* mean;
  const T* rstd;
  int64_t C, S;
  __device__ void operator()(int64_t c, int64_t n, int64_t s, double& a, double& b) const {
    const int64_t i = (n * C + c) * S + s, p = n * S + s;
    const double gv = static_cast<double>(g[i]);
    const double xhat = (static_cast<double>(x[i]) - static_cast<double>(mean[p])) *
                        static_cast<double>(rstd[p]);
    a += gv * xhat;
    b += gv;
  }
};

template <class T>
__global__ void ln2d_param_finalize_kernel(const double* partial, int64_t C, int64_t splits, T* dw,
                                           T* db) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C;
       c += int64_t(gridDim.x) * blockDim.x) {
    double sw, sb;
    channel_total(partial, c, splits, sw, sb);
    if (dw) dw[c] = static_cast<T>(sw);
    if (db) db[c] = static_cast<T>(sb);
  }
}

void ln2d_forward_launch(const Tensor& x, int64_t N, int64_t C, int64_t S, const Tensor& weight,
                         const Tensor& bias, double eps, const Tensor& y, const Tensor& save_mean,
                         const Tensor& save_rstd) {
  cuda::check_same_cuda_device("layer_norm2d", {&x, &weight, &bias, &y});
  const int64_t P = N * S;
  if (P == 0 || C == 0) return;
  cuda::DeviceGuard guard(x);
  dispatch_floating(x.dtype(), "layer_norm2d", [&](auto tag) {
    using T = decltype(tag);
    ln2d_forward_kernel<T><<<cuda::blocks_for(P), kThreads, 0, cuda::stream_of(x)>>>(
        x.data_ptr<T>(), ptr_or_null<T>(weight), ptr_or_null<T>(bias), N, C, S, eps,
        y.data_ptr<T>(), save_mean.data_ptr<T>(), save_rstd.data_ptr<T>());
    EVIT_CUDA_LAUNCH_CHECK("ln2d_forward_kernel");
  });
}

void ln2d_backward_launch(const Tensor& x, const Tensor& g, int64_t N, int64_t C, int64_t S,
                          const Tensor& weight, const Tensor& save_mean, const Tensor& save_rstd,
                          const Tensor& dx, const Tensor& dw, const Tensor& db) {
  cuda::check_same_cuda_device("layer_norm2d backward", {&x, &g, &weight, &dx, &dw, &db});
  if (C == 0) return;
  cuda::DeviceGuard guard(x);
  cudaStream_t st = cuda::stream_of(x);
  const int64_t P = N * S;
  dispatch_floating(x.dtype(), "layer_norm2d backward", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    const T* mp = save_mean.data_ptr<T>();
    const T* rp = save_rstd.data_ptr<T>();
    if (dx.defined() && P > 0) {
      ln2d_backward_dx_kernel<T><<<cuda::blocks_for(P), kThreads, 0, st>>>(
          xp, gp, ptr_or_null<T>(weight), mp, rp, N, C, S, dx.data_ptr<T>());
      EVIT_CUDA_LAUNCH_CHECK("ln2d_backward_dx_kernel");
    }
    if (!dw.defined() && !db.defined()) return;
    const ChannelSplit cs = channel_split(P);
    Tensor partial = channel_partials(C, S, P, cs, Ln2dParamSums<T>{xp, gp, mp, rp, C, S}, x);
    ln2d_param_finalize_kernel<T><<<cuda::blocks_for(C), kThreads, 0, st>>>(
        partial.data_ptr<double>(), C, cs.splits, dw.defined() ? dw.data_ptr<T>() : nullptr,
        db.defined() ? db.data_ptr<T>() : nullptr);
    EVIT_CUDA_LAUNCH_CHECK("ln2d_param_finalize_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(layer_norm_forward_cuda, ln_forward_launch);
EVIT_REGISTER_CUDA_KERNEL(layer_norm_backward_cuda, ln_backward_launch);
EVIT_REGISTER_CUDA_KERNEL(layer_norm2d_forward_cuda, ln2d_forward_launch);
EVIT_REGISTER_CUDA_KERNEL(layer_norm2d_backward_cuda, ln2d_backward_launch);

}  // namespace evit
