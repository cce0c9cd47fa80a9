// Promptable segmentation with an EfficientViT-SAM model: the image is encoded once, then any
// number of prompt sets (points and/or a box, in the original image's pixels) are decoded into
// masks at the original resolution, batched over prompt sets of equal length (data/sam_transforms.h
// has the frames and resizing rules).
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "data/image.h"
#include "data/sam_transforms.h"
#include "zoo/sam.h"

namespace evit::train {

struct SamPrompt {
  std::vector<zoo::SamPoint> points;        // x, y in original pixels; label 1 foreground, 0 background
  std::optional<std::array<float, 4>> box;  // x0, y0, x1, y1 in original pixels
};

struct SamPrediction {
  Tensor iou;            // f32 [K], the predicted IoU of each mask
  Tensor low_res;        // f32 [K, 256, 256], the decoder's logits
  data::SamImage frame;  // the image's sizes (no pixels)
  // Index of the mask with the highest predicted IoU.
  int64_t best() const;
  // Logits at the original size, f32 [K, H, W] or, for one mask, [H, W]; the mask is logits > 0.
  // Computed on demand (each mask's 1024² intermediate is 4 MiB and most callers keep one mask).
  Tensor logits() const;
  Tensor logits(int64_t k) const;
  // The mask k as 0/1 bytes, row-major H×W.
  std::vector<uint8_t> mask(int64_t k) const;
};

class SamPredictor {
 public:
  explicit SamPredictor(std::shared_ptr<zoo::EfficientViTSam> model);
  // Encodes the image (any channel count; see data::sam_preprocess).
  void set_image(const Image& image);
  // Uses an embedding computed elsewhere ([1, 256, 64, 64]) for an image of the given size.
  void set_embedding(const Tensor& embedding, int64_t original_h, int64_t original_w);
  const Tensor& embedding() const { return embedding_; }
  const data::SamImage& image() const { return image_; }

  // K = 3 masks with multimask, else 1. Each prompt set needs a point or a box.
  SamPrediction predict(const SamPrompt& prompt, bool multimask);
  std::vector<SamPrediction> predict_batch(const std::vector<SamPrompt>& prompts, bool multimask);

 private:
  std::shared_ptr<zoo::EfficientViTSam> model_;
  data::SamImage image_;
  Tensor embedding_;
};

}  // namespace evit::train
