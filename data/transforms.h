// Data augmentation and preprocessing transforms (see data/dataset.h for how they are applied).
// Each returns a Transform; randomness comes from the per-sample generator.
#pragma once
#include <array>

#include "data/dataset.h"

namespace evit::data {

inline constexpr std::array<double, 3> kImageNetMean = {0.485, 0.456, 0.406};
inline constexpr std::array<double, 3> kImageNetStd = {0.229, 0.224, 0.225};

// Throws unless resizing sample `s` to h x w stays within EVIT_MAX_IMAGE_PIXELS (core/limits.h),
// naming the sample: an extreme aspect ratio (a 1 x 1,000,000 strip brought to a 512 short side)
// fails at once instead of allocating gigabytes.
void check_resize_target(const Sample& s, int64_t h, int64_t w);

// (x - mean) / std per channel of the input; an 8-bit sample becomes f32 [3,H,W] of
// (v / 255 - mean) / std, the values the float path gives.
Transform normalize(std::array<double, 3> mean = kImageNetMean, std::array<double, 3> std = kImageNetStd);
// Horizontal flip of input (8-bit or float) and of a spatial target with probability p.
Transform horizontal_flip(double p = 0.5);

// ---- segmentation ----
// Rescales image and label by a random factor in [min_scale, max_scale] (image bilinear, label
// nearest), pads to at least crop_h x crop_w (image with 0, label with `ignore`) and takes a
// random crop of that size.
Transform random_scale_crop(double min_scale, double max_scale, int64_t crop_h, int64_t crop_w,
                            int64_t ignore = 255);
// Resizes the input (and a spatial target with nearest) to h x w; mode "nearest" | "bilinear" |
// "bicubic" for the image.
Transform resize(int64_t h, int64_t w, const std::string& mode = "bilinear", bool resize_target = true);
// Brightness, contrast and saturation each scaled by a random factor in [1 - s, 1 + s].
Transform photometric_jitter(double brightness, double contrast, double saturation);

// ---- classification ----
// torchvision's RandomResizedCrop: area fraction in [min_area, max_area], aspect ratio in
// [3/4, 4/3] (log-uniform), up to 10 tries then a centre crop; resized (bicubic) to size x size.
// An 8-bit sample (Sample::input u8 [H,W,3]) is resized as torchvision resizes a PIL image
// (Pillow's antialiased bicubic, data/resize_u8.h) and stays 8-bit; a float one with bicubic
// interpolation of the floats (no antialiasing), clamped to [0, 1].
Transform random_resized_crop(int64_t size, double min_area = 0.08, double max_area = 1.0);
// The crop random_resized_crop draws from `g` for an H x W image.
struct CropBox {
  int64_t y0, x0, h, w;
};
CropBox random_resized_crop_box(int64_t H, int64_t W, Generator& g, double min_area = 0.08, double max_area = 1.0);
// (Evaluation crops are the official protocols' transforms: data/eval_transforms.h.)

// timm's RandomErasing (mode "pixel"), applied to a normalised image: with probability p, a
// rectangle of area fraction in [min_area, max_area] and log-uniform aspect ratio in
// [min_aspect, 1/min_aspect] is filled with standard-normal noise (10 tries to fit).
Transform random_erasing(double p, double min_area = 0.02, double max_area = 1.0 / 3.0, double min_aspect = 0.3);

// ---- super-resolution ----
// Random aligned crop: an LR patch of lr_patch x lr_patch and the matching HR patch.
Transform sr_patch_crop(int64_t lr_patch, int64_t scale);
// Random horizontal flip, vertical flip and 90-degree rotation, the same for LR and HR.
Transform sr_flip_rotate();

// ---- batch-level ----
// Mixup (alpha > 0) or CutMix (cutmix_alpha > 0; chosen with probability 0.5 when both) of a
// batch with its reversed order: returns soft targets [B, num_classes].
struct MixResult {
  Tensor input, soft_target;
};
MixResult mix_batch(const Tensor& input, const Tensor& target, int64_t num_classes, double mixup_alpha,
                    double cutmix_alpha, double label_smoothing, Generator& rng);

}  // namespace evit::data
