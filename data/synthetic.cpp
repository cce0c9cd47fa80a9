#include "data/synthetic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "data/image.h"

namespace fs = std::filesystem;

namespace evit::data {
namespace {

// Cityscapes labelIds used by the scenes.
constexpr uint8_t kEgo = 1, kRoad = 7, kSidewalk = 8, kBuilding = 11, kPole = 17, kSign = 20,
                  kVegetation = 21, kTerrain = 22, kSky = 23, kCar = 26;

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A small self-contained generator: the scenes must not change when evit's Generator or the
// standard library's distributions change, since tests compare bytes across runs.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(splitmix(seed)) {}
  uint64_t next() { return splitmix(s_++); }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int64_t integer(int64_t lo, int64_t hi) {  // [lo, hi]
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool chance(double p) { return uniform() < p; }

 private:
  uint64_t s_;
};

// Value noise in [0,1) from integer coordinates: a position hash, used for textures.
double hash01(int64_t x, int64_t y, uint64_t salt) {
  uint64_t h = splitmix(salt ^ splitmix(static_cast<uint64_t>(x) * 0x100000001B3ull + static_cast<uint64_t>(y)));
  return (h >> 11) * (1.0 / 9007199254740992.0);
}

// Smooth noise: bilinear interpolation of hash01 on a grid of `cell` pixels.
double smooth_noise(double x, double y, double cell, uint64_t salt) {
  double gx = x / cell, gy = y / cell;
  int64_t x0 = static_cast<int64_t>(std::floor(gx)), y0 = static_cast<int64_t>(std::floor(gy));
  double fx = gx - x0, fy = gy - y0;
  fx = fx * fx * (3 - 2 * fx);
  fy = fy * fy * (3 - 2 * fy);
  double a = hash01(x0, y0, salt), b = hash01(x0 + 1, y0, salt);
  double c = hash01(x0, y0 + 1, salt), d = hash01(x0 + 1, y0 + 1, salt);
  return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy;
}

using Rgb = std::array<double, 3>;

Rgb scaled(const Rgb& c, double f) { return {c[0] * f, c[1] * f, c[2] * f}; }
Rgb mix(const Rgb& a, const Rgb& b, double t) {
  return {a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t};
}

struct Canvas {
  int64_t h, w;
  std::vector<double> rgb;     // [H][W][3], 0..255 before illumination and noise
  std::vector<uint8_t> label;  // [H][W] labelIds
  Canvas(int64_t h_, int64_t w_) : h(h_), w(w_), rgb(h_ * w_ * 3, 0.0), label(h_ * w_, 0) {}
  bool inside(int64_t y, int64_t x) const { return y >= 0 && y < h && x >= 0 && x < w; }
  void set(int64_t y, int64_t x, uint8_t id, const Rgb& c) {
    if (!inside(y, x)) return;
    label[y * w + x] = id;
    for (int k = 0; k < 3; ++k) rgb[(y * w + x) * 3 + k] = c[k];
  }
};

// Draws one street scene.
void draw_scene(Canvas& cv, Rng& rng) {
  const int64_t H = cv.h, W = cv.w;
  const uint64_t salt = rng.next();
  const double horizon = H * rng.uniform(0.42, 0.55);
  const double ground = H - horizon;

  // Sky: a vertical gradient with soft clouds.
  const Rgb sky_top{rng.uniform(50, 90), rng.uniform(110, 150), rng.uniform(180, 230)};
  const Rgb sky_low{rng.uniform(160, 200), rng.uniform(190, 215), rng.uniform(215, 240)};
  const double cloudiness = rng.uniform(0.0, 0.6);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      Rgb c = mix(sky_top, sky_low, std::min(1.0, y / horizon));
      double n = smooth_noise(x, y, std::max(4.0, W / 10.0), salt ^ 1);
      if (n > 1 - cloudiness) c = mix(c, {235, 235, 240}, (n - (1 - cloudiness)) / cloudiness);
      cv.set(y, x, kSky, c);
    }

