#include "data/distance_transform.h"

#include <limits>

#include "core/error.h"

namespace evit::data {
namespace {

constexpr int64_t kFar = std::numeric_limits<int64_t>::max() / 4;  // "no zero pixel on this line"

// One line of the transform: d[q] = min_p (f[p] + (q - p)²) over the n samples of f, in place.
// Parabolas with f = kFar never win against a finite one.
void envelope_1d(std::vector<int64_t>& f, int64_t n, std::vector<int64_t>& v, std::vector<double>& z,
                 std::vector<int64_t>& out) {
  int64_t k = -1;
  for (int64_t q = 0; q < n; ++q) {
    if (f[q] >= kFar) continue;
    while (k >= 0) {
      // Where the parabola of q overtakes the envelope's last one.
      const double s = (static_cast<double>(f[q] + q * q) - static_cast<double>(f[v[k]] + v[k] * v[k])) /
                       static_cast<double>(2 * (q - v[k]));
      if (s <= z[k]) {
        --k;
        continue;
      }
      v[++k] = q;
      z[k] = s;
      z[k + 1] = std::numeric_limits<double>::infinity();
      break;
    }
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -std::numeric_limits<double>::infinity();
      z[1] = std::numeric_limits<double>::infinity();
    }
  }
  if (k < 0) {
    for (int64_t q = 0; q < n; ++q) out[q] = kFar;
    return;
  }
  int64_t j = 0;
  for (int64_t q = 0; q < n; ++q) {
    while (z[j + 1] < static_cast<double>(q)) ++j;
    out[q] = (q - v[j]) * (q - v[j]) + f[v[j]];
  }
}

}  // namespace

std::vector<int64_t> squared_distance_transform(const std::vector<uint8_t>& mask, int64_t h, int64_t w,
                                                bool outside_is_zero) {
  EVIT_CHECK(h >= 0 && w >= 0 && static_cast<int64_t>(mask.size()) == h * w, "squared_distance_transform: mask of ",
             mask.size(), " pixels is not ", h, "x", w);
  // Work on the padded grid when the outside counts as zero.
  const int64_t p = outside_is_zero ? 1 : 0, H = h + 2 * p, W = w + 2 * p;
  std::vector<int64_t> d(static_cast<size_t>(H * W), 0);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) d[(y + p) * W + x + p] = mask[y * w + x] ? kFar : 0;
  const int64_t n = std::max(H, W);
  std::vector<int64_t> f(n), v(n), out(n);
  std::vector<double> z(n + 1);
  for (int64_t x = 0; x < W; ++x) {  // columns
    for (int64_t y = 0; y < H; ++y) f[y] = d[y * W + x];
    envelope_1d(f, H, v, z, out);
    for (int64_t y = 0; y < H; ++y) d[y * W + x] = out[y];
  }
  for (int64_t y = 0; y < H; ++y) {  // rows
    for (int64_t x = 0; x < W; ++x) f[x] = d[y * W + x];
    envelope_1d(f, W, v, z, out);
    for (int64_t x = 0; x < W; ++x) d[y * W + x] = out[x];
  }
  std::vector<int64_t> r(static_cast<size_t>(h * w));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const int64_t v2 = d[(y + p) * W + x + p];
      r[y * w + x] = v2 >= kFar ? -1 : v2;
    }
  return r;
}

}  // namespace evit::data
