#include "data/rand_augment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "core/error.h"

// The ops reproduce PIL's arithmetic to the last bit where PIL is exact (float blends, the
// 3x3 filter, the cubic sampler). A fused multiply-add rounds once where PIL's build (generic
// x86-64, no FMA) rounds twice, which can move a value across an integer boundary, so
// contraction is off for this file.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace evit::data {
namespace augment {
namespace {

struct Img {
  int64_t h, w;
  Tensor t;  // contiguous u8 [h,w,3]
  const uint8_t* p() const { return t.data_ptr<uint8_t>(); }
};

Img checked(const Tensor& img, const char* op) {
  EVIT_CHECK(img.dtype() == DType::u8 && img.dim() == 3 && img.size(2) == 3, "augment::", op,
             ": expected a u8 [H,W,3] image, got ", img.desc());
  return {img.size(0), img.size(1), img.contiguous()};
}

Tensor new_like(const Img& im) { return empty({im.h, im.w, 3}, DType::u8); }

using Lut = std::array<std::array<uint8_t, 256>, 3>;

Tensor apply_lut(const Img& im, const Lut& lut) {
  Tensor out = new_like(im);
  const uint8_t* p = im.p();
  uint8_t* q = out.data_ptr<uint8_t>();
  for (int64_t i = 0, n = im.h * im.w; i < n; ++i)
    for (int c = 0; c < 3; ++c) q[i * 3 + c] = lut[c][p[i * 3 + c]];
  return out;
}

// The same 256-entry table for the three channels.
Tensor apply_lut(const Img& im, const std::array<uint8_t, 256>& one) { return apply_lut(im, Lut{one, one, one}); }

std::array<std::array<int64_t, 256>, 3> histograms(const Img& im) {
  std::array<std::array<int64_t, 256>, 3> h{};
  const uint8_t* p = im.p();
  for (int64_t i = 0, n = im.h * im.w; i < n; ++i)
    for (int c = 0; c < 3; ++c) ++h[c][p[i * 3 + c]];
  return h;
}

// PIL's convert("L"): ITU-R 601-2 luma in 16-bit fixed point, rounded.
uint8_t luma(const uint8_t* rgb) { return static_cast<uint8_t>((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16); }

// PIL's Image.blend(degenerate, image, alpha) for one value: computed in float (alpha arrives as
// a C float), truncated; outside [0,1] the result is clipped first.
inline uint8_t blend(uint8_t deg, uint8_t img, float alpha) {
  float t = static_cast<float>(deg) + alpha * static_cast<float>(static_cast<int>(img) - static_cast<int>(deg));
  if (alpha >= 0.0f && alpha <= 1.0f) return static_cast<uint8_t>(t);
  if (t <= 0.0f) return 0;
  if (t >= 255.0f) return 255;
  return static_cast<uint8_t>(t);
}

Tensor blend_image(const Img& im, const Tensor& degenerate, double factor) {
  const float alpha = static_cast<float>(factor);
  Tensor out = new_like(im);
  const uint8_t* p = im.p();
  const uint8_t* d = degenerate.data_ptr<uint8_t>();
  uint8_t* q = out.data_ptr<uint8_t>();
  for (int64_t i = 0, n = im.h * im.w * 3; i < n; ++i) q[i] = blend(d[i], p[i], alpha);
  return out;
}

// PIL's cubic convolution with a = -1 (Geometry.c), on four samples at fraction d.
inline double cubic(double v1, double v2, double v3, double v4, double d) {
  double p1 = v2;
  double p2 = -v1 + v3;
  double p3 = 2 * (v1 - v2) + v3 - v4;
  double p4 = -v1 + v2 - v3 + v4;
  return p1 + d * (p2 + d * (p3 + d * p4));
}

inline int64_t clip_index(int64_t v, int64_t n) { return v < 0 ? 0 : (v < n ? v : n - 1); }

// PIL's bicubic_filter32RGB: samples at (xin, yin) in pixel-edge coordinates; false outside.
// Columns are clamped to the image; rows beyond the first repeat the previous row's result.
bool sample_bicubic(const Img& im, double xin, double yin, uint8_t* out) {
  if (xin < 0.0 || xin >= im.w || yin < 0.0 || yin >= im.h) return false;
  xin -= 0.5, yin -= 0.5;
  const int64_t xf = static_cast<int64_t>(std::floor(xin)), yf = static_cast<int64_t>(std::floor(yin));
  const double dx = xin - xf, dy = yin - yf;
  const int64_t x = xf - 1, y = yf - 1;
  const int64_t xs[4] = {clip_index(x, im.w), clip_index(x + 1, im.w), clip_index(x + 2, im.w), clip_index(x + 3, im.w)};
  const uint8_t* p = im.p();
  for (int c = 0; c < 3; ++c) {
    auto row = [&](int64_t r) {
      const uint8_t* in = p + r * im.w * 3 + c;
      return cubic(in[xs[0] * 3], in[xs[1] * 3], in[xs[2] * 3], in[xs[3] * 3], dx);
    };
    double v[4];
    v[0] = row(clip_index(y, im.h));
    for (int k = 1; k < 4; ++k) v[k] = (y + k >= 0 && y + k < im.h) ? row(y + k) : v[k - 1];
    const double r = cubic(v[0], v[1], v[2], v[3], dy);
    out[c] = r <= 0.0 ? 0 : (r >= 255.0 ? 255 : static_cast<uint8_t>(r));
  }
  return true;
}

// PIL's bilinear_filter32RGB (same conventions, truncating).
bool sample_bilinear(const Img& im, double xin, double yin, uint8_t* out) {
  if (xin < 0.0 || xin >= im.w || yin < 0.0 || yin >= im.h) return false;
  xin -= 0.5, yin -= 0.5;
  const int64_t x = static_cast<int64_t>(std::floor(xin)), y = static_cast<int64_t>(std::floor(yin));
  const double dx = xin - x, dy = yin - y;
  const int64_t x0 = clip_index(x, im.w), x1 = clip_index(x + 1, im.w);
  const uint8_t* p = im.p();
  for (int c = 0; c < 3; ++c) {
    const uint8_t* in = p + clip_index(y, im.h) * im.w * 3 + c;
    double v1 = in[x0 * 3] + (in[x1 * 3] - in[x0 * 3]) * dx, v2 = v1;
    if (y + 1 >= 0 && y + 1 < im.h) {
      in = p + (y + 1) * im.w * 3 + c;
      v2 = in[x0 * 3] + (in[x1 * 3] - in[x0 * 3]) * dx;
    }
    out[c] = static_cast<uint8_t>(v1 + (v2 - v1) * dy);
  }
  return true;
}

// Python's round(v, 15) (correctly rounded through decimal text, as CPython does).
double round15(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15f", v);
  return std::strtod(buf, nullptr);
}

}  // namespace

Tensor to_u8_hwc(const Tensor& chw) {
  EVIT_CHECK(chw.dim() == 3 && chw.size(0) == 3, "rand_augment: expected a [3,H,W] image, got ", chw.desc());
  Tensor f = chw.to(DType::f32).contiguous();
  const int64_t h = chw.size(1), w = chw.size(2), hw = h * w;
  Tensor out = empty({h, w, 3}, DType::u8);
  const float* p = f.data_ptr<float>();
  uint8_t* q = out.data_ptr<uint8_t>();
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < hw; ++i) {
      float v = std::clamp(p[c * hw + i], 0.0f, 1.0f);
      q[i * 3 + c] = static_cast<uint8_t>(std::floor(v * 255.0f + 0.5f));
    }
  return out;
}

Tensor from_u8_hwc(const Tensor& hwc) {
  checked(hwc, "from_u8_hwc");
  return hwc_u8_to_chw_float(hwc);
}

Tensor auto_contrast(const Tensor& img) {
  Img im = checked(img, "auto_contrast");
  auto hist = histograms(im);
  Lut lut;
  for (int c = 0; c < 3; ++c) {
    const auto& h = hist[c];
    int lo = 0, hi = 255;
    while (lo < 255 && h[lo] == 0) ++lo;
    while (hi > 0 && h[hi] == 0) --hi;
    for (int i = 0; i < 256; ++i) {
      if (hi <= lo) {
        lut[c][i] = static_cast<uint8_t>(i);  // a single level: left alone
        continue;
      }
      const double scale = 255.0 / (hi - lo), offset = -lo * scale;
      const int v = static_cast<int>(i * scale + offset);  // Python's int(): toward zero
      lut[c][i] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  }
  return apply_lut(im, lut);
}

Tensor equalize(const Tensor& img) {
  Img im = checked(img, "equalize");
  auto hist = histograms(im);
  Lut lut;
  for (int c = 0; c < 3; ++c) {
    const auto& h = hist[c];
    int64_t used = 0, total = 0, last = 0;
    for (int i = 0; i < 256; ++i)
      if (h[i]) ++used, total += h[i], last = h[i];
    const int64_t step = used <= 1 ? 0 : (total - last) / 255;
    int64_t n = step / 2;
    for (int i = 0; i < 256; ++i) {
      if (step == 0) {
        lut[c][i] = static_cast<uint8_t>(i);
        continue;
      }
      lut[c][i] = static_cast<uint8_t>(std::min<int64_t>(255, n / step));
      n += h[i];
    }
  }
  return apply_lut(im, lut);
}

Tensor invert(const Tensor& img) {
  Img im = checked(img, "invert");
  std::array<uint8_t, 256> lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(255 - i);
  return apply_lut(im, lut);
}

Tensor posterize(const Tensor& img, int bits) {
  Img im = checked(img, "posterize");
  EVIT_CHECK(bits >= 0, "augment::posterize: bits must be >= 0, got ", bits);
  if (bits >= 8) return im.t.clone();
  const int mask = ~((1 << (8 - bits)) - 1);
  std::array<uint8_t, 256> lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i & mask);
  return apply_lut(im, lut);
}

Tensor solarize(const Tensor& img, int threshold) {
  Img im = checked(img, "solarize");
  std::array<uint8_t, 256> lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i < threshold ? i : 255 - i);
  return apply_lut(im, lut);
}