  // Buildings: a row of blocks standing on the horizon, with window grids; some gaps show sky.
  const std::array<Rgb, 5> wall_colours{{{70, 70, 70}, {115, 100, 90}, {150, 140, 120},
                                          {95, 80, 75}, {130, 130, 140}}};
  for (int64_t x0 = 0; x0 < W;) {
    int64_t bw = std::max<int64_t>(4, static_cast<int64_t>(W * rng.uniform(0.08, 0.3)));
    if (rng.chance(0.15)) {  // gap
      x0 += bw / 2;
      continue;
    }
    int64_t top = static_cast<int64_t>(rng.uniform(0.12 * H, horizon - 0.08 * H));
    Rgb wall = scaled(wall_colours[rng.integer(0, 4)], rng.uniform(0.8, 1.2));
    Rgb glass{rng.uniform(30, 70), rng.uniform(40, 80), rng.uniform(60, 110)};
    double cell = std::max(3.0, H * rng.uniform(0.03, 0.06));
    bool lit = rng.chance(0.3);
    for (int64_t y = top; y < static_cast<int64_t>(horizon) + 2; ++y)
      for (int64_t x = x0; x < std::min(W, x0 + bw); ++x) {
        double fx = std::fmod((x - x0) / cell, 1.0), fy = std::fmod((y - top) / cell, 1.0);
        bool window = fx > 0.25 && fx < 0.75 && fy > 0.2 && fy < 0.7 && y < horizon - cell;
        Rgb c = wall;
        if (window) c = lit && hash01(x / static_cast<int64_t>(cell), y / static_cast<int64_t>(cell), salt ^ 2) > 0.6
                            ? Rgb{220, 200, 140} : glass;
        c = scaled(c, 0.9 + 0.2 * hash01(x, y, salt ^ 3));
        cv.set(y, x, kBuilding, c);
      }
    x0 += bw;
  }

  // Ground: a road widening towards the bottom, sidewalks along it and terrain beyond.
  const double cx = W * rng.uniform(0.35, 0.65);
  const double spread = W * rng.uniform(0.45, 0.75);
  auto half_width = [&](double y) { return (y - horizon) / ground * spread + 1.0; };
  const Rgb asphalt{rng.uniform(70, 95), rng.uniform(70, 90), rng.uniform(75, 100)};
  const Rgb paving{rng.uniform(140, 175), rng.uniform(130, 160), rng.uniform(125, 155)};
  const Rgb grass{rng.uniform(110, 160), rng.uniform(150, 190), rng.uniform(80, 110)};
  const double sidewalk_ratio = rng.uniform(1.3, 1.7);
  for (int64_t y = static_cast<int64_t>(std::ceil(horizon)); y < H; ++y) {
    double hw = half_width(y), depth = (y - horizon) / ground;
    for (int64_t x = 0; x < W; ++x) {
      double d = std::abs(x - cx);
      if (d < hw) {
        Rgb c = scaled(asphalt, 0.9 + 0.2 * smooth_noise(x, y, 3, salt ^ 4));
        // Dashed centre line: still road.
        bool dash = d < 0.015 * hw + 0.5 && std::fmod(std::log(depth + 0.05) * 6.0 + 100.0, 1.0) < 0.5;
        cv.set(y, x, kRoad, dash ? Rgb{230, 230, 220} : c);
      } else if (d < hw * sidewalk_ratio) {
        double tile = std::fmod(d / std::max(2.0, hw * 0.1), 1.0);
        Rgb c = scaled(paving, tile < 0.1 ? 0.8 : 0.95 + 0.1 * hash01(x, y, salt ^ 5));
        cv.set(y, x, kSidewalk, c);
      } else {
        cv.set(y, x, kTerrain, scaled(grass, 0.8 + 0.4 * smooth_noise(x, y, 2, salt ^ 6)));
      }
    }
  }

