#include "data/transforms.h"

#include <algorithm>
#include <cmath>

#include "core/limits.h"
#include "ops/pointwise.h"
#include "ops/reduce.h"
#include "ops/resize.h"
#include "ops/shape.h"
#include "data/resize_u8.h"

namespace evit::data {
namespace {

double uniform(Generator& g, double lo, double hi) { return lo + (hi - lo) * g.uniform_double(); }

int64_t uniform_int(Generator& g, int64_t lo, int64_t hi_inclusive) {
  if (hi_inclusive <= lo) return lo;
  return lo + static_cast<int64_t>(g.next_u64() % static_cast<uint64_t>(hi_inclusive - lo + 1));
}

// Resizes a [C,H,W] float image.
Tensor resize_image(const Tensor& img, int64_t h, int64_t w, InterpolateMode mode) {
  if (img.size(1) == h && img.size(2) == w) return img;
  Tensor r = squeeze(interpolate(unsqueeze(img, 0), {h, w}, {}, mode, false), 0);
  return mode == InterpolateMode::bicubic ? clamp(r, 0.0, 1.0) : r;  // bicubic overshoots
}

// Nearest resize of an integer label map [H,W] (PyTorch's 'nearest': src = floor(dst * in / out)).
Tensor resize_label(const Tensor& lab, int64_t h, int64_t w) {
  const int64_t ih = lab.size(0), iw = lab.size(1);
  if (ih == h && iw == w) return lab;
  Tensor c = lab.contiguous();
  Tensor out = empty({h, w}, DType::i64);
  const int64_t* p = c.data_ptr<int64_t>();
  int64_t* q = out.data_ptr<int64_t>();
  for (int64_t y = 0; y < h; ++y) {
    int64_t sy = std::min(ih - 1, static_cast<int64_t>(std::floor(y * static_cast<double>(ih) / h)));
    for (int64_t x = 0; x < w; ++x) {
      int64_t sx = std::min(iw - 1, static_cast<int64_t>(std::floor(x * static_cast<double>(iw) / w)));
      q[y * w + x] = p[sy * iw + sx];
    }
  }
  return out;
}

// Reverses the last dim (width) of a contiguous tensor of any dtype.
Tensor flip_last(const Tensor& t) {
  Tensor c = t.contiguous();
  Tensor out = empty_like(c);
  const int64_t w = c.size(-1), rows = c.numel() / std::max<int64_t>(w, 1);
  dispatch_all(c.dtype(), "flip", [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(c.raw_data());
    T* q = static_cast<T*>(out.raw_data());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t x = 0; x < w; ++x) q[r * w + x] = p[r * w + (w - 1 - x)];
  });
  return out;
}

// Reverses the width of an [H,W,C] image (pixels of C samples).
Tensor flip_width_hwc(const Tensor& t) {
  Tensor c = t.contiguous();
  Tensor out = empty_like(c);
  const int64_t h = c.size(0), w = c.size(1), ch = c.size(2);
  const uint8_t* p = c.data_ptr<uint8_t>();
  uint8_t* q = out.data_ptr<uint8_t>();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) std::copy_n(p + (y * w + (w - 1 - x)) * ch, ch, q + (y * w + x) * ch);
  return out;
}

bool spatial_target(const Sample& s) { return s.target.defined() && s.target.dim() >= 2; }

// Gamma(shape, 1) by Marsaglia and Tsang, from the sample generator.
double gamma_draw(Generator& g, double shape) {
  if (shape < 1) return gamma_draw(g, shape + 1) * std::pow(g.uniform_double() + 1e-300, 1.0 / shape);
  const double d = shape - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  for (;;) {
    double u1 = 1 - g.uniform_double(), u2 = g.uniform_double();
    double z = std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    double v = std::pow(1 + c * z, 3);
    if (v <= 0) continue;
    double u = 1 - g.uniform_double();
    if (std::log(u) < 0.5 * z * z + d - d * v + d * std::log(v)) return d * v;
  }
}

