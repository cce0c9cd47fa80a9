// COCO run-length masks: the encoding every COCO, LVIS and SA-1B annotation file and the COCO
// results format use, with the exact semantics of the reference implementation (pycocotools'
// mask API), so that ground-truth masks, areas and boxes are byte-equal to what the official
// evaluation scripts see.
//
// An RLE mask of h×w pixels is a list of run lengths over the pixels in column-major order
// (x outer, y inner), alternating background and foreground and starting with background (the
// first run may be empty). The compressed string form stores each run (from the fourth on, as
// the difference to the run two before) in 5-bit groups, one printable character per group.
//
// Masks handed to and returned by these functions as pixels are row-major h×w bytes (evit's
// image layout), nonzero = foreground; the column-major order is internal.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace evit::data {

struct Rle {
  int64_t h = 0, w = 0;
  std::vector<uint32_t> counts;  // run lengths summing to h·w
};

// Encodes a row-major h×w mask (nonzero = foreground).
Rle rle_encode(const uint8_t* mask, int64_t h, int64_t w);
// Decodes to a row-major h×w mask of 0/1 bytes.
std::vector<uint8_t> rle_decode(const Rle& rle);

// The compressed counts string (COCO's "counts" when it is a string).
std::string rle_to_string(const Rle& rle);
// Parses a compressed counts string for an h×w mask. `what` names the mask in errors (file and
// annotation id): bad characters, runs that are negative or overflow, or counts that do not
// sum to h·w.
Rle rle_from_string(std::string_view counts, int64_t h, int64_t w, const std::string& what);
// An uncompressed RLE (COCO's "counts" as a list, used by crowd annotations); the counts must be
// non-negative, fit 32 bits and sum to h·w.
Rle rle_from_counts(const std::vector<int64_t>& counts, int64_t h, int64_t w, const std::string& what);

// Rasterises one polygon (x0, y0, x1, y1, ...) in pixel coordinates the way pycocotools does:
// the boundary is walked on a 5× upsampled grid, and a pixel is inside when its centre is. Points
// may lie outside the image (the mask is clipped). Coordinates must be finite and within ±1e6,
// and the length must be even.
Rle rle_from_polygon(const std::vector<double>& xy, int64_t h, int64_t w, const std::string& what);
// The mask of a box [x, y, width, height] (rasterised as its polygon, as pycocotools does).
Rle rle_from_box(const std::array<double, 4>& xywh, int64_t h, int64_t w, const std::string& what);

// Union (or intersection) of masks of one size; an empty list gives a 0×0 mask.
Rle rle_merge(const std::vector<Rle>& parts, bool intersect, const std::string& what);
// Foreground pixels.
int64_t rle_area(const Rle& rle);
// The tight box [x, y, width, height] of the foreground; all zeros for an empty mask.
std::array<double, 4> rle_bbox(const Rle& rle);

}  // namespace evit::data
