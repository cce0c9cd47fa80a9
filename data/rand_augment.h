// timm's RandAugment ("rand-n{n}-m{m}-mstd{s}-inc1"), the ImageNet recipes' augmentation policy
// as the EfficientViT ImageNet recipes use it. timm runs it on the PIL image, i.e. on 8-bit RGB, after RandomResizedCrop and the
// flip and before ToTensor. Our pipeline holds f32 [3,H,W] images in [0,1] from decoding on, so
// the transform rounds the image to 0..255, runs the ops on 8-bit HWC pixels with PIL's integer
// semantics, and converts back: the result is what PIL would give for the rounded image.
//
// The single ops (namespace augment) take explicit arguments so they can be checked against PIL
// directly; they work on u8 tensors [H,W,3] (interleaved like PIL's RGB).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace evit::data {
namespace augment {

// PIL's transform filters for the geometric ops (timm passes the train interpolation; the
// recipes use bicubic).
enum class Resample { bilinear, bicubic };

// ImageNet mean colour x 255, rounded: what timm fills the uncovered area of a geometric op with.
inline constexpr std::array<uint8_t, 3> kMeanFill = {124, 116, 104};

// f32 [3,H,W] in [0,1] -> u8 [H,W,3] (round half up of clamp(x)·255) and back (v / 255).
Tensor to_u8_hwc(const Tensor& chw);
Tensor from_u8_hwc(const Tensor& hwc);

// ---- point ops (PIL.ImageOps) ----
// Per channel: maps [lo, hi] of the channel's histogram onto [0, 255] (cutoff 0).
Tensor auto_contrast(const Tensor& img);
// Per channel histogram equalisation, PIL's step = (count - count of the last used level) / 255.
Tensor equalize(const Tensor& img);
Tensor invert(const Tensor& img);
// Keeps the `bits` most significant bits (bits >= 8: unchanged, as timm skips it).
Tensor posterize(const Tensor& img, int bits);
// v >= threshold -> 255 - v.
Tensor solarize(const Tensor& img, int threshold);
// v < threshold -> min(255, v + add).
Tensor solarize_add(const Tensor& img, int add, int threshold = 128);

// ---- enhance ops (PIL.ImageEnhance): blend(degenerate, img, factor), clipped ----
// degenerate: the L (ITU-R 601-2) grayscale of the image.
Tensor color(const Tensor& img, double factor);
// degenerate: the rounded mean of the L image, everywhere.
Tensor contrast(const Tensor& img, double factor);
// degenerate: black.
Tensor brightness(const Tensor& img, double factor);
// degenerate: PIL's SMOOTH 3x3 filter (1 1 1 / 1 5 1 / 1 1 1, /13), border pixels unchanged.
Tensor sharpness(const Tensor& img, double factor);

// ---- geometric ops (PIL Image.transform AFFINE): output pixel centre (x+.5, y+.5) samples the
// input at (a0 x' + a1 y' + a2, a3 x' + a4 y' + a5); samples outside [0,W)x[0,H) get `fill`.
Tensor affine(const Tensor& img, const std::array<double, 6>& inverse, Resample resample,
              std::array<uint8_t, 3> fill = kMeanFill);
// Image.rotate(degrees) about the centre (counter-clockwise for positive degrees).
Tensor rotate(const Tensor& img, double degrees, Resample resample, std::array<uint8_t, 3> fill = kMeanFill);
Tensor shear_x(const Tensor& img, double factor, Resample resample, std::array<uint8_t, 3> fill = kMeanFill);
Tensor shear_y(const Tensor& img, double factor, Resample resample, std::array<uint8_t, 3> fill = kMeanFill);
// Shifts content by -pixels (timm's TranslateXRel passes pct · width).
Tensor translate_x(const Tensor& img, double pixels, Resample resample, std::array<uint8_t, 3> fill = kMeanFill);
Tensor translate_y(const Tensor& img, double pixels, Resample resample, std::array<uint8_t, 3> fill = kMeanFill);

// ---- the policy's ops by name, with timm's magnitude -> argument mapping ----
enum class Op {
  AutoContrast, Equalize, Invert, Rotate, Posterize, PosterizeIncreasing, Solarize, SolarizeIncreasing,
  SolarizeAdd, Color, ColorIncreasing, Contrast, ContrastIncreasing, Brightness, BrightnessIncreasing,
  Sharpness, SharpnessIncreasing, ShearX, ShearY, TranslateXRel, TranslateYRel
};
// timm's name of an op ("PosterizeIncreasing", ...); op_from_name throws on an unknown name.
const char* op_name(Op op);
Op op_from_name(const std::string& name);
// timm's op lists: _RAND_TRANSFORMS (increasing = false) and _RAND_INCREASING_TRANSFORMS.
const std::vector<Op>& rand_ops(bool increasing);
// The op's argument for a magnitude (0..10 scale) and sign (negate: the random sign came out
// negative; only the signed ops use it). 0 for ops without an argument.
double op_argument(Op op, double magnitude, bool negate);
// Applies an op at a magnitude and sign (translate pixels = argument · width or height).
Tensor apply_op(const Tensor& img, Op op, double magnitude, bool negate, Resample resample,
                std::array<uint8_t, 3> fill = kMeanFill);

}  // namespace augment

struct RandAugmentConfig {
  int n = 2;              // ops per image (chosen uniformly, with replacement)
  double m = 10;          // magnitude on timm's 0..10 scale
  double mstd = 0;        // per-op Gaussian noise on m; > 100 means uniform in [0, m]
  double mmax = 10;       // the magnitude is clipped to [0, mmax]
  bool increasing = false;  // "inc1": the ops whose strength grows with m
  double prob = 0.5;      // each chosen op is applied with this probability
};

// Parses timm's config string "rand-n2-m9-mstd0.5-inc1" (sections: n, m, mstd, mmax, inc; any
// order; timm's defaults n2 m10 mstd0 inc0). Throws naming `where` (e.g. the config key) and the
// bad section on malformed input.
RandAugmentConfig parse_rand_augment(const std::string& spec, const std::string& where = "rand_augment");

// One op the policy chose for an image: applied or skipped, and its magnitude and sign.
struct AugmentStep {
  augment::Op op;
  bool applied = false;
  double magnitude = 0;
  bool negate = false;
};
// Draws the policy's n steps from the sample generator (op, apply?, noisy magnitude, sign).
std::vector<AugmentStep> sample_rand_augment(const RandAugmentConfig& cfg, Generator& rng);

// The transform: rounds the sample's f32 [3,H,W] image in [0,1] to 8 bits, applies the drawn
// steps and converts back. Geometric ops fill with `fill` and sample with `resample`.
Transform rand_augment(const RandAugmentConfig& cfg, augment::Resample resample = augment::Resample::bicubic,
                       std::array<uint8_t, 3> fill = augment::kMeanFill);
// Shorthand for "rand-n{n}-m{m}-mstd{mstd}-inc1".
Transform rand_augment(int n, double m, double mstd = 1.0);

}  // namespace evit::data
