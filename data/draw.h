// Prompt markers drawn on 8-bit RGB images (SAM overlays): box outlines and filled discs, clipped
// to the image.
#pragma once
#include <cstdint>

#include "data/colorize.h"
#include "data/image.h"

namespace evit::data {

// The outline of the box [x0, x1] × [y0, y1] (pixels), `thickness` pixels wide, inside the box.
void draw_box(Image& image, double x0, double y0, double x1, double y1, const Colour& colour, int64_t thickness = 2);
// A disc of `radius` pixels centred on (x, y), with a one-pixel white ring so it shows on any mask.
void draw_point(Image& image, double x, double y, const Colour& colour, int64_t radius = 5);

}  // namespace evit::data
