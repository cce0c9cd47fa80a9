// 8-bit image resizes that reproduce, bit for bit, the libraries the official evaluation scripts
// use, so the same pixels reach the model (docs/training.md, "Evaluation").
//
// resize_bicubic_opencv: cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC) on uint8.
//   Keys' cubic with a = -0.75; source coordinate (d + 0.5)·in/out − 0.5; 4 taps with replicated
//   borders; no antialiasing when shrinking. OpenCV's fixed-point path: weights rounded to
//   multiples of 1/2048 (computed in float), a horizontal pass into integers, a vertical pass,
//   then (sum + 2^21) >> 22 saturated to 0..255.
// resize_bicubic_pil: Pillow's Image.resize((w, h), Image.BICUBIC) (ImagingResample). Cubic with
//   a = -0.5 whose support widens by the shrink factor (antialiasing); per output pixel the taps
//   within the support, weights normalised to sum 1 and rounded to multiples of 2^-22; a
//   horizontal pass rounded and clipped to 8 bits, then a vertical pass the same way.
// resize_bilinear_pil: Pillow's Image.resize((w, h), Image.BILINEAR), the same machinery with the
//   triangle kernel (support 1, widened by the shrink factor) — what torchvision's resize does to
//   a PIL image by default, and so SAM's preprocessing.
//
// Both take and return 8-bit images of 1 to 4 interleaved channels.
#pragma once
#include <cstdint>
#include <utility>

#include "data/image.h"

namespace evit::data {

Image resize_bicubic_opencv(const Image& src, int64_t out_h, int64_t out_w);
Image resize_bicubic_pil(const Image& src, int64_t out_h, int64_t out_w);
Image resize_bilinear_pil(const Image& src, int64_t out_h, int64_t out_w);

// {height, width} of an ADE20K evaluation input (the official eval_seg_model.py): the short side
// becomes `crop`, the long side ceil(long / short · crop / 32) · 32 (that order of operations, in
// double precision); a square image counts as tall.
std::pair<int64_t, int64_t> ade20k_eval_size(int64_t h, int64_t w, int64_t crop);
// {height, width} after torchvision's Resize(size) with an int size: the short side becomes
// `size`, the long side int(size · long / short) (truncated).
std::pair<int64_t, int64_t> torchvision_resize_size(int64_t h, int64_t w, int64_t size);
// {top, left} of torchvision's CenterCrop(size): int(round((h − size) / 2)), Python's round
// (halves go to the even integer).
std::pair<int64_t, int64_t> center_crop_offsets(int64_t h, int64_t w, int64_t size);

}  // namespace evit::data