Tensor solarize_add(const Tensor& img, int add, int threshold) {
  Img im = checked(img, "solarize_add");
  std::array<uint8_t, 256> lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i < threshold ? std::clamp(i + add, 0, 255) : i);
  return apply_lut(im, lut);
}

Tensor color(const Tensor& img, double factor) {
  Img im = checked(img, "color");
  Tensor gray = new_like(im);
  const uint8_t* p = im.p();
  uint8_t* g = gray.data_ptr<uint8_t>();
  for (int64_t i = 0, n = im.h * im.w; i < n; ++i) g[i * 3] = g[i * 3 + 1] = g[i * 3 + 2] = luma(p + i * 3);
  return blend_image(im, gray, factor);
}

Tensor contrast(const Tensor& img, double factor) {
  Img im = checked(img, "contrast");
  // ImageStat's mean of the L image (a float sum over the histogram), rounded half up.
  std::array<int64_t, 256> h{};
  const uint8_t* p = im.p();
  const int64_t n = im.h * im.w;
  for (int64_t i = 0; i < n; ++i) ++h[luma(p + i * 3)];
  double sum = 0;
  for (int i = 0; i < 256; ++i) sum += static_cast<double>(i) * static_cast<double>(h[i]);
  const int mean = static_cast<int>(sum / static_cast<double>(n) + 0.5);
  Tensor deg = full({im.h, im.w, 3}, mean, DType::u8);
  return blend_image(im, deg, factor);
}

