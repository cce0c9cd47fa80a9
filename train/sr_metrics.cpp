// PSNR / SSIM for super-resolution (see sr_metrics.h for the protocols).
#include "train/sr_metrics.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "ops/resize/imresize.h"

namespace evit {

namespace {

// Cropped plane as a dense double buffer.
struct Plane {
  int64_t h = 0, w = 0;
  std::vector<double> v;
};

Plane crop_plane(const Tensor& t, int64_t border, const char* op) {
  EVIT_CHECK(t.dim() == 2, op, ": expected a [H,W] plane, got ", t.desc());
  EVIT_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, op,
             ": expected f32 or f64, got ", t.desc());
  EVIT_CHECK(border >= 0, op, ": border must be >= 0, got ", border);
  const int64_t H = t.size(0), W = t.size(1);
  EVIT_CHECK(H > 2 * border && W > 2 * border, op, ": border ", border,
             " leaves nothing of a plane of ", t.desc());
  Tensor d = t.to(DType::f64).contiguous();
  const double* p = d.data_ptr<double>();
  Plane out;
  out.h = H - 2 * border;
  out.w = W - 2 * border;
  out.v.resize(out.h * out.w);
  for (int64_t y = 0; y < out.h; ++y)
    for (int64_t x = 0; x < out.w; ++x) out.v[y * out.w + x] = p[(y + border) * W + x + border];
  return out;
}

void check_pair(const Tensor& a, const Tensor& b, const char* op) {
  EVIT_CHECK(a.sizes() == b.sizes(), op, ": shapes differ: ", a.desc(), " vs ", b.desc());
}

// 'valid' separable filtering with a normalised 1-D window: out is (h-k+1) x (w-k+1).
std::vector<double> filter_valid(const std::vector<double>& in, int64_t h, int64_t w,
                                 const std::vector<double>& g) {
  const int64_t k = static_cast<int64_t>(g.size());
  const int64_t oh = h - k + 1, ow = w - k + 1;
  std::vector<double> tmp(oh * w, 0.0), out(oh * ow, 0.0);
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t i = 0; i < k; ++i) {
      const double gi = g[i];
      const double* src = &in[(y + i) * w];
      double* dst = &tmp[y * w];
      for (int64_t x = 0; x < w; ++x) dst[x] += gi * src[x];
    }
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      double s = 0.0;
      for (int64_t j = 0; j < k; ++j) s += g[j] * tmp[y * w + x + j];
      out[y * ow + x] = s;
    }
  return out;
}

}  // namespace

