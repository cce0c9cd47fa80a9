// layer_norm (over trailing dims) and layer_norm2d (over channels at every pixel), forward and
// backward.
//
// layer_norm: x is seen as [R, D] rows; each row is one unit of work (mean, then the sum of
// squared deviations: two passes over a row that sits in cache). dweight/dbias sum over rows:
// every fixed chunk of rows writes its own partial sums, added in chunk order afterwards.
//
// layer_norm2d: x is [N, C, S] with the normalized dim C strided by S. Work is cut into blocks of
// kBlock pixels of one image; inside a block the loops run c outer / pixel inner, so the inner
// loop is contiguous and vectorizes. dweight/dbias partials are kept per block and added in
// block order. Both are independent of the thread count.
#include <cmath>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/norm.h"
#include "ops/norm/cuda_slots.h"
#include "ops/shape.h"

namespace evit {
namespace {

using Acc = double;

void check_affine(const Tensor& t, const Tensor& x, const Shape& shape, const char* op,
                  const char* what) {
  if (!t.defined()) return;
  EVIT_CHECK(t.sizes() == shape, op, ": ", what, " must be ", shape_str(shape), " for x ",
             x.desc(), ", got ", t.desc());
  EVIT_CHECK(t.dtype() == x.dtype(), op, ": ", what, " dtype ", dtype_name(t.dtype()),
             " differs from x ", x.desc());
  EVIT_CHECK(t.device() == x.device(), op, ": ", what, " is on ", t.device().str(), ", x on ",
             x.device().str());
}

// Contiguous f64 copy of an optional parameter (value `dflt` when undefined), length n.
template <class T>
std::vector<Acc> param_vector(const Tensor& t, int64_t n, Acc dflt) {
  std::vector<Acc> v(n, dflt);
  if (!t.defined()) return v;
  Tensor c = t.contiguous();
  const T* p = c.data_ptr<T>();
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<Acc>(p[i]);
  return v;
}

constexpr int64_t kBlock = 256;  // pixels per layer_norm2d work unit

// dweight and dbias [n] from per-chunk partial sums pw, pb [chunks, n], added in chunk order (so
// the result does not depend on the thread count).
template <class T>
void sum_partials(const std::vector<Acc>& pw, const std::vector<Acc>& pb, int64_t chunks, int64_t n,
                  const TensorOptions& opt, Tensor& dwt, Tensor& dbt) {
  dwt = empty({n}, opt);
  dbt = empty({n}, opt);
  T* dwp = dwt.data_ptr<T>();
  T* dbp = dbt.data_ptr<T>();
  for (int64_t j = 0; j < n; ++j) {
    Acc sw = 0, sb = 0;
    for (int64_t ch = 0; ch < chunks; ++ch) {
      sw += pw[ch * n + j];
      sb += pb[ch * n + j];
    }
    dwp[j] = static_cast<T>(sw);
    dbp[j] = static_cast<T>(sb);
  }
}

// CPU forward: per row the mean, then the sum of squared deviations (two passes over a row in
// cache, accumulated in double), then y = (x − mean)·rstd·w + b.
template <class T>
void layer_norm_forward_cpu(const Tensor& xc, const Tensor& weight, const Tensor& bias, int64_t R, int64_t D,
                            int64_t grain, double eps, Tensor& y, Tensor& save_mean, Tensor& save_rstd) {
  const std::vector<Acc> w = param_vector<T>(weight, D, 1), b = param_vector<T>(bias, D, 0);
  const T* xp = xc.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  T* mp = save_mean.data_ptr<T>();
  T* rp = save_rstd.data_ptr<T>();
  parallel_for(0, R, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = xp + r * D;
      Acc s = 0;
      for (int64_t j = 0; j < D; ++j) s += row[j];
      const Acc mean = s / static_cast<Acc>(D);
      Acc m2 = 0;
      for (int64_t j = 0; j < D; ++j) {
        Acc d = row[j] - mean;
        m2 += d * d;
      }
      const Acc rstd = 1.0 / std::sqrt(m2 / static_cast<Acc>(D) + eps);
      mp[r] = static_cast<T>(mean);
      rp[r] = static_cast<T>(rstd);
      T* out = yp + r * D;
      for (int64_t j = 0; j < D; ++j)
        out[j] = static_cast<T>((row[j] - mean) * rstd * w[j] + b[j]);
    }
  });
}

