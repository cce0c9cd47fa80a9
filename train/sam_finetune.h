// Stage 2 of EfficientViT-SAM training (task "sam_finetune", docs/sam.md): the whole model —
// distilled encoder, SAM-ViT-H prompt encoder and mask decoder — is trained end to end on
// promptable segmentation, as the released training code does:
//  - per image, up to `masks_per_image` annotations drawn without replacement (all of them
//    repeated, plus a random remainder, when there are fewer), a random horizontal flip (p 0.5);
//    image and masks resized so the longest side is the input side (the masks bilinearly with
//    antialiasing, leaving soft edges) and zero-padded to a square;
//  - per image and step, either every mask's box (prob. 0.5) or n = 1..10 random foreground
//    points of each mask (all positive, n shared by the image's masks; boxes when a mask has fewer
//    than n pixels), in the 1024 prompt frame;
//  - three masks (multimask output, prob. `multimask_prob`) or one, and the loss of
//    train/sam_mask_loss.h (the lowest of the masks per prompt counts).
//
// Data: SA-1B folders ROOT/train and ROOT/val (sa_N.jpg with sa_N.json). Evaluation: box-prompt
// mIoU on the validation annotations (train/sam_eval.h's protocol, data.val_masks per image).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/instances.h"
#include "train/evaluator.h"
#include "train/run_config.h"
#include "train/sam_mask_loss.h"
#include "zoo/sam.h"

namespace evit::train {

class SamFinetuneDataset : public data::Dataset {
 public:
  // An SA-1B folder (its first `limit` images; 0: all); an image without annotations is an error
  // naming its file when it is drawn.
  SamFinetuneDataset(const std::string& dir, int64_t input_size, int64_t masks_per_image, bool flip,
                     int64_t limit = 0);
  int64_t size() const override { return static_cast<int64_t>(entries_.size()); }
  // The image without masks (input only); get() draws the masks.
  data::Sample load(int64_t index) const override;
  // input f32 [3, S, S]; target f32 [M, S, S] (soft masks in the input frame); aux f32 [M, 4]
  // the masks' boxes (x0, y0, x1, y1) in the 1024 prompt frame.
  data::Sample get(int64_t index, Generator& rng) const override;
  std::string describe() const override;
  const std::vector<data::Sa1bEntry>& entries() const { return entries_; }

 private:
  std::vector<data::Sa1bEntry> entries_;
  int64_t input_size_, masks_per_image_;
  bool flip_;
};

struct SamFinetuneOptions {
  double box_prob = 0.5;        // box prompts, else points
  int64_t max_points = 10;      // points per mask: uniform in 1..max_points
  double multimask_prob = 0.5;  // three masks, else one
  SamMaskLossOptions loss;
};

// The loss of one batch (input [B, 3, S, S], target [B, M, S, S], aux [B, M, 4]); the prompt
// choices draw from `g`.
Tensor sam_finetune_batch_loss(zoo::EfficientViTSam& model, const Tensor& input, const Tensor& target,
                               const Tensor& boxes, const SamFinetuneOptions& o, Generator& g);

// Box-prompt mIoU (percent) of the model on SA-1B annotations, the first `masks_per_image` of each
// image (0: all); "val/box_mIoU". With `job`, sharded over its ranks, the same value on each.
Metrics sam_box_metrics(zoo::EfficientViTSam& model, const std::vector<data::Sa1bEntry>& entries,
                        int64_t masks_per_image, dist::Communicator* job = nullptr);

}  // namespace evit::train
