// The evaluation transforms of the official protocols: the pixels each benchmark's reference
// evaluation feeds its model, reproduced on the 8-bit image before normalisation.
//
// - ADE20K: the short side becomes `crop` and the long side ceil(long·crop/short / 32)·32, with
//   OpenCV's bicubic (INTER_CUBIC) on the 8-bit image; the label keeps its size.
// - Cityscapes: a frame that is not crop x 2·crop is resized to it (OpenCV bicubic, 8 bits);
//   the label keeps its size. Real frames (1024x2048 at crop 1024) pass unchanged.
// - ImageNet: torchvision's Resize(ceil(size / crop_ratio), BICUBIC) on the PIL image (Pillow's
//   antialiased bicubic; the short side gets the size, the long side int(size·long/short)), then
//   CenterCrop(size) with offsets round((h - size) / 2) (Python's round: halves to even).
// Each transform edits Sample::input (f32 [3,H,W] in [0,1] holding 8-bit values) and draws nothing.
#pragma once
#include <cstdint>

#include "data/dataset.h"

namespace evit::data {

Transform ade20k_eval_resize(int64_t crop);
Transform cityscapes_eval_resize(int64_t crop);
Transform imagenet_eval_crop(int64_t size, double crop_ratio);

}  // namespace evit::data
