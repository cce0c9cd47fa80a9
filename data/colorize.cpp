#include "data/colorize.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace evit::data {
namespace {

const std::vector<Colour>& cityscapes_palette() {
  static const std::vector<Colour> p{
      {128, 64, 128}, {244, 35, 232}, {70, 70, 70},   {102, 102, 156}, {190, 153, 153},
      {153, 153, 153}, {250, 170, 30}, {220, 220, 0},  {107, 142, 35},  {152, 251, 152},
      {70, 130, 180}, {220, 20, 60},  {255, 0, 0},    {0, 0, 142},     {0, 0, 70},
      {0, 60, 100},   {0, 80, 100},   {0, 0, 230},    {119, 11, 32}};
  return p;
}

// Checks labels (i64 [H,W]) and returns a contiguous view.
Tensor checked_labels(const Tensor& labels, int64_t num_classes, const char* fn) {
  EVIT_CHECK(labels.dtype() == DType::i64 && labels.dim() == 2, fn, ": labels must be i64 [H,W], got ",
             labels.desc());
  EVIT_CHECK(num_classes >= 1 && num_classes <= 255, fn, ": num_classes must be in [1, 255], got ", num_classes);
  return labels.contiguous();
}

bool ignored(int64_t v) { return v == 255 || v < 0; }

void check_label(int64_t v, int64_t num_classes, int64_t i, int64_t w, const char* fn) {
  EVIT_CHECK(ignored(v) || v < num_classes, fn, ": label ", v, " at (", i / w, ", ", i % w,
             ") is outside [0, ", num_classes, ") and not the ignore value 255");
}

}  // namespace

std::vector<Colour> palette(int64_t num_classes) {
  EVIT_CHECK(num_classes >= 1, "palette: num_classes must be positive, got ", num_classes);
  if (num_classes == 19) return cityscapes_palette();
  std::vector<Colour> p(static_cast<size_t>(num_classes));
  for (int64_t c = 0; c < num_classes; ++c) {
    // Bit i of (c + 1) goes to bit (7 - i/3) of channel i % 3: the lowest id bits change the
    // most significant colour bits, so consecutive ids differ strongly.
    uint64_t id = static_cast<uint64_t>(c) + 1;
    Colour col{0, 0, 0};
    for (int bit = 0; bit < 24 && (id >> bit) != 0; ++bit)
      if ((id >> bit) & 1) col[bit % 3] |= static_cast<uint8_t>(1u << (7 - bit / 3));
    p[static_cast<size_t>(c)] = col;
  }
  return p;
}

Image colorize(const Tensor& labels, int64_t num_classes) {
  Tensor l = checked_labels(labels, num_classes, "colorize");
  const auto pal = palette(num_classes);
  const int64_t h = l.size(0), w = l.size(1);
  Image out(h, w, 3);
  const int64_t* p = l.data_ptr<int64_t>();
  for (int64_t i = 0; i < h * w; ++i) {
    check_label(p[i], num_classes, i, w, "colorize");
    if (ignored(p[i])) continue;  // stays black
    for (int k = 0; k < 3; ++k) out.data[i * 3 + k] = pal[static_cast<size_t>(p[i])][k];
  }
  return out;
}

Image overlay(const Tensor& image, const Tensor& labels, double alpha, int64_t num_classes) {
  Tensor l = checked_labels(labels, num_classes, "overlay");
  EVIT_CHECK(image.dim() == 3 && image.size(0) == 3 && (image.dtype() == DType::f32 || image.dtype() == DType::f64),
             "overlay: image must be float [3,H,W], got ", image.desc());
  EVIT_CHECK(image.size(1) == l.size(0) && image.size(2) == l.size(1), "overlay: image ", image.desc(),
             " and labels ", labels.desc(), " differ in size");
  EVIT_CHECK(alpha >= 0 && alpha <= 1, "overlay: alpha must be in [0, 1], got ", alpha);
  const auto pal = palette(num_classes);
  const int64_t h = l.size(0), w = l.size(1);
  const std::vector<double> px = image.to_vector<double>();
  const int64_t* p = l.data_ptr<int64_t>();
  Image out(h, w, 3);
  for (int64_t i = 0; i < h * w; ++i) {
    check_label(p[i], num_classes, i, w, "overlay");
    for (int k = 0; k < 3; ++k) {
      double v = std::clamp(px[k * h * w + i], 0.0, 1.0) * 255.0;
      if (!ignored(p[i])) v = (1 - alpha) * v + alpha * pal[static_cast<size_t>(p[i])][k];
      out.data[i * 3 + k] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
    }
  }
  return out;
}

Image side_by_side(const std::vector<Image>& images) {
  EVIT_CHECK(!images.empty(), "side_by_side: no images");
  const int64_t h = images[0].height;
  int64_t w = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const Image& im = images[i];
    EVIT_CHECK(im.height == h, "side_by_side: image ", i, " is ", im.desc(), ", height differs from image 0 (",
               images[0].desc(), ")");
    EVIT_CHECK(im.bit_depth == 8, "side_by_side: image ", i, " is ", im.desc(), "; only 8-bit images are supported");
    EVIT_CHECK(im.channels >= 1 && im.channels <= 4, "side_by_side: image ", i, " has ", im.channels, " channels");
    w += im.width;
  }
  Image out(h, w, 3);
  int64_t x0 = 0;
  for (const Image& im : images) {
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < im.width; ++x)
        for (int k = 0; k < 3; ++k) {
          // Gray (+alpha) repeats channel 0; RGB(A) takes its first three channels.
          int64_t src = im.channels <= 2 ? 0 : k;
          out.data[(y * w + x0 + x) * 3 + k] = im.data[(y * im.width + x) * im.channels + src];
        }
    x0 += im.width;
  }
  return out;
}

}  // namespace evit::data
