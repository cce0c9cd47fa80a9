// Loss functions, PyTorch semantics. Results are 0-D for Reduction::mean / sum and have the
// per-element shape for Reduction::none. f32/f64; sums accumulate in f64 in a fixed order, so
// results are identical for any thread count. All are differentiable in the input (logits) and,
// where PyTorch is, in floating targets (and pos_weight).
#pragma once
#include "core/tensor.h"

namespace evit {

enum class Reduction { none, mean, sum };
const char* reduction_name(Reduction r);

// Cross entropy on logits (log_softmax over dim 1, fused with the loss; the backward is the
// fused softmax - target form).
//   logits: [N, C] or [N, C, d1, ...] (e.g. [N, C, H, W] for segmentation)
//   target: i64 class indices [N] or [N, d1, ...] -- or floating class probabilities with the
//           logits' shape (soft labels).
//   weight: optional [C] class weights (undefined Tensor() for none).
//   ignore_index: index targets equal to it contribute nothing (class-index targets only).
//   label_smoothing in [0, 1]: the target mixes with the uniform distribution,
//     loss = (1 - eps) * nll + eps / C * sum_c w_c * (-log p_c), exactly as PyTorch. With class
//     indices, mean divides both parts by the sum of the weights of the non-ignored targets
//     (their count without weights); ignored positions contribute 0. Soft labels: mean divides
//     by the number of positions (N * d1 * ...).
// Errors name the offending target value and its position, and both shapes on mismatch.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight = Tensor(),
                     int64_t ignore_index = -100, Reduction reduction = Reduction::mean,
                     double label_smoothing = 0.0);

// Stable BCE on logits: loss = (1 - t) x + (1 + (pw - 1) t) (log(1 + exp(-|x|)) + max(-x, 0)).
// target has x's shape; pos_weight (optional) broadcasts to x's shape (usually [C], the last
// dim). Differentiable in x, target and pos_weight.
Tensor binary_cross_entropy_with_logits(const Tensor& x, const Tensor& target,
                                        const Tensor& pos_weight = Tensor(),
                                        Reduction reduction = Reduction::mean);

// Regression losses; x and target must have the same shape. Differentiable in both.
Tensor mse_loss(const Tensor& x, const Tensor& target, Reduction reduction = Reduction::mean);
Tensor l1_loss(const Tensor& x, const Tensor& target, Reduction reduction = Reduction::mean);
// 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (beta = 0 gives l1). beta >= 0.
Tensor smooth_l1_loss(const Tensor& x, const Tensor& target, Reduction reduction = Reduction::mean,
                      double beta = 1.0);

}  // namespace evit