// CPU backward: per row dx = rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂)); dweight and dbias are
// summed over rows per parallel chunk, then over chunks in order (thread-count independent).
template <class T>
void layer_norm_backward_cpu(const Tensor& xs, const Tensor& g, const Tensor& weight, const Tensor& mean_t,
                             const Tensor& rstd_t, int64_t R, int64_t D, int64_t grain, const Shape& normalized_shape,
                             bool need_w, bool need_b, Tensor& dx, Tensor& dw, Tensor& db) {
  const bool need_x = dx.defined();
  const TensorOptions opt{xs.dtype(), xs.device()};
  const std::vector<Acc> w = param_vector<T>(weight, D, 1);
  const T* xp = xs.data_ptr<T>();
  const T* gp = g.data_ptr<T>();
  const T* mp = mean_t.template data_ptr<T>();
  const T* rp = rstd_t.template data_ptr<T>();
  T* dxp = need_x ? dx.data_ptr<T>() : nullptr;
  const bool need_wb = need_w || need_b;
  const int64_t chunks = num_chunks(0, R, grain);
  std::vector<Acc> pw(need_wb ? chunks * D : 0), pb(need_wb ? chunks * D : 0);
  parallel_for(0, R, grain, [&](int64_t r0, int64_t r1) {
    const int64_t chunk = r0 / grain;
    std::vector<Acc> xhat(D);
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = xp + r * D;
      const T* gr = gp + r * D;
      const Acc mean = mp[r], rstd = rp[r];
      Acc a = 0, bsum = 0;  // sum(g*w), sum(g*w*xhat)
      for (int64_t j = 0; j < D; ++j) {
        xhat[j] = (xr[j] - mean) * rstd;
        const Acc gw = gr[j] * w[j];
        a += gw;
        bsum += gw * xhat[j];
      }
      if (need_wb) {
        Acc* pwc = pw.data() + chunk * D;
        Acc* pbc = pb.data() + chunk * D;
        for (int64_t j = 0; j < D; ++j) {
          pwc[j] += gr[j] * xhat[j];
          pbc[j] += gr[j];
        }
      }
      if (need_x) {
        const Acc ma = a / static_cast<Acc>(D), mb = bsum / static_cast<Acc>(D);
        T* out = dxp + r * D;
        for (int64_t j = 0; j < D; ++j)
          out[j] = static_cast<T>(rstd * (gr[j] * w[j] - ma - xhat[j] * mb));
      }
    }
  });
  if (need_wb) {
    Tensor dwt, dbt;
    sum_partials<T>(pw, pb, chunks, D, opt, dwt, dbt);
    if (need_w) dw = reshape(dwt, normalized_shape);
    if (need_b) db = reshape(dbt, normalized_shape);
  }
}

