// The arithmetic below follows pycocotools' maskApi.c step by step (rounding, clamping and the
// order of operations decide which boundary pixels are in), so that masks are byte-equal to the
// official tools'. This file is compiled with -ffp-contract=off: a fused multiply-add in the
// boundary walk would round differently and move pixels.
#include "data/coco_rle.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/error.h"

namespace evit::data {
namespace {

constexpr int64_t kMaxPixels = int64_t{0xffffffff};  // counts are 32-bit, as in the COCO tools
constexpr double kPolygonScale = 5;                   // the boundary walk's upsampling
constexpr double kMaxCoordinate = 1e6;
constexpr int64_t kMaxBoundaryPoints = int64_t{1} << 27;  // bounds the work a polygon may ask for

// C's (int) conversion as the reference's x86-64 build performs it (cvttsd2si): truncation toward
// zero, and INT_MIN for NaN or values out of range. A repeated polygon vertex gives a zero-length
// segment whose slope is 0/0; the row computed from it is NaN (never used: the next point of the
// walk is in the same column), and converting NaN with static_cast would be undefined behaviour.
int c_int(double v) {
  if (!(v > -2147483649.0 && v < 2147483648.0)) return std::numeric_limits<int>::min();
  return static_cast<int>(v);
}

void check_size(int64_t h, int64_t w, const std::string& what) {
  EVIT_CHECK(h >= 0 && w >= 0 && (h == 0 || w <= kMaxPixels / h), what, ": mask size ", h, "x", w,
             " is negative or has more than 2^32-1 pixels");
}

void check_sum(const Rle& r, const std::string& what) {
  int64_t sum = 0;
  for (uint32_t c : r.counts) sum += c;
  EVIT_CHECK(sum == r.h * r.w, what, ": RLE counts sum to ", sum, " but the mask is ", r.h, "x", r.w, " = ",
             r.h * r.w, " pixels");
}

}  // namespace

Rle rle_encode(const uint8_t* mask, int64_t h, int64_t w) {
  check_size(h, w, "rle_encode");
  Rle r{h, w, {}};
  uint8_t current = 0;
  uint32_t run = 0;
  for (int64_t x = 0; x < w; ++x) {
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t v = mask[y * w + x] != 0;
      if (v != current) {
        r.counts.push_back(run);
        run = 0;
        current = v;
      }
      ++run;
    }
  }
  r.counts.push_back(run);
  return r;
}

std::vector<uint8_t> rle_decode(const Rle& rle) {
  check_size(rle.h, rle.w, "rle_decode");
  check_sum(rle, "rle_decode");
  std::vector<uint8_t> mask(static_cast<size_t>(rle.h * rle.w), 0);
  int64_t x = 0, y = 0;
  uint8_t value = 0;
  for (uint32_t run : rle.counts) {
    for (uint32_t i = 0; i < run; ++i) {
      mask[static_cast<size_t>(y * rle.w + x)] = value;
      if (++y == rle.h) y = 0, ++x;
    }
    value ^= 1;
  }
  return mask;
}

std::string rle_to_string(const Rle& rle) {
  std::string s;
  for (size_t i = 0; i < rle.counts.size(); ++i) {
    int64_t x = rle.counts[i];
    if (i > 2) x -= rle.counts[i - 2];
    bool more = true;
    while (more) {
      int c = static_cast<int>(x & 0x1f);
      x >>= 5;  // arithmetic shift: negative differences end in all ones
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      s.push_back(static_cast<char>(c + 48));
    }
  }
  return s;
}

Rle rle_from_string(std::string_view counts, int64_t h, int64_t w, const std::string& what) {
  check_size(h, w, what);
  Rle r{h, w, {}};
  size_t p = 0;
  while (p < counts.size()) {
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      EVIT_CHECK(p < counts.size(), what, ": RLE string ends inside a run (", counts.size(), " characters)");
      const int c = static_cast<unsigned char>(counts[p]) - 48;
      EVIT_CHECK(c >= 0 && c < 64, what, ": RLE string has the character '", counts[p], "' at offset ", p,
                 " (allowed: ASCII 48 to 111)");
      EVIT_CHECK(k < 8, what, ": RLE string has a run longer than 8 characters at offset ", p);
      x |= static_cast<int64_t>(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= static_cast<int64_t>(-1) * (int64_t{1} << (5 * k));  // sign extension
    }
    const size_t m = r.counts.size();
    if (m > 2) x += r.counts[m - 2];
    EVIT_CHECK(x >= 0 && x <= kMaxPixels, what, ": RLE run ", m, " is ", x, " (must be in [0, 2^32))");
    r.counts.push_back(static_cast<uint32_t>(x));
  }
  check_sum(r, what);
  return r;
}

