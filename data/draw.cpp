#include "data/draw.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace evit::data {
namespace {

void put(Image& image, int64_t x, int64_t y, const Colour& c) {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) return;
  uint8_t* p = &image.data[static_cast<size_t>((y * image.width + x) * image.channels)];
  for (int k = 0; k < 3; ++k) p[k] = c[k];
}

void check_rgb8(const Image& image, const char* what) {
  EVIT_CHECK(image.channels == 3 && image.bit_depth == 8, what, ": expected an 8-bit RGB image, got ", image.desc());
}

}  // namespace

void draw_box(Image& image, double x0, double y0, double x1, double y1, const Colour& colour, int64_t thickness) {
  check_rgb8(image, "draw_box");
  const int64_t l = std::llround(std::min(x0, x1)), r = std::llround(std::max(x0, x1));
  const int64_t t = std::llround(std::min(y0, y1)), b = std::llround(std::max(y0, y1));
  for (int64_t k = 0; k < thickness; ++k) {
    for (int64_t x = l; x <= r; ++x) put(image, x, t + k, colour), put(image, x, b - k, colour);
    for (int64_t y = t; y <= b; ++y) put(image, l + k, y, colour), put(image, r - k, y, colour);
  }
}

void draw_point(Image& image, double x, double y, const Colour& colour, int64_t radius) {
  check_rgb8(image, "draw_point");
  const int64_t cx = std::llround(x), cy = std::llround(y), ring = radius + 1;
  for (int64_t dy = -ring; dy <= ring; ++dy)
    for (int64_t dx = -ring; dx <= ring; ++dx) {
      const int64_t d2 = dx * dx + dy * dy;
      if (d2 <= radius * radius)
        put(image, cx + dx, cy + dy, colour);
      else if (d2 <= ring * ring)
        put(image, cx + dx, cy + dy, {255, 255, 255});
    }
}

}  // namespace evit::data