Tensor brightness(const Tensor& img, double factor) {
  Img im = checked(img, "brightness");
  return blend_image(im, zeros({im.h, im.w, 3}, DType::u8), factor);
}

Tensor sharpness(const Tensor& img, double factor) {
  Img im = checked(img, "sharpness");
  // ImageFilter.SMOOTH: the integer kernel divided by 13 in float, accumulated row by row (the
  // row below first, as PIL does) in float, rounded half up; border pixels are copied.
  Tensor smooth = im.t.clone();
  if (im.h >= 3 && im.w >= 3) {
    const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
    const uint8_t* p = im.p();
    uint8_t* q = smooth.data_ptr<uint8_t>();
    const int64_t stride = im.w * 3;
    for (int64_t y = 1; y < im.h - 1; ++y)
      for (int64_t x = 1; x < im.w - 1; ++x)
        for (int c = 0; c < 3; ++c) {
          const uint8_t* m = p + y * stride + x * 3 + c;
          auto row = [&](const uint8_t* r, float centre) {
            return static_cast<float>(r[-3]) * k1 + static_cast<float>(r[0]) * centre + static_cast<float>(r[3]) * k1;
          };
          float ss = 0.0f;
          ss += row(m + stride, k1);
          ss += row(m, k5);
          ss += row(m - stride, k1);
          q[y * stride + x * 3 + c] = ss <= 0.0f ? 0 : (ss >= 255.0f ? 255 : static_cast<uint8_t>(ss + 0.5f));
        }
  }
  return blend_image(im, smooth, factor);
}

