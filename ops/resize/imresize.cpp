// MATLAB-compatible bicubic imresize (see imresize.h for the algorithm).
#include "ops/resize/imresize.h"

#include <cmath>

#include "core/error.h"
#include "core/parallel.h"

namespace evit {

namespace {

// Keys cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic').
double cubic(double x) {
  const double ax = std::fabs(x), ax2 = ax * ax, ax3 = ax2 * ax;
  if (ax <= 1.0) return 1.5 * ax3 - 2.5 * ax2 + 1.0;
  if (ax <= 2.0) return -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0;
  return 0.0;
}

// One separable pass over the dimension of length `len` with `outer` independent lines before it
// and `inner` contiguous elements after it: in [outer, len, inner] -> out [outer, out_len, inner].
template <class T>
void resize_dim(const T* in, T* out, int64_t outer, int64_t len, int64_t inner,
                const ResizeWeights& rw) {
  const int64_t out_len = rw.out_len, taps = rw.taps;
  // Work items: (outer line, output position). Fixed grain: results never depend on threads.
  const int64_t items = outer * out_len;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner * taps));
  parallel_for(0, items, grain, [&](int64_t b, int64_t e) {
    std::vector<double> acc(inner);
    for (int64_t it = b; it < e; ++it) {
      const int64_t o = it / out_len, i = it % out_len;
      const T* src = in + o * len * inner;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t k = 0; k < taps; ++k) {
        const double w = rw.weight[i * taps + k];
        const T* row = src + rw.index[i * taps + k] * inner;
        for (int64_t j = 0; j < inner; ++j) acc[j] += w * static_cast<double>(row[j]);
      }
      T* dst = out + (o * out_len + i) * inner;
      for (int64_t j = 0; j < inner; ++j) dst[j] = static_cast<T>(acc[j]);
    }
  });
}

// Rows of length `len` (innermost): in [outer, len] -> out [outer, out_len].
template <class T>
void resize_last(const T* in, T* out, int64_t outer, int64_t len, const ResizeWeights& rw) {
  const int64_t out_len = rw.out_len, taps = rw.taps;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, out_len * taps));
  parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const T* src = in + o * len;
      T* dst = out + o * out_len;
      for (int64_t i = 0; i < out_len; ++i) {
        double acc = 0.0;
        const int64_t* idx = &rw.index[i * taps];
        const double* w = &rw.weight[i * taps];
        for (int64_t k = 0; k < taps; ++k) acc += w[k] * static_cast<double>(src[idx[k]]);
        dst[i] = static_cast<T>(acc);
      }
    }
  });
}

Tensor imresize_impl(const Tensor& img, int64_t out_h, int64_t out_w, double scale_h,
                     double scale_w) {
  EVIT_CHECK(img.dim() >= 2 && img.dim() <= 4,
             "imresize: expected [H,W], [C,H,W] or [N,C,H,W], got ", img.desc());
  EVIT_CHECK(img.dtype() == DType::f32 || img.dtype() == DType::f64,
             "imresize: expected an f32 or f64 tensor, got ", img.desc());
  EVIT_CHECK(img.device().is_cpu(), "imresize: CPU tensors only, got ", img.desc());
  const int64_t H = img.size(-2), W = img.size(-1);
  EVIT_CHECK(H > 0 && W > 0, "imresize: empty image ", img.desc());
  EVIT_CHECK(out_h > 0 && out_w > 0, "imresize: output size must be positive, got ", out_h, "x",
             out_w, " for ", img.desc());
  const int64_t planes = img.numel() / (H * W);
  Tensor x = img.contiguous();
  const ResizeWeights rh = imresize_weights(H, out_h, scale_h);
  const ResizeWeights rwt = imresize_weights(W, out_w, scale_w);
  Shape out_shape = img.sizes();
  out_shape[out_shape.size() - 2] = out_h;
  out_shape[out_shape.size() - 1] = out_w;
  Tensor out = empty(out_shape, img.dtype());
  // MATLAB resizes the dimension with the smaller scale first (stable sort: rows on ties).
  const bool rows_first = scale_h <= scale_w;
  auto run = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* in = x.data_ptr<T>();
    T* o = out.data_ptr<T>();
    if (rows_first) {
      std::vector<T> tmp(static_cast<size_t>(planes * out_h * W));
      resize_dim<T>(in, tmp.data(), planes, H, W, rh);
      resize_last<T>(tmp.data(), o, planes * out_h, W, rwt);
    } else {
      std::vector<T> tmp(static_cast<size_t>(planes * H * out_w));
      resize_last<T>(in, tmp.data(), planes * H, W, rwt);
      resize_dim<T>(tmp.data(), o, planes, H, out_w, rh);
    }
  };
  if (img.dtype() == DType::f32) run(static_cast<float*>(nullptr));
  else run(static_cast<double*>(nullptr));
  return out;
}

}  // namespace