// CPU forward of layer_norm2d: per image and block of kBlock pixels, the channel mean and sum of
// squared deviations of every pixel (double accumulators, channels walked in order), then the
// affine output.
template <class T>
void layer_norm2d_forward_cpu(const Tensor& xc, const Tensor& weight, const Tensor& bias, int64_t N, int64_t C,
                              int64_t S, int64_t nblk, double eps, Tensor& y, Tensor& save_mean, Tensor& save_rstd) {
  const std::vector<Acc> w = param_vector<T>(weight, C, 1), b = param_vector<T>(bias, C, 0);
  const T* xp = xc.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  T* mp = save_mean.data_ptr<T>();
  T* rp = save_rstd.data_ptr<T>();
  parallel_for(0, N * nblk, 1, [&](int64_t t0, int64_t t1) {
    Acc mean[kBlock], rstd[kBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / nblk, s0 = (t % nblk) * kBlock, B = std::min(kBlock, S - s0);
      const T* xb = xp + n * C * S + s0;
      T* yb = yp + n * C * S + s0;
      for (int64_t s = 0; s < B; ++s) mean[s] = rstd[s] = 0;
      for (int64_t c = 0; c < C; ++c) {
        const T* __restrict xr = xb + c * S;
        for (int64_t s = 0; s < B; ++s) mean[s] += xr[s];
      }
      for (int64_t s = 0; s < B; ++s) mean[s] /= static_cast<Acc>(C);
      for (int64_t c = 0; c < C; ++c) {  // rstd holds the sum of squared deviations first
        const T* __restrict xr = xb + c * S;
        for (int64_t s = 0; s < B; ++s) {
          Acc d = xr[s] - mean[s];
          rstd[s] += d * d;
        }
      }
      for (int64_t s = 0; s < B; ++s) {
        rstd[s] = 1.0 / std::sqrt(rstd[s] / static_cast<Acc>(C) + eps);
        mp[n * S + s0 + s] = static_cast<T>(mean[s]);
        rp[n * S + s0 + s] = static_cast<T>(rstd[s]);
      }
      for (int64_t c = 0; c < C; ++c) {
        const T* __restrict xr = xb + c * S;
        T* __restrict yr = yb + c * S;
        const Acc wc = w[c], bc = b[c];
        for (int64_t s = 0; s < B; ++s)
          yr[s] = static_cast<T>((xr[s] - mean[s]) * rstd[s] * wc + bc);
      }
    }
  });
}

// dx of one block of B pixels (channels strided by S): rstd·(g·w − mean_c(g·w) − x̂·mean_c(g·w·x̂)),
// with sa, sb holding the channel sums of g·w and g·w·x̂ on entry (divided by C here).
template <class T>
void layer_norm2d_block_dx(const T* xb, const T* gb, T* dxb, const Acc* w, const Acc* mean,
                           const Acc* rstd, Acc* sa, Acc* sb, int64_t C, int64_t S, int64_t B) {
  for (int64_t s = 0; s < B; ++s) {
    sa[s] /= static_cast<Acc>(C);
    sb[s] /= static_cast<Acc>(C);
  }
  for (int64_t c = 0; c < C; ++c) {
    const T* __restrict xr = xb + c * S;
    const T* __restrict gr = gb + c * S;
    T* __restrict out = dxb + c * S;
    const Acc wc = w[c];
    for (int64_t s = 0; s < B; ++s) {
      const Acc xhat = (xr[s] - mean[s]) * rstd[s];
      out[s] = static_cast<T>(rstd[s] * (gr[s] * wc - sa[s] - xhat * sb[s]));
    }
  }
}