Rle rle_from_counts(const std::vector<int64_t>& counts, int64_t h, int64_t w, const std::string& what) {
  check_size(h, w, what);
  Rle r{h, w, {}};
  r.counts.reserve(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    EVIT_CHECK(counts[i] >= 0 && counts[i] <= kMaxPixels, what, ": RLE count ", i, " is ", counts[i],
               " (must be in [0, 2^32))");
    r.counts.push_back(static_cast<uint32_t>(counts[i]));
  }
  check_sum(r, what);
  return r;
}

Rle rle_from_polygon(const std::vector<double>& xy, int64_t h, int64_t w, const std::string& what) {
  check_size(h, w, what);
  EVIT_CHECK(xy.size() % 2 == 0, what, ": polygon has an odd number of coordinates (", xy.size(), ")");
  for (size_t i = 0; i < xy.size(); ++i)
    EVIT_CHECK(std::isfinite(xy[i]) && std::abs(xy[i]) <= kMaxCoordinate, what, ": polygon coordinate ", i,
               " is ", xy[i], " (must be finite and within +-1e6)");
  const size_t k = xy.size() / 2;
  // Vertices on the upsampled grid, closed.
  std::vector<int> gx(k + 1), gy(k + 1);
  for (size_t j = 0; j < k; ++j) {
    gx[j] = static_cast<int>(kPolygonScale * xy[2 * j] + .5);
    gy[j] = static_cast<int>(kPolygonScale * xy[2 * j + 1] + .5);
  }
  if (k > 0) gx[k] = gx[0], gy[k] = gy[0];
  int64_t walk = 0;
  for (size_t j = 0; j < k; ++j)
    walk += std::max(std::abs(gx[j] - gx[j + 1]), std::abs(gy[j] - gy[j + 1])) + 1;
  EVIT_CHECK(walk <= kMaxBoundaryPoints, what, ": polygon boundary is ", walk,
             " points long on the 5x grid, more than the limit of ", kMaxBoundaryPoints);

  // Walk the boundary on the upsampled grid; wherever the walk changes column, the crossing is
  // downsampled to a column boundary point (x, y): pixels of column x from row y on toggle.
  std::vector<uint32_t> toggles;
  bool has_prev = false;
  int pu = 0, pv = 0;
  auto visit = [&](int u, int v) {
    if (has_prev && u != pu) {
      double xd = u < pu ? u : u - 1;
      xd = (xd + .5) / kPolygonScale - .5;
      if (std::floor(xd) == xd && xd >= 0 && xd <= static_cast<double>(w - 1)) {
        double yd = v < pv ? v : pv;
        yd = (yd + .5) / kPolygonScale - .5;
        if (yd < 0)
          yd = 0;
        else if (yd > static_cast<double>(h))
          yd = static_cast<double>(h);
        yd = std::ceil(yd);
        toggles.push_back(static_cast<uint32_t>(static_cast<int64_t>(xd) * h + static_cast<int64_t>(yd)));
      }
    }
    has_prev = true;
    pu = u;
    pv = v;
  };
  for (size_t j = 0; j < k; ++j) {
    int xs = gx[j], xe = gx[j + 1], ys = gy[j], ye = gy[j + 1];
    const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) std::swap(xs, xe), std::swap(ys, ye);
    const double s = dx >= dy ? static_cast<double>(ye - ys) / dx : static_cast<double>(xe - xs) / dy;
    if (dx >= dy) {
      for (int d = 0; d <= dx; ++d) {
        const int t = flip ? dx - d : d;
        visit(t + xs, c_int(ys + s * t + .5));
      }
    } else {
      for (int d = 0; d <= dy; ++d) {
        const int t = flip ? dy - d : d;
        visit(c_int(xs + s * t + .5), t + ys);
      }
    }
  }

  // Sorted toggle positions -> run lengths; a zero-length run merges its neighbours.
  toggles.push_back(static_cast<uint32_t>(h * w));
  std::sort(toggles.begin(), toggles.end());
  uint32_t prev = 0;
  for (uint32_t& t : toggles) {
    const uint32_t here = t;
    t -= prev;
    prev = here;
  }
  Rle r{h, w, {}};
  size_t j = 0;
  r.counts.push_back(toggles[j++]);
  while (j < toggles.size()) {
    if (toggles[j] > 0) {
      r.counts.push_back(toggles[j++]);
    } else {
      ++j;
      if (j < toggles.size()) r.counts.back() += toggles[j++];
    }
  }
  return r;
}