ResizeWeights imresize_weights(int64_t in_len, int64_t out_len, double scale) {
  EVIT_CHECK(in_len > 0 && out_len > 0 && scale > 0 && std::isfinite(scale),
             "imresize_weights: bad arguments in_len=", in_len, " out_len=", out_len,
             " scale=", scale);
  const bool shrink = scale < 1.0;
  const double kernel_width = shrink ? 4.0 / scale : 4.0;
  const int64_t P = static_cast<int64_t>(std::ceil(kernel_width)) + 2;
  std::vector<double> w(out_len * P);
  std::vector<int64_t> idx(out_len * P);
  for (int64_t i = 0; i < out_len; ++i) {
    // 1-based coordinates, exactly as MATLAB's contributions().
    const double x = static_cast<double>(i + 1);
    const double u = x / scale + 0.5 * (1.0 - 1.0 / scale);
    const double left = std::floor(u - kernel_width / 2.0);
    double sum = 0.0;
    for (int64_t k = 0; k < P; ++k) {
      const double pos = left + static_cast<double>(k);
      const double d = u - pos;
      const double v = shrink ? scale * cubic(scale * d) : cubic(d);
      w[i * P + k] = v;
      sum += v;
      // Symmetric mirror on [1, in_len] with period 2 in_len (aux = [1..n, n..1]).
      const int64_t period = 2 * in_len;
      int64_t m = (static_cast<int64_t>(pos) - 1) % period;
      if (m < 0) m += period;
      idx[i * P + k] = m < in_len ? m : period - 1 - m;  // 0-based
    }
    for (int64_t k = 0; k < P; ++k) w[i * P + k] /= sum;
  }
  // MATLAB drops the tap columns whose weight is zero for every output; we do the same so the
  // summation visits exactly the same terms.
  std::vector<bool> keep(P, false);
  for (int64_t k = 0; k < P; ++k)
    for (int64_t i = 0; i < out_len && !keep[k]; ++i) keep[k] = w[i * P + k] != 0.0;
  ResizeWeights r;
  r.out_len = out_len;
  for (int64_t k = 0; k < P; ++k) r.taps += keep[k];
  r.index.reserve(out_len * r.taps);
  r.weight.reserve(out_len * r.taps);
  for (int64_t i = 0; i < out_len; ++i)
    for (int64_t k = 0; k < P; ++k)
      if (keep[k]) {
        r.index.push_back(idx[i * P + k]);
        r.weight.push_back(w[i * P + k]);
      }
  return r;
}

Tensor imresize(const Tensor& img, double scale) {
  EVIT_CHECK(scale > 0 && std::isfinite(scale), "imresize: scale must be positive, got ", scale);
  EVIT_CHECK(img.dim() >= 2, "imresize: expected [H,W], [C,H,W] or [N,C,H,W], got ", img.desc());
  // MATLAB: output size = ceil(scale * input size), resampling with the given scale.
  const int64_t oh = static_cast<int64_t>(std::ceil(scale * static_cast<double>(img.size(-2))));
  const int64_t ow = static_cast<int64_t>(std::ceil(scale * static_cast<double>(img.size(-1))));
  return imresize_impl(img, oh, ow, scale, scale);
}

Tensor imresize(const Tensor& img, int64_t out_h, int64_t out_w) {
  EVIT_CHECK(img.dim() >= 2, "imresize: expected [H,W], [C,H,W] or [N,C,H,W], got ", img.desc());
  EVIT_CHECK(out_h > 0 && out_w > 0, "imresize: output size must be positive, got ", out_h, "x",
             out_w);
  return imresize_impl(img, out_h, out_w, double(out_h) / double(img.size(-2)),
                       double(out_w) / double(img.size(-1)));
}

Tensor rgb_to_y(const Tensor& rgb) {
  const bool batched = rgb.dim() == 4;
  EVIT_CHECK((rgb.dim() == 3 || batched) && rgb.size(batched ? 1 : 0) == 3,
             "rgb_to_y: expected [3,H,W] or [N,3,H,W], got ", rgb.desc());
  EVIT_CHECK(rgb.dtype() == DType::f32 || rgb.dtype() == DType::f64,
             "rgb_to_y: expected f32 or f64, got ", rgb.desc());
  Tensor x = rgb.contiguous();
  const int64_t N = batched ? x.size(0) : 1, HW = x.size(-2) * x.size(-1);
  Shape out_shape = batched ? Shape{N, x.size(2), x.size(3)} : Shape{x.size(1), x.size(2)};
  Tensor y = empty(out_shape, x.dtype());
  auto run = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* in = x.data_ptr<T>();
    T* out = y.data_ptr<T>();
    for (int64_t n = 0; n < N; ++n) {
      const T* r = in + n * 3 * HW;
      for (int64_t p = 0; p < HW; ++p)
        out[n * HW + p] = static_cast<T>(16.0 + 65.481 * double(r[p]) + 128.553 * double(r[HW + p]) +
                                         24.966 * double(r[2 * HW + p]));
    }
  };
  if (x.dtype() == DType::f32) run(static_cast<float*>(nullptr));
  else run(static_cast<double*>(nullptr));
  return y;
}

}  // namespace evit