Tensor affine(const Tensor& img, const std::array<double, 6>& a, Resample resample, std::array<uint8_t, 3> fill) {
  Img im = checked(img, "affine");
  Tensor out = new_like(im);
  uint8_t* q = out.data_ptr<uint8_t>();
  for (int64_t y = 0; y < im.h; ++y)
    for (int64_t x = 0; x < im.w; ++x) {
      const double xin = x + 0.5, yin = y + 0.5;
      const double sx = a[0] * xin + a[1] * yin + a[2], sy = a[3] * xin + a[4] * yin + a[5];
      uint8_t* o = q + (y * im.w + x) * 3;
      const bool inside = resample == Resample::bicubic ? sample_bicubic(im, sx, sy, o) : sample_bilinear(im, sx, sy, o);
      if (!inside) o[0] = fill[0], o[1] = fill[1], o[2] = fill[2];
    }
  return out;
}

Tensor rotate(const Tensor& img, double degrees, Resample resample, std::array<uint8_t, 3> fill) {
  Img im = checked(img, "rotate");
  // Image.rotate: the angle is reduced mod 360 (Python's sign rule) first; 0 is a copy.
  double angle = std::fmod(degrees, 360.0);
  if (angle < 0) angle += 360.0;
  if (angle == 0) return im.t.clone();
  const double rad = -(angle * (3.141592653589793 / 180.0));
  const double c = round15(std::cos(rad)), s = round15(std::sin(rad)), ms = round15(-std::sin(rad));
  const double cx = im.w / 2.0, cy = im.h / 2.0;
  std::array<double, 6> m = {c, s, 0.0, ms, c, 0.0};
  m[2] = m[0] * -cx + m[1] * -cy + 0.0 + cx;
  m[5] = m[3] * -cx + m[4] * -cy + 0.0 + cy;
  return affine(img, m, resample, fill);
}

Tensor shear_x(const Tensor& img, double factor, Resample resample, std::array<uint8_t, 3> fill) {
  return affine(img, {1, factor, 0, 0, 1, 0}, resample, fill);
}

Tensor shear_y(const Tensor& img, double factor, Resample resample, std::array<uint8_t, 3> fill) {
  return affine(img, {1, 0, 0, factor, 1, 0}, resample, fill);
}

Tensor translate_x(const Tensor& img, double pixels, Resample resample, std::array<uint8_t, 3> fill) {
  return affine(img, {1, 0, pixels, 0, 1, 0}, resample, fill);
}

Tensor translate_y(const Tensor& img, double pixels, Resample resample, std::array<uint8_t, 3> fill) {
  return affine(img, {1, 0, 0, 0, 1, pixels}, resample, fill);
}

// ---- ops by name ----
namespace {
struct OpInfo {
  Op op;
  const char* name;
};
constexpr OpInfo kOps[] = {
    {Op::AutoContrast, "AutoContrast"}, {Op::Equalize, "Equalize"},
    {Op::Invert, "Invert"}, {Op::Rotate, "Rotate"},
    {Op::Posterize, "Posterize"}, {Op::PosterizeIncreasing, "PosterizeIncreasing"},
    {Op::Solarize, "Solarize"}, {Op::SolarizeIncreasing, "SolarizeIncreasing"},
    {Op::SolarizeAdd, "SolarizeAdd"}, {Op::Color, "Color"},
    {Op::ColorIncreasing, "ColorIncreasing"}, {Op::Contrast, "Contrast"},
    {Op::ContrastIncreasing, "ContrastIncreasing"}, {Op::Brightness, "Brightness"},
    {Op::BrightnessIncreasing, "BrightnessIncreasing"}, {Op::Sharpness, "Sharpness"},
    {Op::SharpnessIncreasing, "SharpnessIncreasing"}, {Op::ShearX, "ShearX"},
    {Op::ShearY, "ShearY"}, {Op::TranslateXRel, "TranslateXRel"},
    {Op::TranslateYRel, "TranslateYRel"},
};
}  // namespace

const char* op_name(Op op) {
  for (const auto& i : kOps)
    if (i.op == op) return i.name;
  EVIT_THROW("augment::op_name: unknown op ", static_cast<int>(op));
}

Op op_from_name(const std::string& name) {
  for (const auto& i : kOps)
    if (name == i.name) return i.op;
  EVIT_THROW("augment: unknown RandAugment op '", name, "'");
}