  // Vegetation: leafy blobs around the horizon at the sides.
  for (int64_t i = 0, n = rng.integer(1, 4); i < n; ++i) {
    double by = horizon + rng.uniform(-0.15, 0.05) * H;
    double side = rng.chance(0.5) ? -1 : 1;
    double bx = cx + side * rng.uniform(0.2, 0.6) * W;
    double rx = rng.uniform(0.05, 0.14) * W, ry = rng.uniform(0.06, 0.16) * H;
    Rgb leaf{rng.uniform(40, 80), rng.uniform(90, 130), rng.uniform(25, 50)};
    for (int64_t y = static_cast<int64_t>(by - ry); y <= static_cast<int64_t>(by + ry); ++y)
      for (int64_t x = static_cast<int64_t>(bx - rx); x <= static_cast<int64_t>(bx + rx); ++x) {
        double u = (x - bx) / rx, v = (y - by) / ry;
        // A ragged edge: the radius varies with smooth noise.
        if (u * u + v * v > 0.75 + 0.35 * smooth_noise(x, y, 3, salt ^ 7)) continue;
        cv.set(y, x, kVegetation, scaled(leaf, 0.6 + 0.8 * hash01(x, y, salt ^ 8)));
      }
  }

  // Poles along the sidewalks, some with a traffic sign near the top.
  for (int64_t i = 0, n = rng.integer(1, 4); i < n; ++i) {
    double yb = horizon + rng.uniform(0.15, 0.9) * ground;
    double side = rng.chance(0.5) ? -1 : 1;
    double px = cx + side * half_width(yb) * (1 + (sidewalk_ratio - 1) * 0.5);
    double len = (yb - horizon) * rng.uniform(1.6, 2.6);
    double pw = std::max(1.0, (yb - horizon) * 0.04);
    Rgb metal = scaled({120, 120, 125}, rng.uniform(0.8, 1.2));
    for (int64_t y = static_cast<int64_t>(yb - len); y <= static_cast<int64_t>(yb); ++y)
      for (int64_t x = static_cast<int64_t>(px - pw / 2); x < static_cast<int64_t>(px + pw / 2 + 1); ++x)
        cv.set(y, x, kPole, metal);
    if (rng.chance(0.5)) {
      const std::array<Rgb, 3> sign_colours{{{220, 200, 30}, {30, 70, 180}, {200, 40, 40}}};
      Rgb sc = sign_colours[rng.integer(0, 2)];
      double s = std::max(2.0, pw * rng.uniform(3, 5));
      double sy = yb - len + s * 0.2;
      for (int64_t y = static_cast<int64_t>(sy); y < static_cast<int64_t>(sy + s); ++y)
        for (int64_t x = static_cast<int64_t>(px - s / 2); x < static_cast<int64_t>(px + s / 2); ++x)
          cv.set(y, x, kSign, sc);
    }
  }

  // Cars on the road, far ones first so that near ones occlude them.
  std::vector<double> car_bottoms;
  for (int64_t i = 0, n = rng.integer(0, 4); i < n; ++i) car_bottoms.push_back(horizon + rng.uniform(0.12, 1.05) * ground);
  std::sort(car_bottoms.begin(), car_bottoms.end());
  for (double yb : car_bottoms) {
    double hw = half_width(std::min(yb, static_cast<double>(H)));
    double ccx = cx + rng.uniform(-0.6, 0.6) * hw;
    double cw = 2 * hw * rng.uniform(0.3, 0.45), ch = cw * rng.uniform(0.5, 0.7);
    double r = ch * 0.25;
    Rgb paint{rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)};
    double x0 = ccx - cw / 2, x1 = ccx + cw / 2, y0 = yb - ch, y1 = yb;
    for (int64_t y = static_cast<int64_t>(y0); y <= static_cast<int64_t>(y1); ++y)
      for (int64_t x = static_cast<int64_t>(x0); x <= static_cast<int64_t>(x1); ++x) {
        // Rounded box: outside the corner circles the pixel is not part of the car.
        double qx = std::max({x0 + r - x, 0.0, x - (x1 - r)}), qy = std::max({y0 + r - y, 0.0, y - (y1 - r)});
        if (qx * qx + qy * qy > r * r) continue;
        double fy = (y - y0) / ch, fx = (x - x0) / cw;
        Rgb c = paint;
        if (fy > 0.12 && fy < 0.42 && fx > 0.12 && fx < 0.88) c = {35, 45, 55};        // windows
        else if (fy > 0.8 && (fx < 0.28 || fx > 0.72)) c = {20, 20, 20};               // wheels
        else c = scaled(paint, 0.85 + 0.3 * (1 - fy));                                   // shading
        cv.set(y, x, kCar, c);
      }
  }

