// Colour renderings of segmentation labels and image strips, for demos and reports.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "data/image.h"

namespace evit::data {

using Colour = std::array<uint8_t, 3>;

// The colours of classes 0..num_classes-1. 19 classes: the standard Cityscapes trainId palette
// (road (128,64,128), sidewalk (244,35,232), ..., bicycle (119,11,32)). Any other count: a
// deterministic palette that spreads the bits of (class + 1) over the high bits of R, G and B, so
// neighbouring ids get clearly different colours and no class is black (black marks ignored pixels).
std::vector<Colour> palette(int64_t num_classes);

// labels: i64 [H,W] with values in [0, num_classes), or 255 / negative for ignored pixels (black).
// Returns an 8-bit RGB image. Other values are an error naming the value and its position.
Image colorize(const Tensor& labels, int64_t num_classes = 19);

// image: float [3,H,W] in [0,1] (values outside are clamped); labels as for colorize(), same H,W.
// Each labelled pixel becomes (1 - alpha) * image + alpha * colour; ignored pixels keep the image.
Image overlay(const Tensor& image, const Tensor& labels, double alpha = 0.5, int64_t num_classes = 19);

// Images of the same height (8-bit; gray is repeated to RGB, alpha dropped) placed left to right
// as one RGB image, e.g. LR-upscaled | SR | HR for super-resolution comparisons.
Image side_by_side(const std::vector<Image>& images);

}  // namespace evit::data