double beta_draw(Generator& g, double a) {
  double x = gamma_draw(g, a), y = gamma_draw(g, a);
  return x / (x + y);
}

}  // namespace

Transform normalize(std::array<double, 3> mean, std::array<double, 3> std) {
  // An 8-bit sample maps each sample value through a per-channel table holding what the float
  // path computes for it: (v / 255 - mean) / std in f32 arithmetic.
  std::vector<std::array<float, 256>> table(3);
  for (size_t c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v)
      table[c][static_cast<size_t>(v)] =
          (static_cast<float>(v / 255.0) - static_cast<float>(mean[c])) / static_cast<float>(std[c]);
  return [mean, std, table](Sample& s, Generator&) {
    if (is_hwc_u8_rgb(s.input)) {
      s.input = hwc_u8_to_chw_mapped(s.input, table);
      return;
    }
    EVIT_CHECK(s.input.dim() == 3 && s.input.size(0) == 3, "normalize: expected a [3,H,W] image, got ",
               s.input.desc(), " (", s.id, ")");
    Tensor m = from_vector<double>({mean[0], mean[1], mean[2]}, {3, 1, 1}).to(s.input.dtype());
    Tensor d = from_vector<double>({std[0], std[1], std[2]}, {3, 1, 1}).to(s.input.dtype());
    s.input = div(sub(s.input, m), d);
  };
}

Transform horizontal_flip(double p) {
  return [p](Sample& s, Generator& g) {
    if (g.uniform_double() >= p) return;
    s.input = is_hwc_u8_rgb(s.input) ? flip_width_hwc(s.input) : flip_last(s.input);
    if (spatial_target(s)) s.target = flip_last(s.target);
  };
}

void check_resize_target(const Sample& s, int64_t h, int64_t w) {
  check_image_pixels(h, w, "'" + s.id + "' resized");
}

Transform random_scale_crop(double min_scale, double max_scale, int64_t crop_h, int64_t crop_w, int64_t ignore) {
  EVIT_CHECK(0 < min_scale && min_scale <= max_scale, "random_scale_crop: bad scale range [", min_scale, ", ",
             max_scale, "]");
  return [=](Sample& s, Generator& g) {
    const double f = uniform(g, min_scale, max_scale);
    const int64_t h = std::max<int64_t>(1, std::llround(s.input.size(1) * f));
    const int64_t w = std::max<int64_t>(1, std::llround(s.input.size(2) * f));
    check_resize_target(s, h, w);
    Tensor img = resize_image(s.input, h, w, InterpolateMode::bilinear);
    Tensor lab = resize_label(s.target, h, w);
    const int64_t ph = std::max<int64_t>(0, crop_h - h), pw = std::max<int64_t>(0, crop_w - w);
    if (ph > 0 || pw > 0) {
      img = pad(img, {0, pw, 0, ph}, 0.0);
      lab = pad(lab, {0, pw, 0, ph}, static_cast<double>(ignore));
    }
    const int64_t y0 = uniform_int(g, 0, img.size(1) - crop_h), x0 = uniform_int(g, 0, img.size(2) - crop_w);
    s.input = slice(slice(img, 1, y0, y0 + crop_h), 2, x0, x0 + crop_w).contiguous();
    s.target = slice(slice(lab, 0, y0, y0 + crop_h), 1, x0, x0 + crop_w).contiguous();
  };
}

Transform resize(int64_t h, int64_t w, const std::string& mode, bool resize_target) {
  InterpolateMode m = interpolate_mode(mode);
  return [=](Sample& s, Generator&) {
    s.input = resize_image(s.input, h, w, m);
    if (resize_target && spatial_target(s)) s.target = resize_label(s.target, h, w);
  };
}

