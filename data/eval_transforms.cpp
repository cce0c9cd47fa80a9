#include "data/eval_transforms.h"

#include <cmath>

#include "core/error.h"
#include "data/image.h"
#include "data/resize_u8.h"
#include "data/transforms.h"
#include "ops/shape.h"

namespace evit::data {
namespace {

// The sample's image as the 8-bit picture it was decoded from (its values are k/255).
Image as_u8(const Sample& s) {
  EVIT_CHECK(s.input.dim() == 3 && s.input.size(0) == 3, "evaluation transform: expected a [3,H,W] image for '", s.id,
             "', got ", s.input.desc());
  return chw_float_to_image(s.input);
}

}  // namespace

Transform ade20k_eval_resize(int64_t crop) {
  EVIT_CHECK(crop >= 1, "ade20k_eval_resize: crop must be >= 1, got ", crop);
  return [crop](Sample& s, Generator&) {
    const Image img = as_u8(s);
    const auto [h, w] = ade20k_eval_size(img.height, img.width, crop);
    check_resize_target(s, h, w);
    if (h != img.height || w != img.width) s.input = image_to_chw_float(resize_bicubic_opencv(img, h, w));
  };
}

Transform cityscapes_eval_resize(int64_t crop) {
  EVIT_CHECK(crop >= 1, "cityscapes_eval_resize: crop must be >= 1, got ", crop);
  return [crop](Sample& s, Generator&) {
    if (s.input.size(1) == crop && s.input.size(2) == 2 * crop) return;
    s.input = image_to_chw_float(resize_bicubic_opencv(as_u8(s), crop, 2 * crop));
  };
}

Transform imagenet_eval_crop(int64_t size, double crop_ratio) {
  EVIT_CHECK(size >= 1 && crop_ratio > 0 && crop_ratio <= 1, "imagenet_eval_crop: expected size >= 1 and crop_ratio in (0, 1], got ",
             size, " and ", crop_ratio);
  const int64_t resize_to = static_cast<int64_t>(std::ceil(static_cast<double>(size) / crop_ratio));
  return [size, resize_to](Sample& s, Generator&) {
    const Image img = as_u8(s);
    const auto [h, w] = torchvision_resize_size(img.height, img.width, resize_to);
    check_resize_target(s, h, w);
    Tensor resized = image_to_chw_float(resize_bicubic_pil(img, h, w));
    EVIT_CHECK(h >= size && w >= size, "imagenet_eval_crop: '", s.id, "' resized to ", h, "x", w, " is smaller than the ",
               size, "x", size, " crop");
    const auto [top, left] = center_crop_offsets(h, w, size);
    s.input = slice(slice(resized, 1, top, top + size), 2, left, left + size).contiguous();
  };
}

}  // namespace evit::data
