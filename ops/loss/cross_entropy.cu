// CUDA twin of cross_entropy.cpp. Logits are [N, C, inner]; a position p = (n, i) has its C
// logits at n*C*inner + i + c*inner. One team owns a position (a thread when inner > 1, so
// neighbouring threads read neighbouring pixels; a warp or block for [N, C] rows), computes the
// fused log-softmax and the position's loss terms, and writes them to per-position f64 buffers;
// deterministic_sums adds those in a fixed order and a one-thread kernel forms the reduced loss
// (mean divides by the summed target weights, kept on the device for the backward: no host
// round trip). The class-index backward is elementwise over the logits.
#include "ops/loss/cuda_slots.h"
#include "ops/norm/cuda_reduce.cuh"

namespace evit {
namespace {
using namespace cuda_reduce;

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// aux[1] = sum_c w_c (C without weights), in class order like the CPU.
template <class T>
__global__ void weight_sum_kernel(const T* w, int64_t C, double* aux) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double W = static_cast<double>(C);
  if (w) {
    W = 0;
    for (int64_t c = 0; c < C; ++c) W += static_cast<double>(w[c]);
  }
  aux[1] = W;
}

// ---------------------------------------------------------------- class-index targets
// buf (when reducing): [3, P] = per position nll, smoothing term, target weight.
template <class T, TeamKind K>
__global__ void ce_indices_forward_kernel(const T* x, const int64_t* target, const T* w, int64_t P,
                                          int64_t C, int64_t inner, int64_t ignore_index,
                                          double eps, const double* aux, T* probs, T* out_none,
                                          double* buf, unsigned long long* bad) {
  using TM = Team<K>;
  const int lane = TM::lane(), size = TM::size();
  const double a = 1.0 - eps, b = eps / static_cast<double>(C);
  const double Wsum = aux[1];
  for (int64_t p = TM::first(); p < P; p += TM::step()) {
    const int64_t n = p / inner, i = p - n * inner;
    const int64_t e0 = n * C * inner + i;
    const T* xp = x + e0;
    T* pp = probs + e0;
    T mx = -INFINITY;
    for (int64_t c = lane; c < C; c += size) {
      const T v = xp[c * inner];
      mx = v > mx ? v : mx;
    }
    mx = TM::reduce(mx, MaxOp{});
    if (isinf(mx)) mx = mx > T(0) ? mx : T(0);
    double s = 0, xw = 0;
    for (int64_t c = lane; c < C; c += size) {
      const T v = xp[c * inner];
      const T e = dev_exp(static_cast<T>(v - mx));
      pp[c * inner] = e;
      s += static_cast<double>(e);
      if (eps != 0) xw += static_cast<double>(w ? w[c] * v : v);
    }
    s = TM::reduce(s, SumOp{});
    if (eps != 0) xw = TM::reduce(xw, SumOp{});
    const T r = static_cast<T>(1.0 / s);
    for (int64_t c = lane; c < C; c += size) pp[c * inner] *= r;
    if (lane == 0) {  // the position's loss terms
      const double lse = static_cast<double>(mx) + log(s);
      const int64_t t = target[p];
      double nll = 0, smooth = 0, wt = 0;
      if (t == ignore_index) {
        if (out_none) out_none[p] = T(0);
      } else if (t < 0 || t >= C) {
        atomicMin(bad, static_cast<unsigned long long>(p));  // integer: order-independent
        if (out_none) out_none[p] = T(NAN);
      } else {
        wt = w ? static_cast<double>(w[t]) : 1.0;
        nll = -wt * (static_cast<double>(xp[t * inner]) - lse);
        smooth = eps != 0 ? -(xw - Wsum * lse) : 0.0;
        if (out_none) out_none[p] = static_cast<T>(a * nll + b * smooth);
      }
      if (buf) {
        buf[p] = nll;
        buf[P + p] = smooth;
        buf[2 * P + p] = wt;
      }
    }
  }
}

struct BufferAt {
  const double* buf;
  int64_t P;
  __device__ double operator()(int k, int64_t i) const { return buf[k * P + i]; }
};

// sums = {nll, smooth, wsum}: the reduced loss, and aux[0] = wsum for the backward.
template <class T>
__global__ void ce_indices_finish_kernel(const double* sums, bool mean, double eps, int64_t C,
                                         double* aux, T* out) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  const double a = 1.0 - eps, b = eps / static_cast<double>(C);
  const double nll = sums[0], smooth = sums[1], wsum = sums[2];
  aux[0] = wsum;
  // torch: with class indices both terms of the mean divide by the summed target weights
  if (mean) out[0] = static_cast<T>(a * nll / wsum + (eps != 0 ? b * smooth / wsum : 0.0));
  else out[0] = static_cast<T>(a * nll + b * smooth);
}