Transform photometric_jitter(double brightness, double contrast, double saturation) {
  return [=](Sample& s, Generator& g) {
    Tensor x = s.input;
    if (brightness > 0) x = mul(x, uniform(g, 1 - brightness, 1 + brightness));
    if (contrast > 0) {
      Tensor m = mean(x);
      x = add(mul(sub(x, m), uniform(g, 1 - contrast, 1 + contrast)), m);
    }
    if (saturation > 0) {
      Tensor gray = mean(x, {0}, true);  // a simple luminance proxy
      x = add(mul(sub(x, gray), uniform(g, 1 - saturation, 1 + saturation)), gray);
    }
    s.input = clamp(x, 0.0, 1.0);
  };
}

CropBox random_resized_crop_box(int64_t H, int64_t W, Generator& g, double min_area, double max_area) {
  const double area = static_cast<double>(H * W);
  CropBox b{(H - std::min(H, W)) / 2, (W - std::min(H, W)) / 2, std::min(H, W), std::min(H, W)};
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target = area * uniform(g, min_area, max_area);
    double ratio = std::exp(uniform(g, std::log(3.0 / 4.0), std::log(4.0 / 3.0)));
    int64_t w = std::llround(std::sqrt(target * ratio)), h = std::llround(std::sqrt(target / ratio));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      b.h = h, b.w = w;
      b.y0 = uniform_int(g, 0, H - h);
      b.x0 = uniform_int(g, 0, W - w);
      break;
    }
  }
  return b;
}

Transform random_resized_crop(int64_t size, double min_area, double max_area) {
  return [=](Sample& s, Generator& g) {
    const bool eight_bit = is_hwc_u8_rgb(s.input);
    const auto [y0, x0, ch, cw] =
        random_resized_crop_box(s.input.size(eight_bit ? 0 : 1), s.input.size(eight_bit ? 1 : 2), g, min_area, max_area);
    if (eight_bit) {
      // As torchvision resizes the crop of a PIL image: Pillow's antialiased bicubic on 8 bits.
      const Tensor crop = slice(slice(s.input, 0, y0, y0 + ch), 1, x0, x0 + cw);  // a view, copied once below
      s.input = image_to_hwc_u8(resize_bicubic_pil(hwc_u8_to_image(crop), size, size));
      return;
    }
    Tensor crop = slice(slice(s.input, 1, y0, y0 + ch), 2, x0, x0 + cw).contiguous();
    s.input = resize_image(crop, size, size, InterpolateMode::bicubic);
  };
}

Transform random_erasing(double p, double min_area, double max_area, double min_aspect) {
  return [=](Sample& s, Generator& g) {
    if (g.uniform_double() >= p) return;
    const int64_t C = s.input.size(0), H = s.input.size(1), W = s.input.size(2);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double area = H * W * uniform(g, min_area, max_area);
      const double aspect = std::exp(uniform(g, std::log(min_aspect), std::log(1.0 / min_aspect)));
      const int64_t h = std::llround(std::sqrt(area * aspect)), w = std::llround(std::sqrt(area / aspect));
      if (h < 1 || w < 1 || h >= H || w >= W) continue;
      const int64_t y0 = uniform_int(g, 0, H - h), x0 = uniform_int(g, 0, W - w);
      Tensor img = s.input.contiguous().clone();
      float* p0 = img.data_ptr<float>();
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = y0; y < y0 + h; ++y)
          for (int64_t x = x0; x < x0 + w; ++x) {
            double u1 = 1 - g.uniform_double(), u2 = g.uniform_double();
            p0[(c * H + y) * W + x] = static_cast<float>(std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2));
          }
      s.input = img;
      return;
    }
  };
}

