#include "data/sam_transforms.h"

#include <algorithm>

#include "core/error.h"
#include "data/resize_u8.h"
#include "ops/ops.h"
#include "ops/resize.h"

namespace evit::data {
namespace {

// 8-bit RGB samples of any decoded image.
Image to_rgb8(const Image& image) {
  const Tensor hwc = image_to_hwc_u8(image);  // 16-bit rounded to 8
  const uint8_t* p = hwc.data_ptr<uint8_t>();
  Image rgb(image.height, image.width, 3);
  const int64_t c = image.channels;
  for (int64_t i = 0; i < image.height * image.width; ++i)
    for (int64_t k = 0; k < 3; ++k) rgb.data[i * 3 + k] = p[i * c + (c >= 3 ? k : 0)];
  return rgb;
}

}  // namespace

std::pair<int64_t, int64_t> sam_resize_size(int64_t h, int64_t w, int64_t long_side) {
  EVIT_CHECK(h >= 1 && w >= 1 && long_side >= 1, "sam_resize_size: bad sizes ", h, "x", w, ", long side ", long_side);
  const double scale = static_cast<double>(long_side) * 1.0 / static_cast<double>(std::max(h, w));
  return {static_cast<int64_t>(static_cast<double>(h) * scale + 0.5),
          static_cast<int64_t>(static_cast<double>(w) * scale + 0.5)};
}

SamImage sam_preprocess(const Image& image, int64_t encoder_size) {
  EVIT_CHECK(image.height >= 1 && image.width >= 1, "sam_preprocess: empty image");
  SamImage out;
  out.original_h = image.height, out.original_w = image.width;
  std::tie(out.frame_h, out.frame_w) = sam_resize_size(image.height, image.width, kSamPromptFrame);
  Image rgb = to_rgb8(image);
  if (std::max(image.height, image.width) != encoder_size) {
    const auto [h, w] = sam_resize_size(image.height, image.width, encoder_size);
    EVIT_CHECK(h >= 1 && w >= 1, "sam_preprocess: a ", image.height, "x", image.width,
               " image is too thin to resize to longest side ", encoder_size);
    rgb = resize_bilinear_pil(rgb, h, w);
  }
  // torchvision's ToTensor and Normalize in f32: (x / 255 - mean / 255) / (std / 255).
  static constexpr double kMean[3] = {123.675, 116.28, 103.53}, kStd[3] = {58.395, 57.12, 57.375};
  out.input = zeros({3, encoder_size, encoder_size});
  float* dst = out.input.data_ptr<float>();
  for (int64_t c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(kMean[c] / 255), std = static_cast<float>(kStd[c] / 255);
    for (int64_t y = 0; y < rgb.height; ++y)
      for (int64_t x = 0; x < rgb.width; ++x)
        dst[(c * encoder_size + y) * encoder_size + x] =
            (static_cast<float>(rgb.data[(y * rgb.width + x) * 3 + c]) / 255.0f - mean) / std;
  }
  return out;
}

std::array<float, 2> sam_to_prompt_frame(const SamImage& im, double x, double y) {
  return {static_cast<float>(x * (static_cast<double>(im.frame_w) / static_cast<double>(im.original_w))),
          static_cast<float>(y * (static_cast<double>(im.frame_h) / static_cast<double>(im.original_h)))};
}

Tensor sam_postprocess_masks(const Tensor& low_res, const SamImage& im) {
  EVIT_CHECK(low_res.dim() == 4, "sam_postprocess_masks: expected mask logits [B, K, h, w], got ", low_res.desc());
  Tensor up = interpolate(low_res, {kSamPromptFrame, kSamPromptFrame}, {}, InterpolateMode::bilinear, false);
  up = slice(slice(up, 2, 0, im.frame_h), 3, 0, im.frame_w).contiguous();
  return interpolate(up, {im.original_h, im.original_w}, {}, InterpolateMode::bilinear, false);
}

}  // namespace evit::data