void indices_forward_launch(const Tensor& logits, const Tensor& target, const Tensor& weight,
                            int64_t N, int64_t C, int64_t inner, int64_t ignore_index,
                            Reduction red, double eps, const Tensor& probs, const Tensor& out,
                            const Tensor& aux, const Tensor& bad) {
  cuda::check_same_cuda_device("cross_entropy",
                               {&logits, &target, &weight, &probs, &out, &aux, &bad});
  cuda::DeviceGuard guard(logits);
  cudaStream_t st = cuda::stream_of(logits);
  const int64_t P = N * inner;
  dispatch_floating(logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T* w = ptr_or_null<T>(weight);
    double* auxp = aux.data_ptr<double>();
    weight_sum_kernel<T><<<1, 32, 0, st>>>(w, C, auxp);
    EVIT_CUDA_LAUNCH_CHECK("weight_sum_kernel");
    Tensor buf;
    if (red != Reduction::none) buf = empty({3 * P}, {DType::f64, logits.device()});
    if (P > 0) {
      with_team(team_for(C, inner == 1), P, [&](auto kind, unsigned blocks) {
        ce_indices_forward_kernel<T, decltype(kind)::value><<<blocks, kThreads, 0, st>>>(
            logits.data_ptr<T>(), target.data_ptr<int64_t>(), w, P, C, inner, ignore_index, eps,
            auxp, probs.data_ptr<T>(), red == Reduction::none ? out.data_ptr<T>() : nullptr,
            buf.defined() ? buf.data_ptr<double>() : nullptr,
            reinterpret_cast<unsigned long long*>(bad.data_ptr<int64_t>()));
        EVIT_CUDA_LAUNCH_CHECK("ce_indices_forward_kernel");
      });
    }
    if (red == Reduction::none) return;
    Tensor sums = empty({3}, {DType::f64, logits.device()});
    deterministic_sums(3, P, BufferAt{buf.defined() ? buf.data_ptr<double>() : nullptr, P},
                       sums.data_ptr<double>(), logits);
    ce_indices_finish_kernel<T><<<1, 32, 0, st>>>(sums.data_ptr<double>(), red == Reduction::mean,
                                                  eps, C, auxp, out.data_ptr<T>());
    EVIT_CUDA_LAUNCH_CHECK("ce_indices_finish_kernel");
  });
}

// grad_c = sp * p_c - beta * w_c - [c == t] * alpha * wt, sp = alpha*wt + beta*W (the CPU's
// form); one thread per logit.
template <class T>
__global__ void ce_indices_backward_kernel(const T* probs, const int64_t* target, const T* w,
                                           const double* aux, const T* g, int64_t total,
                                           int64_t C, int64_t inner, int64_t ignore_index,
                                           bool per_position, bool mean, double eps, T* gx) {
  const double a = 1.0 - eps, b = eps / static_cast<double>(C);
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e % inner, q = e / inner;
    const int64_t c = q % C, n = q / C;
    const int64_t p = n * inner + i;
    const int64_t t = target[p];
    const bool live = t != ignore_index && t >= 0 && t < C;
    T sp = T(0), be_t = T(0);
    double alpha = 0, wt = 0;
    if (live) {
      const double gv = static_cast<double>(per_position ? g[p] : g[0]);
      alpha = gv * a;
      double be = gv * b;
      if (mean) {
        alpha /= aux[0];
        be /= aux[0];
      }
      wt = w ? static_cast<double>(w[t]) : 1.0;
      sp = static_cast<T>(alpha * wt + be * aux[1]);
      be_t = static_cast<T>(be);
    }
    const T wc = w ? w[c] : T(1);
    T v = sp * probs[e] - be_t * wc;
    if (live && c == t) v -= static_cast<T>(alpha * wt);
    gx[e] = v;
  }
}