  // Sometimes the ego vehicle's bonnet at the bottom edge (an ignored labelId).
  if (rng.chance(0.3)) {
    double top = H * rng.uniform(0.9, 0.95);
    Rgb bonnet = scaled({60, 60, 70}, rng.uniform(0.7, 1.3));
    for (int64_t y = static_cast<int64_t>(top); y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        // A parabolic outline: highest in the middle, lower towards the sides.
        double u = (x - W / 2.0) / (W * 0.7), v = (H - y) / (H - top);
        if (v <= 1.0 - 0.5 * u * u) cv.set(y, x, kEgo, bonnet);
      }
  }
}

// Global illumination and colour cast, then per-pixel noise, rounded to 8 bits.
Image render(const Canvas& cv, Rng& rng) {
  const double illum = rng.uniform(0.65, 1.25);
  const Rgb tint{rng.uniform(0.92, 1.08), rng.uniform(0.92, 1.08), rng.uniform(0.92, 1.08)};
  const double sigma = rng.uniform(2.0, 8.0);
  Image img(cv.h, cv.w, 3);
  for (int64_t i = 0; i < cv.h * cv.w; ++i)
    for (int k = 0; k < 3; ++k) {
      // Approximately Gaussian noise: a centred sum of four uniforms (variance 1/3 each -> 4/12).
      double n = (rng.uniform() + rng.uniform() + rng.uniform() + rng.uniform() - 2.0) * std::sqrt(3.0);
      double v = cv.rgb[i * 3 + k] * illum * tint[k] + sigma * n;
      img.data[i * 3 + k] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
    }
  return img;
}

void write_split(const std::string& root, const std::string& split, int64_t n, int64_t h, int64_t w,
                 uint64_t seed) {
  const std::array<std::string, 2> cities{split == "train" ? "synthtown" : "synthville",
                                          split == "train" ? "gridcity" : "testburg"};
  for (const auto& city : cities) {
    fs::create_directories(fs::path(root) / "leftImg8bit" / split / city);
    fs::create_directories(fs::path(root) / "gtFine" / split / city);
  }
  for (int64_t i = 0; i < n; ++i) {
    // Each frame has its own generator so frames do not depend on one another.
    Rng rng(splitmix(seed ^ splitmix(split == "train" ? 1 : 2)) + static_cast<uint64_t>(i));
    Canvas cv(h, w);
    draw_scene(cv, rng);
    Image img = render(cv, rng);
    Image lab(h, w, 1);
    std::copy(cv.label.begin(), cv.label.end(), lab.data.begin());
    const std::string& city = cities[i % 2];
    char num[32];
    std::snprintf(num, sizeof num, "%06lld", static_cast<long long>(i / 2));
    const std::string stem = city + "_" + num + "_000019";
    encode_png((fs::path(root) / "leftImg8bit" / split / city / (stem + "_leftImg8bit.png")).string(), img);
    encode_png((fs::path(root) / "gtFine" / split / city / (stem + "_gtFine_labelIds.png")).string(), lab);
  }
}

}  // namespace

void write_synthetic_cityscapes(const std::string& root, int64_t n_train, int64_t n_val, int64_t height,
                                int64_t width, uint64_t seed) {
  EVIT_CHECK(!root.empty(), "write_synthetic_cityscapes: empty root folder");
  EVIT_CHECK(n_train >= 0 && n_val >= 0, "write_synthetic_cityscapes: negative image count (train ", n_train,
             ", val ", n_val, ")");
  EVIT_CHECK(height >= 32 && width >= 32, "write_synthetic_cityscapes: size ", height, "x", width,
             " too small (at least 32x32)");
  write_split(root, "train", n_train, height, width, seed);
  write_split(root, "val", n_val, height, width, seed);
}

}  // namespace evit::data
