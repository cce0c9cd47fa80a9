// The mask loss of EfficientViT-SAM's stage-2 training (task "sam_finetune", docs/sam.md), as the
// released training code computes it:
//  - each predicted mask's 256² logits are upsampled bilinearly (align_corners false) to the input
//    size, the frame of the ground-truth masks;
//  - PointRend-style points are drawn per mask: 3·P uniform candidates, the 75 % most uncertain
//    (largest −|logit|) kept, 25 % fresh uniform points added (P = 112² in training);
//  - per mask, 20 × mean BCE-with-logits + dice (1 − (2Σpt + 1)/(Σp + Σt + 1), p = sigmoid) on the
//    logits and targets sampled bilinearly at those points;
//  - of the K masks predicted per prompt, only the lowest loss counts; the batch loss is the
//    mean over prompts.
// The paper calls the first term focal; the released code uses plain BCE, and so does evit.
#pragma once
#include "core/generator.h"
#include "core/tensor.h"

namespace evit::train {

struct SamMaskLossOptions {
  int64_t points = 112 * 112;     // P
  double oversample = 3.0;        // candidates per point
  double importance = 0.75;       // share of P taken from the most uncertain candidates
  double bce_weight = 20.0;
};

// Points [M, P, 2] in [0, 1]² for logits [M, 1, H, W] (no gradient flows through the choice).
Tensor sample_uncertain_points(const Tensor& logits, const SamMaskLossOptions& o, Generator& g);

// Per-mask loss [M] of logits [M, 1, H, W] against targets [M, 1, H, W] (values in [0, 1]) at
// points [M, P, 2]: bce_weight × mean BCE + dice. Differentiable in the logits.
Tensor sam_point_loss(const Tensor& logits, const Tensor& targets, const Tensor& coords, double bce_weight = 20.0);

// The stage-2 loss of one batch: low-res logits [M, K, h, w] of K masks per prompt, targets
// [M, S, S] in the input frame. Each of the K masks is upsampled to S×S and gets its own points;
// returns the mean over prompts of the lowest of the K losses (a scalar).
Tensor sam_finetune_loss(const Tensor& low_res_logits, const Tensor& targets, const SamMaskLossOptions& o,
                         Generator& g);

}  // namespace evit::train