void indices_backward_launch(const Tensor& probs, const Tensor& target, const Tensor& weight,
                             const Tensor& aux, const Tensor& g, int64_t N, int64_t C,
                             int64_t inner, int64_t ignore_index, Reduction red, double eps,
                             const Tensor& gx) {
  cuda::check_same_cuda_device("CrossEntropyBackward", {&probs, &target, &weight, &aux, &g, &gx});
  const int64_t total = N * C * inner;
  if (total == 0) return;
  cuda::DeviceGuard guard(probs);
  dispatch_floating(probs.dtype(), "CrossEntropyBackward", [&](auto tag) {
    using T = decltype(tag);
    ce_indices_backward_kernel<T><<<cuda::blocks_for(total), kThreads, 0, cuda::stream_of(probs)>>>(
        probs.data_ptr<T>(), target.data_ptr<int64_t>(), ptr_or_null<T>(weight),
        aux.data_ptr<double>(), g.data_ptr<T>(), total, C, inner, ignore_index,
        red == Reduction::none, red == Reduction::mean, eps, gx.data_ptr<T>());
    EVIT_CUDA_LAUNCH_CHECK("ce_indices_backward_kernel");
  });
}

// ---------------------------------------------------------------- probability targets
// loss_p = -sum_c w_c (a t_c + b) lp_c with lp the position's log_softmax (written to lp).
template <class T, TeamKind K>
__global__ void ce_probs_forward_kernel(const T* x, const T* tg, const T* w, int64_t P, int64_t C,
                                        int64_t inner, double eps, T* lp, T* out_none,
                                        double* buf) {
  using TM = Team<K>;
  const int lane = TM::lane(), size = TM::size();
  const double a = 1.0 - eps, b = eps / static_cast<double>(C);
  for (int64_t p = TM::first(); p < P; p += TM::step()) {
    const int64_t n = p / inner, i = p - n * inner;
    const int64_t e0 = n * C * inner + i;
    T mx = -INFINITY;
    for (int64_t c = lane; c < C; c += size) {
      const T v = x[e0 + c * inner];
      mx = v > mx ? v : mx;
    }
    mx = TM::reduce(mx, MaxOp{});
    if (isinf(mx)) mx = mx > T(0) ? mx : T(0);
    double s = 0;
    for (int64_t c = lane; c < C; c += size)
      s += exp(static_cast<double>(static_cast<T>(x[e0 + c * inner] - mx)));
    s = TM::reduce(s, SumOp{});
    const T lse = mx + static_cast<T>(log(s));
    double loss = 0;
    for (int64_t c = lane; c < C; c += size) {
      const int64_t k = e0 + c * inner;
      const T l = x[k] - lse;
      lp[k] = l;
      const double tc = a * static_cast<double>(tg[k]) + b;
      loss -= (w ? static_cast<double>(w[c]) : 1.0) * tc * static_cast<double>(l);
    }
    loss = TM::reduce(loss, SumOp{});
    if (lane == 0) {
      if (out_none) out_none[p] = static_cast<T>(loss);
      if (buf) buf[p] = loss;
    }
  }
}

template <class T>
__global__ void ce_probs_finish_kernel(const double* total, double divisor, T* out) {
  if (blockIdx.x == 0 && threadIdx.x == 0) out[0] = static_cast<T>(total[0] / divisor);
}

// gx_c = gv (S p_c - w_c t'_c), S = sum_c w_c t'_c; gt_c = -gv a w_c lp_c.
template <class T, TeamKind K>
__global__ void ce_probs_backward_kernel(const T* lp, const T* tg, const T* w, const T* g,
                                         int64_t P, int64_t C, int64_t inner, double eps,
                                         bool per_position, bool mean, T* gx, T* gt) {
  using TM = Team<K>;
  const int lane = TM::lane(), size = TM::size();
  const double a = 1.0 - eps, b = eps / static_cast<double>(C);
  for (int64_t p = TM::first(); p < P; p += TM::step()) {
    const int64_t n = p / inner, i = p - n * inner;
    const int64_t e0 = n * C * inner + i;
    double gv = static_cast<double>(per_position ? g[p] : g[0]);
    if (mean) gv /= static_cast<double>(P);
    double S = 0;
    for (int64_t c = lane; c < C; c += size)
      S += (w ? static_cast<double>(w[c]) : 1.0) * (a * static_cast<double>(tg[e0 + c * inner]) + b);
    S = TM::reduce(S, SumOp{});
    for (int64_t c = lane; c < C; c += size) {
      const int64_t k = e0 + c * inner;
      const double wc = w ? static_cast<double>(w[c]) : 1.0;
      const double pc = exp(static_cast<double>(lp[k]));
      gx[k] = static_cast<T>(gv * (S * pc - wc * (a * static_cast<double>(tg[k]) + b)));
      if (gt) gt[k] = static_cast<T>(-gv * a * wc * static_cast<double>(lp[k]));
    }
  }
}

