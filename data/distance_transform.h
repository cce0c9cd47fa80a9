// Exact Euclidean distance transform of binary masks (the values of OpenCV's
// distanceTransform(DIST_L2, DIST_MASK_PRECISE), which interactive-segmentation clickers use).
#pragma once
#include <cstdint>
#include <vector>

namespace evit::data {

// For each pixel of a row-major h×w mask: the squared Euclidean distance (in pixels²) to the
// nearest zero pixel, 0 on zero pixels. With `outside_is_zero`, the image is taken as surrounded
// by zero pixels (padding by one, as the RITM clicker does), so no distance exceeds the way out.
// Distances are exact integers (Felzenszwalb and Huttenlocher's lower envelope of parabolas, per
// column then per row). A mask with no zero pixel and no padding gets distances of -1.
std::vector<int64_t> squared_distance_transform(const std::vector<uint8_t>& mask, int64_t h, int64_t w,
                                                bool outside_is_zero);

}  // namespace evit::data
