// Stage 1 of EfficientViT-SAM training (task "sam_distill", docs/sam.md): the student image
// encoder learns to reproduce the SAM ViT teacher's 256×64×64 image embeddings with an L2 loss.
//
// Data: ROOT/train/ and ROOT/val/ hold images (PNG or JPEG; SA-1B's sa_N.jpg, COCO images, ...);
// the teacher embedding of each is read from the cache (data.embeddings, written by `evit embed`
// or, when data.teacher_weights is given, by the trainer before it starts). A sample's input is
// the image prepared for the student at its input side (data.crop: resize of the longest side,
// SAM normalisation, zero padding to a square); its target is the teacher embedding. The neck of
// every EfficientViT-SAM encoder resamples to 64×64, so a 512-input student matches a
// 1024-input teacher.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "train/evaluator.h"
#include "train/run_config.h"
#include "zoo/models.h"

namespace evit::train {

class SamDistillDataset : public data::Dataset {
 public:
  // Every image of `image_dir` must have its embedding in `cache_dir`; the missing ones are named.
  SamDistillDataset(const std::string& image_dir, const std::string& cache_dir, int64_t input_size);
  int64_t size() const override { return static_cast<int64_t>(images_.size()); }
  data::Sample load(int64_t index) const override;
  std::string describe() const override;
  const std::string& image_dir() const { return image_dir_; }

 private:
  std::string image_dir_;
  std::vector<std::string> images_;
  std::string cache_dir_;
  int64_t input_size_;
};

// The folder of one split (ROOT/train or ROOT/val).
std::string sam_distill_split(const DataConfig& d, const std::string& split);

// Embeds the images of both splits that the cache lacks, with the configured teacher (only when
// data.teacher_weights is set). Returns how many were written.
int64_t fill_embedding_cache(const RunConfig& cfg);

// Evaluation: "val/embed_mse" (the mean over images of the embedding MSE) and
// "val/agreement_mIoU" (percent): for each image, a 3×3 grid of single foreground points in the
// 1024 prompt frame is decoded from the student's and from the teacher's embedding by the model's
// own prompt encoder and mask decoder (multimask, the mask with the highest predicted IoU, 256²
// logits > 0), and the two masks' IoUs are averaged (two empty masks count as agreeing fully).
// When the validation folder holds SA-1B annotations (sa_N.json), also "val/box_mIoU": the
// student's masks for their boxes through the model's prompt encoder and mask decoder — SAM-ViT-H's,
// as loaded for distillation — on the first `box_masks_per_image` annotations of each (0: all).
// With `job`, rank r scores the images i ≡ r (mod W) and every rank gets the one-process values
// bit for bit.
Metrics sam_distill_metrics(zoo::Model& model, const data::Dataset& val, Device device,
                            int64_t box_masks_per_image = 0, dist::Communicator* job = nullptr);

}  // namespace evit::train