void probs_forward_launch(const Tensor& logits, const Tensor& target, const Tensor& weight,
                          int64_t N, int64_t C, int64_t inner, Reduction red, double eps,
                          const Tensor& lp, const Tensor& out) {
  cuda::check_same_cuda_device("cross_entropy", {&logits, &target, &weight, &lp, &out});
  cuda::DeviceGuard guard(logits);
  cudaStream_t st = cuda::stream_of(logits);
  const int64_t P = N * inner;
  dispatch_floating(logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    Tensor buf;
    if (red != Reduction::none) buf = empty({P}, {DType::f64, logits.device()});
    if (P > 0) {
      with_team(team_for(C, inner == 1), P, [&](auto kind, unsigned blocks) {
        ce_probs_forward_kernel<T, decltype(kind)::value><<<blocks, kThreads, 0, st>>>(
            logits.data_ptr<T>(), target.data_ptr<T>(), ptr_or_null<T>(weight), P, C, inner, eps,
            lp.data_ptr<T>(), red == Reduction::none ? out.data_ptr<T>() : nullptr,
            buf.defined() ? buf.data_ptr<double>() : nullptr);
        EVIT_CUDA_LAUNCH_CHECK("ce_probs_forward_kernel");
      });
    }
    if (red == Reduction::none) return;
    Tensor total = empty({1}, {DType::f64, logits.device()});
    deterministic_sums(1, P, BufferAt{buf.data_ptr<double>(), P}, total.data_ptr<double>(), logits);
    const double divisor = red == Reduction::mean ? static_cast<double>(P) : 1.0;
    ce_probs_finish_kernel<T><<<1, 32, 0, st>>>(total.data_ptr<double>(), divisor, out.data_ptr<T>());
    EVIT_CUDA_LAUNCH_CHECK("ce_probs_finish_kernel");
  });
}

void probs_backward_launch(const Tensor& lp, const Tensor& target, const Tensor& weight,
                           const Tensor& g, int64_t N, int64_t C, int64_t inner, Reduction red,
                           double eps, const Tensor& gx, const Tensor& gt) {
  cuda::check_same_cuda_device("CrossEntropyBackward", {&lp, &target, &weight, &g, &gx, &gt});
  const int64_t P = N * inner;
  if (P == 0 || C == 0) return;
  cuda::DeviceGuard guard(lp);
  cudaStream_t st = cuda::stream_of(lp);
  dispatch_floating(lp.dtype(), "CrossEntropyBackward", [&](auto tag) {
    using T = decltype(tag);
    with_team(team_for(C, inner == 1), P, [&](auto kind, unsigned blocks) {
      ce_probs_backward_kernel<T, decltype(kind)::value><<<blocks, kThreads, 0, st>>>(
          lp.data_ptr<T>(), target.data_ptr<T>(), ptr_or_null<T>(weight), g.data_ptr<T>(), P, C,
          inner, eps, red == Reduction::none, red == Reduction::mean, gx.data_ptr<T>(),
          gt.defined() ? gt.data_ptr<T>() : nullptr);
      EVIT_CUDA_LAUNCH_CHECK("ce_probs_backward_kernel");
    });
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(cross_entropy_indices_forward_cuda, indices_forward_launch);
EVIT_REGISTER_CUDA_KERNEL(cross_entropy_indices_backward_cuda, indices_backward_launch);
EVIT_REGISTER_CUDA_KERNEL(cross_entropy_probs_forward_cuda, probs_forward_launch);
EVIT_REGISTER_CUDA_KERNEL(cross_entropy_probs_backward_cuda, probs_backward_launch);

}  // namespace evit
