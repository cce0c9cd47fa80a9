// Small SA-1B-layout data for the SAM tests: an image file with its annotation file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace evit::test {

// Writes DIR/sa_<id>.jpg (PNG bytes: evit reads images by their content) and DIR/sa_<id>.json
// with one annotation per mask (row-major h×w, nonzero = inside): its RLE, box, area and a point;
// annotation ids are 100·id + k.
void write_sa1b_image(const std::string& dir, int id, const Image& image, const std::vector<std::vector<uint8_t>>& masks);

// A 48×64 scene with three shapes — a rectangle, a disc and a bar 3 rows high spanning x 10..63 —
// shifted a little by `id`, written as sa_<id> in DIR.
void write_sa1b_scene(const std::string& dir, int id);

}  // namespace evit::test
