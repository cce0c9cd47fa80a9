// Super-resolution metrics as published SR tables compute them (docs/training.md).
//
// Low level: psnr() and ssim() on two planes of 0..255 values (f32/f64 [H,W]) after cropping
// `border` pixels on every side. SSIM is Wang et al.'s: 11x11 Gaussian window (sigma 1.5,
// normalised), 'valid' filtering (no padding), K1 = 0.01, K2 = 0.03, L = data_range, the mean
// of the SSIM map, no downsampling.
//
// Two protocols (they differ by 0.01-0.1 dB, so callers pick one by name):
// - Y-plane protocol (the classic MATLAB bicubic tables): y_plane_u8 gives the rounded 8-bit Y
//   of the modcropped HR image (gray images: their gray plane); bicubic_baseline_y resizes that
//   plane down by 1/s and up by s with MATLAB imresize, rounds to 8 bits and scores it.
// - RGB protocol (modern toolkits, used for model outputs): score_sr_rgb rounds the SR and HR
//   RGB images to 8 bits, takes the unrounded Y of each and scores them.
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "data/image.h"

namespace evit {

struct SrScore {
  double psnr = 0;
  double ssim = 0;
};

// a, b: [H,W] f32/f64 planes of equal shape; border >= 0 pixels cropped on each side.
// PSNR of identical planes is +infinity.
double psnr(const Tensor& a, const Tensor& b, int64_t border, double data_range = 255.0);
double ssim(const Tensor& a, const Tensor& b, int64_t border, double data_range = 255.0);

// Crops an Image (top-left anchored) so height and width are multiples of `scale`.
Image modcrop(const Image& image, int64_t scale);

// Y-plane protocol. The rounded BT.601 Y (16..235) of an 8-bit RGB/RGBA image as an f64 [H,W]
// plane of integers; a gray (or gray+alpha) image gives its gray plane. Alpha is ignored.
Tensor y_plane_u8(const Image& image);
// Y-plane protocol bicubic baseline: modcrop, Y plane, imresize by 1/scale then by scale, round
// to 0..255 integers, score against the HR Y plane with `scale` border pixels cropped.
SrScore bicubic_baseline_y(const Image& hr, int64_t scale);

// The smallest HR side (after modcrop) PSNR and SSIM can score at `scale`: the scale-wide border
// on both sides plus SSIM's 11-pixel window.
int64_t sr_eval_min_side(int64_t scale);
// Throws unless an h x w HR image (`id` names it) is large enough to score at `scale`.
void check_sr_eval_size(int64_t h, int64_t w, int64_t scale, const std::string& id);

// RGB protocol. sr, hr: [3,H,W] float RGB in [0,1] of equal shape (e.g. a model output and the
// ground truth); both are clamped and rounded to 8 bits, converted to unrounded Y (rgb_to_y) and
// scored with `border` pixels cropped (use border = scale).
SrScore score_sr_rgb(const Tensor& sr, const Tensor& hr, int64_t border);

}  // namespace evit