Rle rle_from_box(const std::array<double, 4>& xywh, int64_t h, int64_t w, const std::string& what) {
  const double xs = xywh[0], ys = xywh[1], xe = xs + xywh[2], ye = ys + xywh[3];
  return rle_from_polygon({xs, ys, xs, ye, xe, ye, xe, ys}, h, w, what);
}

Rle rle_merge(const std::vector<Rle>& parts, bool intersect, const std::string& what) {
  if (parts.empty()) return Rle{0, 0, {0}};
  for (const Rle& p : parts) {
    EVIT_CHECK(p.h == parts[0].h && p.w == parts[0].w, what, ": cannot merge a ", p.h, "x", p.w, " mask with a ",
               parts[0].h, "x", parts[0].w, " one");
    check_sum(p, what);
  }
  std::vector<uint32_t> acc = parts[0].counts;
  for (size_t i = 1; i < parts.size(); ++i) {
    // Walk both run lists at once, emitting a run whenever the combined value changes.
    const std::vector<uint32_t>& a = acc;
    const std::vector<uint32_t>& b = parts[i].counts;
    std::vector<uint32_t> out;
    uint32_t ca = a[0], cb = b[0], run = 0;
    bool va = false, vb = false, v = false;
    size_t ia = 1, ib = 1;
    for (uint32_t left = 1; left > 0;) {
      const uint32_t c = std::min(ca, cb);
      run += c;
      left = 0;
      ca -= c;
      if (!ca && ia < a.size()) ca = a[ia++], va = !va;
      left += ca;
      cb -= c;
      if (!cb && ib < b.size()) cb = b[ib++], vb = !vb;
      left += cb;
      const bool before = v;
      v = intersect ? (va && vb) : (va || vb);
      if (v != before || left == 0) {
        out.push_back(run);
        run = 0;
      }
    }
    acc = std::move(out);
  }
  return Rle{parts[0].h, parts[0].w, std::move(acc)};
}

int64_t rle_area(const Rle& rle) {
  int64_t area = 0;
  for (size_t i = 1; i < rle.counts.size(); i += 2) area += rle.counts[i];
  return area;
}

std::array<double, 4> rle_bbox(const Rle& rle) {
  const size_t m = rle.counts.size() / 2 * 2;  // a trailing background run adds nothing
  if (m == 0 || rle.h == 0) return {0, 0, 0, 0};
  const int64_t h = rle.h;
  int64_t xs = rle.w, ys = h, xe = 0, ye = 0, xp = 0, cc = 0;
  for (size_t j = 0; j < m; ++j) {
    cc += rle.counts[j];
    // The first pixel of a foreground run, or the last one of it.
    const int64_t t = std::max<int64_t>(cc - static_cast<int64_t>(j % 2), 0);
    const int64_t y = t % h, x = (t - y) / h;
    if (j % 2 == 0)
      xp = x;
    else if (xp < x)  // the run wraps to the next column: it covers every row
      ys = 0, ye = h - 1;
    xs = std::min(xs, x), xe = std::max(xe, x), ys = std::min(ys, y), ye = std::max(ye, y);
  }
  return {static_cast<double>(xs), static_cast<double>(ys), static_cast<double>(xe - xs + 1),
          static_cast<double>(ye - ys + 1)};
}

}  // namespace evit::data
