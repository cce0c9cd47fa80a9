#include "data/resize_u8.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace evit::data {
namespace {

// One output position's taps along one dimension: the first input index of each tap and its
// fixed-point weight.
struct Taps {
  int64_t count = 0;             // taps per output position
  std::vector<int64_t> index;    // out_len * count (already clamped into the input)
  std::vector<int64_t> weight;   // out_len * count
};

void check_resize(const Image& src, int64_t out_h, int64_t out_w, const char* what) {
  EVIT_CHECK(src.bit_depth == 8, what, ": expected an 8-bit image, got ", src.bit_depth, " bits");
  EVIT_CHECK(src.height >= 1 && src.width >= 1 && src.channels >= 1 && src.channels <= 4, what,
             ": bad source image ", src.height, "x", src.width, "x", src.channels);
  EVIT_CHECK(out_h >= 1 && out_w >= 1, what, ": output size must be positive, got ", out_h, "x", out_w);
}

// ---- OpenCV INTER_CUBIC (imgproc/resize.cpp, the u8 fixed-point path) ----------------------------

constexpr int kCvCoefBits = 11;  // INTER_RESIZE_COEF_BITS: weights in units of 1/2048

// OpenCV computes the Keys weights in single precision with a = -0.75, in this order.
void opencv_cubic_weights(float x, float w[4]) {
  const float A = -0.75f;
  w[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
  w[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
  w[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
  w[3] = 1.f - w[0] - w[1] - w[2];
}

Taps opencv_taps(int64_t in, int64_t out) {
  Taps t;
  t.count = 4;
  // cv::resize derives the step as 1 / (out / in) in double precision.
  const double scale = 1.0 / (static_cast<double>(out) / static_cast<double>(in));
  for (int64_t d = 0; d < out; ++d) {
    float f = static_cast<float>((static_cast<double>(d) + 0.5) * scale - 0.5);
    const int64_t s = static_cast<int64_t>(std::floor(f));
    f -= static_cast<float>(s);
    float w[4];
    opencv_cubic_weights(f, w);
    for (int k = 0; k < 4; ++k) {
      t.index.push_back(std::clamp<int64_t>(s - 1 + k, 0, in - 1));  // replicated border
      // saturate_cast<short>(w * 2048): round half to even.
      t.weight.push_back(static_cast<int64_t>(std::nearbyint(w[k] * static_cast<float>(1 << kCvCoefBits))));
    }
  }
  return t;
}

// ---- Pillow BICUBIC and BILINEAR (libImaging/Resample.c, 8 bits per channel) ----------------------

constexpr int kPilPrecisionBits = 32 - 8 - 2;

double pil_cubic(double x) {
  const double a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

double pil_triangle(double x) {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

// A Pillow filter: its kernel and the half-width it is non-zero on at scale 1.
struct PilFilter {
  double (*kernel)(double);
  double support;
};
constexpr PilFilter kPilBicubic{pil_cubic, 2.0};
constexpr PilFilter kPilBilinear{pil_triangle, 1.0};

// Pillow's taps of one output position are a run of consecutive inputs starting at `first`.
// Weights and sums are 32-bit integers as in Pillow: |sum| < 2^21 + 255 · 2^22 · 1.3 < 2^31.
struct PilTaps {
  int64_t stride = 0;            // weights stored per output position
  std::vector<int64_t> first;    // out_len
  std::vector<int64_t> count;    // out_len: taps actually used
  std::vector<int32_t> weight;   // out_len * stride
};

PilTaps pil_taps(int64_t in, int64_t out, const PilFilter& filter) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double filterscale = std::max(scale, 1.0);
  const double support = filter.support * filterscale;
  PilTaps t;
  t.stride = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(static_cast<size_t>(out));
  t.count.resize(static_cast<size_t>(out));
  t.weight.assign(static_cast<size_t>(out * t.stride), 0);
  std::vector<double> k(static_cast<size_t>(t.stride));
  const double ss = 1.0 / filterscale;
  for (int64_t d = 0; d < out; ++d) {
    const double center = (static_cast<double>(d) + 0.5) * scale;
    const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t xmax = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in) - xmin;
    double sum = 0;
    for (int64_t x = 0; x < xmax; ++x) {
      k[x] = filter.kernel((static_cast<double>(x + xmin) - center + 0.5) * ss);
      sum += k[x];
    }
    t.first[d] = xmin;
    t.count[d] = xmax;
    for (int64_t x = 0; x < xmax; ++x) {
      const double w = sum != 0 ? k[x] / sum : k[x];
      t.weight[d * t.stride + x] = static_cast<int32_t>(w * (1 << kPilPrecisionBits) + (w < 0 ? -0.5 : 0.5));
    }
  }
  return t;
}

uint8_t clip8(int64_t v) { return static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255)); }

constexpr int32_t kPilHalf = int32_t{1} << (kPilPrecisionBits - 1);

// One Pillow pass along the rows (horizontal) of an image, rounding to 8 bits.
Image pil_horizontal(const Image& src, int64_t out_w, const PilFilter& filter) {
  const PilTaps t = pil_taps(src.width, out_w, filter);
  Image dst(src.height, out_w, src.channels);
  const int64_t C = src.channels;
  for (int64_t y = 0; y < src.height; ++y) {
    const uint8_t* row = src.data.data() + y * src.width * C;
    uint8_t* out = dst.data.data() + y * out_w * C;
    for (int64_t x = 0; x < out_w; ++x) {
      const uint8_t* p = row + t.first[x] * C;
      const int32_t* w = t.weight.data() + x * t.stride;
      const int64_t n = t.count[x];
      if (C == 3) {  // the common case, three sums at once
        int32_t s0 = kPilHalf, s1 = kPilHalf, s2 = kPilHalf;
        for (int64_t k = 0; k < n; ++k) s0 += p[k * 3] * w[k], s1 += p[k * 3 + 1] * w[k], s2 += p[k * 3 + 2] * w[k];
        out[x * 3] = clip8(s0 >> kPilPrecisionBits);
        out[x * 3 + 1] = clip8(s1 >> kPilPrecisionBits);
        out[x * 3 + 2] = clip8(s2 >> kPilPrecisionBits);
        continue;
      }
      for (int64_t c = 0; c < C; ++c) {
        int32_t s = kPilHalf;
        for (int64_t k = 0; k < n; ++k) s += p[k * C + c] * w[k];
        out[x * C + c] = clip8(s >> kPilPrecisionBits);
      }
    }
  }
  return dst;
}

// The vertical pass, a whole row at a time: every sample of an output row weighs the same input
// rows, so the sums run along the row (vectorisable).
Image pil_vertical(const Image& src, int64_t out_h, const PilFilter& filter) {
  const PilTaps t = pil_taps(src.height, out_h, filter);
  Image dst(out_h, src.width, src.channels);
  const int64_t row = src.width * src.channels;
  std::vector<int32_t> sums(static_cast<size_t>(row));
  for (int64_t y = 0; y < out_h; ++y) {
    std::fill(sums.begin(), sums.end(), kPilHalf);
    for (int64_t k = 0; k < t.count[y]; ++k) {
      const uint8_t* in = src.data.data() + (t.first[y] + k) * row;
      const int32_t w = t.weight[y * t.stride + k];
      for (int64_t i = 0; i < row; ++i) sums[i] += in[i] * w;
    }
    uint8_t* out = dst.data.data() + y * row;
    for (int64_t i = 0; i < row; ++i) out[i] = clip8(sums[i] >> kPilPrecisionBits);
  }
  return dst;
}

// Pillow resamples horizontally first, then vertically, skipping a pass whose size is unchanged.
Image pil_resize(const Image& src, int64_t out_h, int64_t out_w, const PilFilter& filter) {
  Image h = out_w != src.width ? pil_horizontal(src, out_w, filter) : src;
  return out_h != src.height ? pil_vertical(h, out_h, filter) : h;
}

}  // namespace

Image resize_bicubic_opencv(const Image& src, int64_t out_h, int64_t out_w) {
  check_resize(src, out_h, out_w, "resize_bicubic_opencv");
  const Taps tx = opencv_taps(src.width, out_w), ty = opencv_taps(src.height, out_h);
  const int64_t C = src.channels, width = out_w * C;
  // Horizontal pass: integer sums in units of 1/2048.
  std::vector<int64_t> rows(static_cast<size_t>(src.height * width));
  for (int64_t y = 0; y < src.height; ++y)
    for (int64_t x = 0; x < out_w; ++x)
      for (int64_t c = 0; c < C; ++c) {
        int64_t s = 0;
        for (int k = 0; k < 4; ++k) s += src.data[(y * src.width + tx.index[x * 4 + k]) * C + c] * tx.weight[x * 4 + k];
        rows[y * width + x * C + c] = s;
      }
  // Vertical pass. OpenCV's vector loop (SSE lanes: 8 values at a time) converts the four rows
  // to float, weighs them from the last row to the first and rounds half to even; the values
  // left over at the end of a row take the scalar path, (sum + 2^21) >> 22. Both are kept so the
  // output matches bit for bit.
  constexpr int64_t kLanes = 8;
  const int64_t vector_end = width / kLanes * kLanes;
  const float unit = 1.f / static_cast<float>(1 << (2 * kCvCoefBits));
  Image dst(out_h, out_w, C);
  for (int64_t y = 0; y < out_h; ++y) {
    const int64_t* r[4];
    float b[4];
    for (int k = 0; k < 4; ++k) {
      r[k] = rows.data() + ty.index[y * 4 + k] * width;
      b[k] = static_cast<float>(ty.weight[y * 4 + k]) * unit;
    }
    uint8_t* out = dst.data.data() + y * width;
    for (int64_t i = 0; i < vector_end; ++i) {
      // Separate statements: each product is rounded before the add, as SSE does (no FMA).
      float s = static_cast<float>(r[3][i]) * b[3];
      for (int k = 2; k >= 0; --k) {
        const float p = static_cast<float>(r[k][i]) * b[k];
        s = p + s;
      }
      out[i] = clip8(static_cast<int64_t>(std::nearbyint(s)));
    }
    for (int64_t i = vector_end; i < width; ++i) {
      int64_t s = 0;
      for (int k = 0; k < 4; ++k) s += r[k][i] * ty.weight[y * 4 + k];
      out[i] = clip8((s + (int64_t{1} << (2 * kCvCoefBits - 1))) >> (2 * kCvCoefBits));
    }
  }
  return dst;
}

Image resize_bicubic_pil(const Image& src, int64_t out_h, int64_t out_w) {
  check_resize(src, out_h, out_w, "resize_bicubic_pil");
  return pil_resize(src, out_h, out_w, kPilBicubic);
}

Image resize_bilinear_pil(const Image& src, int64_t out_h, int64_t out_w) {
  check_resize(src, out_h, out_w, "resize_bilinear_pil");
  return pil_resize(src, out_h, out_w, kPilBilinear);
}

std::pair<int64_t, int64_t> ade20k_eval_size(int64_t h, int64_t w, int64_t crop) {
  EVIT_CHECK(h >= 1 && w >= 1 && crop >= 1, "ade20k_eval_size: bad sizes ", h, "x", w, ", crop ", crop);
  const auto up32 = [](double v) { return static_cast<int64_t>(std::ceil(v / 32)) * 32; };
  if (h < w) return {crop, up32(static_cast<double>(w) / static_cast<double>(h) * static_cast<double>(crop))};
  return {up32(static_cast<double>(h) / static_cast<double>(w) * static_cast<double>(crop)), crop};
}

std::pair<int64_t, int64_t> torchvision_resize_size(int64_t h, int64_t w, int64_t size) {
  EVIT_CHECK(h >= 1 && w >= 1 && size >= 1, "torchvision_resize_size: bad sizes ", h, "x", w, ", size ", size);
  const int64_t shorter = std::min(h, w), longer = std::max(h, w);
  const int64_t long_out = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(longer) / static_cast<double>(shorter));
  return w <= h ? std::pair{long_out, size} : std::pair{size, long_out};
}

std::pair<int64_t, int64_t> center_crop_offsets(int64_t h, int64_t w, int64_t size) {
  // Python's round(): halves to even, like nearbyint in the default rounding mode.
  return {static_cast<int64_t>(std::nearbyint(static_cast<double>(h - size) / 2.0)),
          static_cast<int64_t>(std::nearbyint(static_cast<double>(w - size) / 2.0))};
}

}  // namespace evit::data