double psnr(const Tensor& a, const Tensor& b, int64_t border, double data_range) {
  check_pair(a, b, "psnr");
  Plane pa = crop_plane(a, border, "psnr"), pb = crop_plane(b, border, "psnr");
  double se = 0.0;
  for (size_t i = 0; i < pa.v.size(); ++i) {
    const double d = pa.v[i] - pb.v[i];
    se += d * d;
  }
  const double mse = se / static_cast<double>(pa.v.size());
  if (mse == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(data_range * data_range / mse);
}

double ssim(const Tensor& a, const Tensor& b, int64_t border, double data_range) {
  check_pair(a, b, "ssim");
  Plane pa = crop_plane(a, border, "ssim"), pb = crop_plane(b, border, "ssim");
  constexpr int64_t kWin = 11;
  EVIT_CHECK(pa.h >= kWin && pa.w >= kWin, "ssim: the cropped plane (", pa.h, "x", pa.w,
             ") is smaller than the 11x11 window");
  // fspecial('gaussian', 11, 1.5) is the outer product of this normalised 1-D window.
  std::vector<double> g(kWin);
  double gs = 0.0;
  for (int64_t i = 0; i < kWin; ++i) {
    const double x = static_cast<double>(i - kWin / 2);
    g[i] = std::exp(-x * x / (2.0 * 1.5 * 1.5));
    gs += g[i];
  }
  for (double& v : g) v /= gs;
  const int64_t n = pa.h * pa.w;
  std::vector<double> aa(n), bb(n), ab(n);
  for (int64_t i = 0; i < n; ++i) {
    aa[i] = pa.v[i] * pa.v[i];
    bb[i] = pb.v[i] * pb.v[i];
    ab[i] = pa.v[i] * pb.v[i];
  }
  const auto mu1 = filter_valid(pa.v, pa.h, pa.w, g), mu2 = filter_valid(pb.v, pa.h, pa.w, g);
  const auto s11 = filter_valid(aa, pa.h, pa.w, g), s22 = filter_valid(bb, pa.h, pa.w, g),
             s12 = filter_valid(ab, pa.h, pa.w, g);
  const double C1 = (0.01 * data_range) * (0.01 * data_range);
  const double C2 = (0.03 * data_range) * (0.03 * data_range);
  double sum = 0.0;
  for (size_t i = 0; i < mu1.size(); ++i) {
    const double m1 = mu1[i], m2 = mu2[i];
    const double v1 = s11[i] - m1 * m1, v2 = s22[i] - m2 * m2, c12 = s12[i] - m1 * m2;
    sum += ((2 * m1 * m2 + C1) * (2 * c12 + C2)) / ((m1 * m1 + m2 * m2 + C1) * (v1 + v2 + C2));
  }
  return sum / static_cast<double>(mu1.size());
}

Image modcrop(const Image& image, int64_t scale) {
  EVIT_CHECK(scale >= 1, "modcrop: scale must be >= 1, got ", scale);
  const int64_t h = image.height - image.height % scale, w = image.width - image.width % scale;
  EVIT_CHECK(h > 0 && w > 0, "modcrop: image ", image.desc(), " is smaller than scale ", scale);
  Image out(h, w, image.channels, image.bit_depth);
  const size_t bps = image.bit_depth / 8;
  const size_t row = static_cast<size_t>(w * image.channels) * bps;
  for (int64_t y = 0; y < h; ++y)
    std::copy_n(image.data.data() + static_cast<size_t>(y * image.width * image.channels) * bps,
                row, out.data.data() + y * row);
  return out;
}

Tensor y_plane_u8(const Image& image) {
  EVIT_CHECK(image.bit_depth == 8, "y_plane_u8: expected an 8-bit image, got ", image.desc());
  const int64_t H = image.height, W = image.width, C = image.channels;
  Tensor y = empty({H, W}, DType::f64);
  double* out = y.data_ptr<double>();
  const uint8_t* in = image.samples8();
  for (int64_t p = 0; p < H * W; ++p) {
    const uint8_t* px = in + p * C;
    if (C <= 2) {
      out[p] = px[0];
    } else {
      // MATLAB rgb2ycbcr on uint8: offset 16 plus the BT.601 row over 255, rounded.
      const double v = 16.0 + (65.481 * px[0] + 128.553 * px[1] + 24.966 * px[2]) / 255.0;
      out[p] = std::round(v);
    }
  }
  return y;
}

int64_t sr_eval_min_side(int64_t scale) { return 2 * scale + 11; }

void check_sr_eval_size(int64_t h, int64_t w, int64_t scale, const std::string& id) {
  const int64_t need = sr_eval_min_side(scale);
  EVIT_CHECK(h / scale * scale >= need && w / scale * scale >= need, "super-resolution evaluation: '", id, "' is ", h,
             "x", w, "; scoring at x", scale, " needs at least ", need, " pixels per side (a ", scale,
             "-pixel border on each side plus SSIM's 11-pixel window)");
}

SrScore bicubic_baseline_y(const Image& hr, int64_t scale) {
  EVIT_CHECK(scale >= 1, "bicubic_baseline_y: scale must be >= 1, got ", scale);
  Tensor y = y_plane_u8(modcrop(hr, scale));
  Tensor lr = imresize(y, 1.0 / static_cast<double>(scale));
  Tensor sr = imresize(lr, static_cast<double>(scale));
  EVIT_CHECK(sr.sizes() == y.sizes(), "bicubic_baseline_y: resize round trip gave ", sr.desc(),
             " for ", y.desc());
  double* p = sr.data_ptr<double>();
  for (int64_t i = 0; i < sr.numel(); ++i) p[i] = std::round(std::clamp(p[i], 0.0, 255.0));
  return {psnr(sr, y, scale), ssim(sr, y, scale)};
}

SrScore score_sr_rgb(const Tensor& sr, const Tensor& hr, int64_t border) {
  EVIT_CHECK(sr.dim() == 3 && sr.size(0) == 3, "score_sr_rgb: expected sr [3,H,W], got ",
             sr.desc());
  EVIT_CHECK(sr.sizes() == hr.sizes(), "score_sr_rgb: shapes differ: ", sr.desc(), " vs ",
             hr.desc());
  auto y_of = [](const Tensor& t) {
    Tensor q = t.to(DType::f64).clone();
    double* p = q.data_ptr<double>();
    for (int64_t i = 0; i < q.numel(); ++i)
      p[i] = std::round(std::clamp(std::isnan(p[i]) ? 0.0 : p[i], 0.0, 1.0) * 255.0) / 255.0;
    return rgb_to_y(q);
  };
  Tensor ys = y_of(sr), yh = y_of(hr);
  return {psnr(ys, yh, border), ssim(ys, yh, border)};
}

}  // namespace evit
