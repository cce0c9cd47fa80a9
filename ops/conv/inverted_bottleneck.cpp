// inverted_bottleneck: [expand 1×1 ->] depthwise k×k -> project 1×1 in inference, strip by strip.
//
// Run as three convolutions, an MBConv of a high-resolution stage writes its M-channel expanded
// tensor (4x the input's channels), reads it back for the depthwise convolution, writes the
// depthwise output and reads it back for the projection: four passes over tensors of tens of MB
// for a 512×1024 image, and the 1×1 products with only 16 or 32 input channels are bound by
// that traffic, not by arithmetic. Here each task owns a band of output rows of one image and
// walks it in strips of `strip` rows:
//   1. the expanded rows the strip's windows reach (a GEMM over those input rows, bias and
//      activation while in cache); rows the previous strip already expanded are kept, so only
//      the band's first strip recomputes a halo;
//   2. the depthwise convolution of those rows (depthwise_rows);
//   3. the projection GEMM, written straight into the strip's rows of y (with the residual, when
//      one is given, added in its epilogue).
// Bands and strips are functions of the shapes alone, and every output is computed the same way
// whichever thread runs its band, so the result does not depend on the thread count.
#include <algorithm>
#include <cstring>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "ops/conv.h"
#include "ops/conv/bias_activation.h"
#include "ops/conv/kernels.h"
#include "ops/linalg/gemm.h"

