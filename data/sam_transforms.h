// SAM's frames: how an image becomes the encoder input, how prompts and masks move between the
// original image and the model (EfficientViT-SAM's and Segment Anything's predictors).
//
// - The encoder input: the 8-bit RGB image resized so that its longest side is `encoder_size`
//   (512 for EfficientViT-SAM L0-L2, 1024 for XL0/XL1 and ViT-H) with Pillow's BILINEAR (what
//   torchvision's resize does to a PIL image), left alone when that side already has the size;
//   the new size is int(old·s + 0.5) with s = encoder_size / longest side in double precision.
//   Then /255, normalised with mean (123.675, 116.28, 103.53)/255 and std (58.395, 57.12,
//   57.375)/255, and zero-padded right and bottom to encoder_size².
// - Prompts live in the 1024-longest-side frame for every model: a point (x, y) of the original
//   image becomes (x·W'/W, y·H'/H) with (H', W') the image's size in that frame (the same
//   rounding rule with 1024).
// - Masks: the decoder's 256² logits are resized (bilinear, align_corners false) to 1024², cropped
//   to H'×W', and resized to the original size; a pixel is in the mask when its logit is > 0.
#pragma once
#include <array>
#include <cstdint>
#include <utility>

#include "core/tensor.h"
#include "data/image.h"

namespace evit::data {

constexpr int64_t kSamPromptFrame = 1024;

// {height, width} when the longest side becomes `long_side`.
std::pair<int64_t, int64_t> sam_resize_size(int64_t h, int64_t w, int64_t long_side);

struct SamImage {
  Tensor input;                        // f32 [3, S, S], normalised and padded
  int64_t original_h = 0, original_w = 0;
  int64_t frame_h = 0, frame_w = 0;    // the image's size in the 1024 prompt frame
};

// The encoder input of an image (any channel count and depth: gray is repeated, alpha dropped,
// 16-bit rounded to 8 bits).
SamImage sam_preprocess(const Image& image, int64_t encoder_size);

// A point of the original image in the prompt frame.
std::array<float, 2> sam_to_prompt_frame(const SamImage& im, double x, double y);

// Mask logits [B, K, 256, 256] -> [B, K, original_h, original_w].
Tensor sam_postprocess_masks(const Tensor& low_res, const SamImage& im);

}  // namespace evit::data