// CPU backward of layer_norm2d: per pixel block, the channel sums of g·w and g·w·x̂ give dx; the
// per-block partial dweight/dbias are added over blocks in order afterwards.
template <class T>
void layer_norm2d_backward_cpu(const Tensor& xs, const Tensor& g, const Tensor& weight, const Tensor& mean_t,
                               const Tensor& rstd_t, int64_t N, int64_t C, int64_t S, int64_t nblk, bool need_w,
                               bool need_b, Tensor& dx, Tensor& dw, Tensor& db) {
  const bool need_x = dx.defined();
  const TensorOptions opt{xs.dtype(), xs.device()};
  const std::vector<Acc> w = param_vector<T>(weight, C, 1);
  const T* xp = xs.data_ptr<T>();
  const T* gp = g.data_ptr<T>();
  const T* mp = mean_t.template data_ptr<T>();
  const T* rp = rstd_t.template data_ptr<T>();
  T* dxp = need_x ? dx.data_ptr<T>() : nullptr;
  const bool need_wb = need_w || need_b;
  const int64_t tasks = N * nblk;
  std::vector<Acc> pw(need_wb ? tasks * C : 0), pb(need_wb ? tasks * C : 0);
  parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    Acc mean[kBlock], rstd[kBlock], sa[kBlock], sb[kBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / nblk, s0 = (t % nblk) * kBlock, B = std::min(kBlock, S - s0);
      const T* xb = xp + n * C * S + s0;
      const T* gb = gp + n * C * S + s0;
      for (int64_t s = 0; s < B; ++s) {
        mean[s] = mp[n * S + s0 + s];
        rstd[s] = rp[n * S + s0 + s];
        sa[s] = sb[s] = 0;
      }
      for (int64_t c = 0; c < C; ++c) {
        const T* __restrict xr = xb + c * S;
        const T* __restrict gr = gb + c * S;
        const Acc wc = w[c];
        Acc cw = 0, cb = 0;
        for (int64_t s = 0; s < B; ++s) {
          const Acc xhat = (xr[s] - mean[s]) * rstd[s];
          const Acc gv = gr[s];
          sa[s] += gv * wc;
          sb[s] += gv * wc * xhat;
          cw += gv * xhat;
          cb += gv;
        }
        if (need_wb) {
          pw[t * C + c] = cw;
          pb[t * C + c] = cb;
        }
      }
      if (need_x)
        layer_norm2d_block_dx<T>(xb, gb, dxp + n * C * S + s0, w.data(), mean, rstd, sa, sb, C, S, B);
    }
  });
  if (need_wb) {
    Tensor dwt, dbt;
    sum_partials<T>(pw, pb, tasks, C, opt, dwt, dbt);
    if (need_w) dw = dwt;
    if (need_b) db = dbt;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  EVIT_CHECK(is_floating(x.dtype()), op, ": expected a floating dtype (f32 or f64), got ",
             x.desc());
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  EVIT_CHECK(k >= 1, op, ": normalized_shape must name at least one dim");
  EVIT_CHECK(x.dim() >= k, op, ": normalized_shape ", shape_str(normalized_shape),
             " has more dims than x ", x.desc());
  for (int64_t i = 0; i < k; ++i)
    EVIT_CHECK(x.size(x.dim() - k + i) == normalized_shape[i], op, ": the last dims of x ",
               x.desc(), " must equal normalized_shape ", shape_str(normalized_shape));
  EVIT_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  check_affine(weight, x, normalized_shape, op, "weight");
  check_affine(bias, x, normalized_shape, op, "bias");
  const int64_t D = shape_numel(normalized_shape);
  EVIT_CHECK(D > 0, op, ": normalized_shape ", shape_str(normalized_shape), " is empty");
  const int64_t R = x.numel() / D;

  const Tensor xc = x.contiguous();
  Tensor y = empty(x.sizes(), {x.dtype(), x.device()});
  Tensor save_mean = empty({R}, {x.dtype(), x.device()});
  Tensor save_rstd = empty({R}, {x.dtype(), x.device()});
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / D);
  if (x.device().is_cuda())  // weight / bias were checked to be on x's device (check_affine)
    layer_norm_forward_cuda(xc, R, D, weight.defined() ? weight.contiguous() : Tensor(),
                            bias.defined() ? bias.contiguous() : Tensor(), eps, y, save_mean,
                            save_rstd);
  else dispatch_floating(x.dtype(), op, [&](auto tag) {
    layer_norm_forward_cpu<decltype(tag)>(xc, weight, bias, R, D, grain, eps, y, save_mean, save_rstd);
  });

  const bool has_weight = weight.defined();
  autograd::record(
      "LayerNormBackward", {x, weight, bias}, {y}, {xc, weight, save_mean, save_rstd},
      [R, D, grain, has_weight, normalized_shape](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor& xs = ctx.saved(0);
        const Tensor g = ctx.grad_output(0).contiguous();
        const bool need_x = ctx.needs_input_grad(0), need_w = ctx.needs_input_grad(1),
                   need_b = ctx.needs_input_grad(2);
        const TensorOptions opt{xs.dtype(), xs.device()};
        Tensor dx = need_x ? empty(xs.sizes(), opt) : Tensor();
        Tensor dw, db;
        if (xs.device().is_cuda()) {
          if (need_w) dw = empty(normalized_shape, opt);
          if (need_b) db = empty(normalized_shape, opt);
          layer_norm_backward_cuda(xs, g, R, D, has_weight ? ctx.saved(1).contiguous() : Tensor(),
                                   ctx.saved(2), ctx.saved(3), dx, dw, db);
          return std::vector<Tensor>{dx, dw, db};
        }
        dispatch_floating(xs.dtype(), "layer_norm backward", [&](auto tag) {
          layer_norm_backward_cpu<decltype(tag)>(xs, g, has_weight ? ctx.saved(1) : Tensor(), ctx.saved(2),
                                                 ctx.saved(3), R, D, grain, normalized_shape, need_w,
                                                 need_b, dx, dw, db);
        });
        return {dx, dw, db};
      });
  return y;
}