namespace evit {
namespace {

// Expanded rows per strip: M·rows·W values of about this many, so the expanded and depthwise
// strips stay in L2 while the three steps pass over them.
constexpr int64_t kStripValues = int64_t{1} << 17;
// Strips per band (one parallel task): more strips share one halo, fewer bands balance worse.
constexpr int64_t kStripsPerBand = 4;

// Without an expansion (a depthwise-separable block): the depthwise strips read x's rows, then
// the projection.
template <class T>
void run_separable(const Tensor& x, const ConvStage& d, const conv::Geom& g, const ConvStage& p, const T* rp,
                   Tensor& y) {
  const int64_t M = g.C, O = p.w.size(0), H = g.H, W = g.W, OH = g.OH, OW = g.OW;
  const int64_t strip = std::clamp<int64_t>(kStripValues / std::max<int64_t>(1, M * OW), 1, OH);
  const int64_t strips = (OH + strip - 1) / strip;
  const T *xp = x.data_ptr<T>(), *w2 = d.w.data_ptr<T>(), *w3 = p.w.data_ptr<T>();
  const T *b2 = d.b.data_ptr_or_null<T>(), *b3 = p.b.data_ptr_or_null<T>();
  T* yp = y.data_ptr<T>();
  parallel_for(0, g.N * strips, 1, [&](int64_t task_begin, int64_t task_end) {
    Scratch<T> dw(static_cast<size_t>(M * strip * OW));
    for (int64_t task = task_begin; task < task_end; ++task) {
      const int64_t n = task / strips, oh0 = (task % strips) * strip, rows = std::min(strip, OH - oh0);
      conv::depthwise_rows<T>(g, xp + n * M * H * W, H * W, 0, H, oh0, rows, w2, b2, dw.data(), rows * OW, d.act);
      const int64_t at = n * O * OH * OW + oh0 * OW;
      T* yrows = yp + at;
      const auto ep = conv::bias_activation_epilogue<T>(yrows, OH * OW, b3, p.act, rp ? rp + at : nullptr);
      detail::gemm(false, false, O, rows * OW, M, T(1), w3, M, dw.data(), rows * OW, T(0), yrows, OH * OW,
                   ep ? &*ep : nullptr);
    }
  });
}

template <class T>
void run(const Tensor& x, const ConvStage& e, const ConvStage& d, const conv::Geom& g, const ConvStage& p,
         const T* rp, Tensor& y) {
  if (!e.w.defined()) return run_separable<T>(x, d, g, p, rp, y);
  const int64_t C = x.size(1), M = g.C, O = p.w.size(0), H = g.H, W = g.W, OH = g.OH, OW = g.OW;
  const int64_t k = g.KH, s = g.sh, pad = g.ph;
  // Strip rows: the expanded rows of a strip, (strip - 1)·s + k, times M·W near kStripValues.
  const int64_t fit = kStripValues / std::max<int64_t>(1, M * W);
  const int64_t strip = std::clamp<int64_t>((fit - k) / s + 1, 1, OH);
  const int64_t band = strip * kStripsPerBand;
  const int64_t bands = (OH + band - 1) / band;
  const int64_t erows = (strip - 1) * s + k;  // expanded rows a strip can need
  const T *xp = x.data_ptr<T>(), *w1 = e.w.data_ptr<T>(), *w2 = d.w.data_ptr<T>(), *w3 = p.w.data_ptr<T>();
  const T *b1 = e.b.data_ptr_or_null<T>(), *b2 = d.b.data_ptr_or_null<T>(), *b3 = p.b.data_ptr_or_null<T>();
  T* yp = y.data_ptr<T>();
  parallel_for(0, g.N * bands, 1, [&](int64_t task_begin, int64_t task_end) {
    Scratch<T> ex(static_cast<size_t>(M * erows * W)), dw(static_cast<size_t>(M * strip * OW));
    for (int64_t task = task_begin; task < task_end; ++task) {
      const int64_t n = task / bands, band_end = std::min(OH, (task % bands + 1) * band);
      const T* xn = xp + n * C * H * W;
      int64_t lo = 0, hi = 0;  // image rows [lo, hi) are expanded, at ex's row 0..
      for (int64_t oh0 = (task % bands) * band; oh0 < band_end; oh0 += strip) {
        const int64_t rows = std::min(strip, band_end - oh0);
        const int64_t a = std::max<int64_t>(0, oh0 * s - pad), b = std::min<int64_t>(H, (oh0 + rows - 1) * s - pad + k);
        // Keep the rows this strip shares with the previous one, expand the rest.
        const int64_t keep = (hi > lo && a >= lo && a < hi) ? hi - a : 0;
        if (keep > 0 && a > lo)
          for (int64_t m = 0; m < M; ++m) std::memmove(ex.data() + m * erows * W, ex.data() + (m * erows + a - lo) * W,
                                                       sizeof(T) * keep * W);
        const int64_t fresh = b - a - keep;
        if (fresh > 0) {
          T* dst = ex.data() + keep * W;
          const auto ep = conv::bias_activation_epilogue<T>(dst, erows * W, b1, e.act);
          detail::gemm(false, false, M, fresh * W, C, T(1), w1, C, xn + (a + keep) * W, H * W, T(0), dst, erows * W,
                       ep ? &*ep : nullptr);
        }
        lo = a, hi = b;
        conv::depthwise_rows<T>(g, ex.data(), erows * W, a, b - a, oh0, rows, w2, b2, dw.data(), rows * OW, d.act);
        const int64_t at = n * O * OH * OW + oh0 * OW;
        T* yrows = yp + at;
        const auto ep = conv::bias_activation_epilogue<T>(yrows, OH * OW, b3, p.act, rp ? rp + at : nullptr);
        detail::gemm(false, false, O, rows * OW, M, T(1), w3, M, dw.data(), rows * OW, T(0), yrows, OH * OW,
                     ep ? &*ep : nullptr);
      }
    }
  });
}

}  // namespace

Tensor inverted_bottleneck(const Tensor& x_in, const ConvStage& expand, const ConvStage& depthwise, int64_t stride,
                           const ConvStage& project, const Tensor& residual_in) {
  const char* op = "inverted_bottleneck";
  EVIT_CHECK(x_in.dim() == 4, op, ": input must be 4-D [N,C,H,W], got ", x_in.desc());
  EVIT_CHECK(x_in.device().is_cpu(), op, ": CPU tensors only, got ", x_in.desc());
  EVIT_CHECK(x_in.dtype() == DType::f32 || x_in.dtype() == DType::f64, op, ": expected f32 or f64, got ",
             x_in.desc());
  for (const ConvStage* st : {&expand, &depthwise, &project}) {
    if (st == &expand && !st->w.defined()) continue;  // no expansion
    EVIT_CHECK(st->w.defined() && st->w.dim() == 4, op, ": every stage needs a 4-D weight");
    EVIT_CHECK(st->w.dtype() == x_in.dtype() && st->w.device() == x_in.device(), op, ": weight ", st->w.desc(),
               " does not match the input ", x_in.desc());
    EVIT_CHECK(!st->b.defined() || (st->b.dim() == 1 && st->b.size(0) == st->w.size(0) &&
                                    st->b.dtype() == x_in.dtype() && st->b.device() == x_in.device()),
               op, ": bias ", st->b.desc(), " does not fit weight ", st->w.desc());
    EVIT_CHECK(!GradMode::is_enabled() || (!st->w.requires_grad() && !(st->b.defined() && st->b.requires_grad())),
               op, ": has no gradient; call it without grad mode (NoGradGuard)");
  }
  EVIT_CHECK(!GradMode::is_enabled() || !x_in.requires_grad(), op,
             ": has no gradient; call it without grad mode (NoGradGuard)");
  const int64_t C = x_in.size(1), M = expand.w.defined() ? expand.w.size(0) : C, k = depthwise.w.size(2);
  EVIT_CHECK(!expand.w.defined() || (expand.w.size(1) == C && expand.w.size(2) == 1 && expand.w.size(3) == 1), op,
             ": expand weight ", expand.w.desc(), " must be [M, ", C, ", 1, 1] for input ", x_in.desc());
  EVIT_CHECK(depthwise.w.size(0) == M && depthwise.w.size(1) == 1 && k % 2 == 1 && depthwise.w.size(3) == k, op,
             ": depthwise weight ", depthwise.w.desc(), " must be [", M, ", 1, k, k] with odd k");
  EVIT_CHECK(project.w.size(1) == M && project.w.size(2) == 1 && project.w.size(3) == 1, op, ": project weight ",
             project.w.desc(), " must be [O, ", M, ", 1, 1]");
  EVIT_CHECK(stride >= 1, op, ": stride must be >= 1, got ", stride);
  conv::Geom g;  // the depthwise convolution's geometry
  g.N = x_in.size(0), g.C = g.O = M, g.H = x_in.size(2), g.W = x_in.size(3);
  g.set_window(k, k, stride, stride, k / 2, k / 2, 1, 1, M);
  EVIT_CHECK(g.H + 2 * g.ph >= k && g.W + 2 * g.pw >= k, op, ": input ", x_in.desc(), " is smaller than the ", k,
             "x", k, " window");
  g.OH = (g.H + 2 * g.ph - k) / stride + 1;
  g.OW = (g.W + 2 * g.pw - k) / stride + 1;
  const Tensor x = x_in.contiguous();
  const auto contiguous = [](const ConvStage& st) {
    if (!st.w.defined()) return st;
    return ConvStage{st.w.contiguous(), st.b.defined() ? st.b.contiguous() : Tensor(), st.act};
  };
  const ConvStage e = contiguous(expand), d = contiguous(depthwise), p = contiguous(project);
  const Shape out{g.N, p.w.size(0), g.OH, g.OW};
  if (residual_in.defined()) {
    EVIT_CHECK(residual_in.sizes() == out && residual_in.dtype() == x.dtype() && residual_in.device() == x.device(), op,
               ": residual ", residual_in.desc(), " must match the output ", dtype_name(x.dtype()), " ", shape_str(out));
    EVIT_CHECK(!GradMode::is_enabled() || !residual_in.requires_grad(), op,
               ": has no gradient; call it without grad mode (NoGradGuard)");
  }
  const Tensor residual = residual_in.defined() ? residual_in.contiguous() : Tensor();
  Tensor y = empty(out, {x.dtype(), x.device()});
  if (x.dtype() == DType::f32)
    run<float>(x, e, d, g, p, residual.data_ptr_or_null<float>(), y);
  else
    run<double>(x, e, d, g, p, residual.data_ptr_or_null<double>(), y);
  return y;
}

}  // namespace evit