const std::vector<Op>& rand_ops(bool increasing) {
  static const std::vector<Op> plain = {Op::AutoContrast, Op::Equalize, Op::Invert, Op::Rotate, Op::Posterize,
                                        Op::Solarize, Op::SolarizeAdd, Op::Color, Op::Contrast, Op::Brightness,
                                        Op::Sharpness, Op::ShearX, Op::ShearY, Op::TranslateXRel, Op::TranslateYRel};
  static const std::vector<Op> inc = {Op::AutoContrast, Op::Equalize, Op::Invert, Op::Rotate,
                                      Op::PosterizeIncreasing, Op::SolarizeIncreasing, Op::SolarizeAdd,
                                      Op::ColorIncreasing, Op::ContrastIncreasing, Op::BrightnessIncreasing,
                                      Op::SharpnessIncreasing, Op::ShearX, Op::ShearY, Op::TranslateXRel,
                                      Op::TranslateYRel};
  return increasing ? inc : plain;
}

double op_argument(Op op, double m, bool negate) {
  const double level = m / 10.0;  // timm's _LEVEL_DENOM
  auto sign = [&](double v) { return negate ? -v : v; };
  switch (op) {
    case Op::AutoContrast: case Op::Equalize: case Op::Invert: return 0;
    case Op::Rotate: return sign(level * 30.0);
    case Op::Posterize: return static_cast<int>(level * 4);
    case Op::PosterizeIncreasing: return 4 - static_cast<int>(level * 4);
    case Op::Solarize: return static_cast<int>(level * 256);
    case Op::SolarizeIncreasing: return 256 - static_cast<int>(level * 256);
    case Op::SolarizeAdd: return static_cast<int>(level * 110);
    case Op::Color: case Op::Contrast: case Op::Brightness: case Op::Sharpness: return level * 1.8 + 0.1;
    case Op::ColorIncreasing: case Op::ContrastIncreasing: case Op::BrightnessIncreasing:
    case Op::SharpnessIncreasing: return std::max(0.1, 1.0 + sign(level * 0.9));
    case Op::ShearX: case Op::ShearY: return sign(level * 0.3);
    case Op::TranslateXRel: case Op::TranslateYRel: return sign(level * 0.45);
  }
  EVIT_THROW("augment::op_argument: unknown op ", static_cast<int>(op));
}

Tensor apply_op(const Tensor& img, Op op, double m, bool negate, Resample r, std::array<uint8_t, 3> fill) {
  const double a = op_argument(op, m, negate);
  switch (op) {
    case Op::AutoContrast: return auto_contrast(img);
    case Op::Equalize: return equalize(img);
    case Op::Invert: return invert(img);
    case Op::Rotate: return rotate(img, a, r, fill);
    case Op::Posterize: case Op::PosterizeIncreasing: return posterize(img, static_cast<int>(a));
    case Op::Solarize: case Op::SolarizeIncreasing: return solarize(img, static_cast<int>(a));
    case Op::SolarizeAdd: return solarize_add(img, static_cast<int>(a));
    case Op::Color: case Op::ColorIncreasing: return color(img, a);
    case Op::Contrast: case Op::ContrastIncreasing: return contrast(img, a);
    case Op::Brightness: case Op::BrightnessIncreasing: return brightness(img, a);
    case Op::Sharpness: case Op::SharpnessIncreasing: return sharpness(img, a);
    case Op::ShearX: return shear_x(img, a, r, fill);
    case Op::ShearY: return shear_y(img, a, r, fill);
    case Op::TranslateXRel: return translate_x(img, a * static_cast<double>(img.size(1)), r, fill);
    case Op::TranslateYRel: return translate_y(img, a * static_cast<double>(img.size(0)), r, fill);
  }
  EVIT_THROW("augment::apply_op: unknown op ", static_cast<int>(op));
}

}  // namespace augment