// ---------------------------------------------------------------------------------------------
Tensor layer_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm2d";
  EVIT_CHECK(x.dim() == 4, op, ": input must be 4-D [N,C,H,W], got ", x.desc());
  EVIT_CHECK(is_floating(x.dtype()), op, ": expected a floating dtype (f32 or f64), got ",
             x.desc());
  EVIT_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3);
  EVIT_CHECK(C > 0, op, ": x has no channels: ", x.desc());
  check_affine(weight, x, {C}, op, "weight");
  check_affine(bias, x, {C}, op, "bias");

  const Tensor xc = x.contiguous();
  Tensor y = empty(x.sizes(), {x.dtype(), x.device()});
  Tensor save_mean = empty({N, S}, {x.dtype(), x.device()});
  Tensor save_rstd = empty({N, S}, {x.dtype(), x.device()});
  const int64_t nblk = num_chunks(0, S, kBlock);
  if (x.device().is_cuda())  // weight / bias were checked to be on x's device (check_affine)
    layer_norm2d_forward_cuda(xc, N, C, S, weight.defined() ? weight.contiguous() : Tensor(),
                              bias.defined() ? bias.contiguous() : Tensor(), eps, y, save_mean,
                              save_rstd);
  else dispatch_floating(x.dtype(), op, [&](auto tag) {
    layer_norm2d_forward_cpu<decltype(tag)>(xc, weight, bias, N, C, S, nblk, eps, y, save_mean, save_rstd);
  });

  const bool has_weight = weight.defined();
  autograd::record(
      "LayerNorm2dBackward", {x, weight, bias}, {y}, {xc, weight, save_mean, save_rstd},
      [N, C, S, nblk, has_weight](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor& xs = ctx.saved(0);
        const Tensor g = ctx.grad_output(0).contiguous();
        const bool need_x = ctx.needs_input_grad(0), need_w = ctx.needs_input_grad(1),
                   need_b = ctx.needs_input_grad(2);
        const TensorOptions opt{xs.dtype(), xs.device()};
        Tensor dx = need_x ? empty(xs.sizes(), opt) : Tensor();
        Tensor dw, db;
        if (xs.device().is_cuda()) {
          if (need_w) dw = empty({C}, opt);
          if (need_b) db = empty({C}, opt);
          layer_norm2d_backward_cuda(xs, g, N, C, S,
                                     has_weight ? ctx.saved(1).contiguous() : Tensor(),
                                     ctx.saved(2), ctx.saved(3), dx, dw, db);
          return std::vector<Tensor>{dx, dw, db};
        }
        dispatch_floating(xs.dtype(), "layer_norm2d backward", [&](auto tag) {
          layer_norm2d_backward_cpu<decltype(tag)>(xs, g, has_weight ? ctx.saved(1) : Tensor(),
                                                   ctx.saved(2), ctx.saved(3), N, C, S, nblk, need_w,
                                                   need_b, dx, dw, db);
        });
        return {dx, dw, db};
      });
  return y;
}

}  // namespace evit