Transform sr_patch_crop(int64_t lr_patch, int64_t scale) {
  return [=](Sample& s, Generator& g) {
    const int64_t h = s.input.size(1), w = s.input.size(2);
    EVIT_CHECK(h >= lr_patch && w >= lr_patch, "sr_patch_crop: LR image of '", s.id, "' is ", h, "x", w,
               ", smaller than the patch ", lr_patch);
    const int64_t y0 = uniform_int(g, 0, h - lr_patch), x0 = uniform_int(g, 0, w - lr_patch);
    s.input = slice(slice(s.input, 1, y0, y0 + lr_patch), 2, x0, x0 + lr_patch).contiguous();
    s.target = slice(slice(s.target, 1, y0 * scale, (y0 + lr_patch) * scale), 2, x0 * scale,
                     (x0 + lr_patch) * scale)
                   .contiguous();
  };
}

Transform sr_flip_rotate() {
  return [](Sample& s, Generator& g) {
    const bool hflip = g.uniform_double() < 0.5, vflip = g.uniform_double() < 0.5, rot = g.uniform_double() < 0.5;
    for (Tensor* t : {&s.input, &s.target}) {
      Tensor x = *t;
      if (hflip) x = flip_last(x);
      if (vflip) x = transpose(flip_last(transpose(x, 1, 2).contiguous()), 1, 2).contiguous();
      if (rot) x = transpose(x, 1, 2).contiguous();  // with the flips this covers all 8 symmetries
      *t = x;
    }
  };
}

MixResult mix_batch(const Tensor& input, const Tensor& target, int64_t num_classes, double mixup_alpha,
                    double cutmix_alpha, double label_smoothing, Generator& rng) {
  const int64_t b = input.size(0);
  // Smoothed one-hot targets.
  Tensor soft = full({b, num_classes}, label_smoothing / num_classes);
  {
    const int64_t* t = target.contiguous().data_ptr<int64_t>();
    float* p = soft.data_ptr<float>();
    for (int64_t i = 0; i < b; ++i) {
      EVIT_CHECK(t[i] >= 0 && t[i] < num_classes, "mix_batch: label ", t[i], " out of range [0, ", num_classes, ")");
      p[i * num_classes + t[i]] += static_cast<float>(1 - label_smoothing);
    }
  }
  if (mixup_alpha <= 0 && cutmix_alpha <= 0) return {input, soft};
  std::vector<int64_t> rev(b);
  for (int64_t i = 0; i < b; ++i) rev[i] = b - 1 - i;
  auto reversed = [&](const Tensor& t) {
    std::vector<Tensor> rows;
    for (int64_t i : rev) rows.push_back(unsqueeze(select(t, 0, i), 0));
    return cat(rows, 0);
  };
  Tensor other = reversed(input), other_soft = reversed(soft);
  const bool use_cutmix = cutmix_alpha > 0 && (mixup_alpha <= 0 || rng.uniform_double() < 0.5);
  double lam;
  Tensor mixed;
  if (use_cutmix) {
    lam = beta_draw(rng, cutmix_alpha);
    const int64_t H = input.size(2), W = input.size(3);
    const int64_t ch = std::llround(H * std::sqrt(1 - lam)), cw = std::llround(W * std::sqrt(1 - lam));
    const int64_t cy = uniform_int(rng, 0, H - 1), cx = uniform_int(rng, 0, W - 1);
    const int64_t y0 = std::max<int64_t>(0, cy - ch / 2), y1 = std::min(H, cy + ch / 2);
    const int64_t x0 = std::max<int64_t>(0, cx - cw / 2), x1 = std::min(W, cx + cw / 2);
    mixed = input.contiguous().clone();
    copy_(slice(slice(mixed, 2, y0, y1), 3, x0, x1), slice(slice(other, 2, y0, y1), 3, x0, x1));
    lam = 1 - static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(H * W);  // actual box area
  } else {
    lam = beta_draw(rng, mixup_alpha);
    mixed = add(mul(input, lam), mul(other, 1 - lam));
  }
  return {mixed, add(mul(soft, lam), mul(other_soft, 1 - lam))};
}

}  // namespace evit::data