// ---- the policy ----
namespace {

[[noreturn]] void bad_spec(const std::string& where, const std::string& spec, const std::string& why) {
  EVIT_THROW(where, ": bad RandAugment string '", spec, "': ", why,
             " (expected timm's form, e.g. \"rand-n2-m9-mstd0.5-inc1\", or \"\" for off)");
}

// The whole of `text` as a number, or NaN.
double full_number(const std::string& text) {
  if (text.empty()) return std::numeric_limits<double>::quiet_NaN();
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  return (end == text.c_str() + text.size() && std::isfinite(v)) ? v : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

RandAugmentConfig parse_rand_augment(const std::string& spec, const std::string& where) {
  RandAugmentConfig cfg;
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t dash = spec.find('-', start);
    parts.push_back(spec.substr(start, dash == std::string::npos ? std::string::npos : dash - start));
    if (dash == std::string::npos) break;
    start = dash + 1;
  }
  if (parts[0] != "rand") bad_spec(where, spec, "it must start with \"rand\"");
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& sec = parts[i];
    // As timm splits a section: the key is everything before the first digit.
    const size_t d = sec.find_first_of("0123456789");
    if (d == std::string::npos || d == 0) bad_spec(where, spec, "section '" + sec + "' is not <key><number>");
    const std::string key = sec.substr(0, d);
    const double v = full_number(sec.substr(d));
    if (std::isnan(v)) bad_spec(where, spec, "section '" + sec + "' has a malformed number");
    if (key == "n") {
      if (v != std::floor(v) || v > 100) bad_spec(where, spec, "n must be a whole number of ops (0..100)");
      cfg.n = static_cast<int>(v);
    } else if (key == "m") {
      cfg.m = v;
    } else if (key == "mstd") {
      // timm: a std above 100 means "uniform in [0, m]".
      cfg.mstd = v > 100 ? std::numeric_limits<double>::infinity() : v;
    } else if (key == "mmax") {
      if (v <= 0) bad_spec(where, spec, "mmax must be > 0");
      cfg.mmax = v;
    } else if (key == "inc") {
      // timm tests bool(<text>), true for any text; we take the number, so "inc0" is off.
      if (v != 0 && v != 1) bad_spec(where, spec, "inc must be 0 or 1");
      cfg.increasing = v == 1;
    } else if (key == "w") {
      bad_spec(where, spec, "weighted op choice ('w') is not supported");
    } else {
      bad_spec(where, spec, "unknown section '" + sec + "' (known: n, m, mstd, mmax, inc)");
    }
  }
  return cfg;
}

std::vector<AugmentStep> sample_rand_augment(const RandAugmentConfig& cfg, Generator& rng) {
  const auto& ops = augment::rand_ops(cfg.increasing);
  std::vector<AugmentStep> steps(static_cast<size_t>(std::max(0, cfg.n)));
  for (auto& s : steps) {
    s.op = ops[rng.next_u64() % ops.size()];
    s.applied = rng.uniform_double() < cfg.prob;
    if (!s.applied) continue;
    double m = cfg.m;
    if (std::isinf(cfg.mstd)) {
      m = cfg.m * rng.uniform_double();
    } else if (cfg.mstd > 0) {
      const double u1 = 1 - rng.uniform_double(), u2 = rng.uniform_double();
      m += cfg.mstd * std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
    s.magnitude = std::clamp(m, 0.0, cfg.mmax);
    s.negate = rng.uniform_double() > 0.5;  // timm's _randomly_negate
  }
  return steps;
}

Transform rand_augment(const RandAugmentConfig& cfg, augment::Resample resample, std::array<uint8_t, 3> fill) {
  EVIT_CHECK(cfg.n >= 0 && cfg.m >= 0 && cfg.mstd >= 0 && cfg.mmax > 0 && cfg.prob >= 0 && cfg.prob <= 1,
             "rand_augment: bad settings n=", cfg.n, " m=", cfg.m, " mstd=", cfg.mstd, " mmax=", cfg.mmax,
             " prob=", cfg.prob);
  return [=](Sample& s, Generator& g) {
    // An 8-bit sample (data/dataset.h) is augmented as it is and stays 8-bit; a float one is
    // quantised first, like the PIL image timm augments (whether or not an op runs), and comes
    // back as floats.
    const bool eight_bit = is_hwc_u8_rgb(s.input);
    EVIT_CHECK(eight_bit || (s.input.dim() == 3 && s.input.size(0) == 3),
               "rand_augment: expected a [3,H,W] float or [H,W,3] u8 image, got ", s.input.desc(), " (", s.id, ")");
    const auto steps = sample_rand_augment(cfg, g);
    Tensor img = eight_bit ? s.input : augment::to_u8_hwc(s.input);
    for (const auto& st : steps)
      if (st.applied) img = augment::apply_op(img, st.op, st.magnitude, st.negate, resample, fill);
    s.input = eight_bit ? img : augment::from_u8_hwc(img);
  };
}

Transform rand_augment(int n, double m, double mstd) {
  RandAugmentConfig cfg;
  cfg.n = n, cfg.m = m, cfg.mstd = mstd, cfg.increasing = true;
  return rand_augment(cfg);
}

}  // namespace evit::data
