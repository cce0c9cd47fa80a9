// Evaluation metrics accumulated over a whole validation set.
//
// Segmentation (the official evaluation's counting, docs/training.md): for every pixel whose label is not the ignore index, count per class
// P_c (#pred == c), G_c (#label == c) and I_c (#pred == label == c). Counts are summed over the
// whole set (not averaged per image); U_c = P_c + G_c - I_c, IoU_c = I_c / U_c,
// mIoU = 100 * mean_c IoU_c. Predictions on ignored pixels are not counted.
//
// Classification: top-1 / top-5 accuracy of [N, C] scores against [N] integer targets.
#pragma once
#include <cstdint>
#include <vector>

#include "core/dist/communicator.h"
#include "core/tensor.h"

namespace evit::train {

class SegConfusion {
 public:
  // ignore_index may be any value outside [0, num_classes) (the reference uses -1, mmseg 255).
  explicit SegConfusion(int64_t num_classes, int64_t ignore_index = 255);

  // pred and label: integer tensors (i64, i32 or u8) of the same shape, e.g. [H, W] or [N, H, W].
  // A label outside [0, num_classes) that is not the ignore index, or a prediction outside
  // [0, num_classes) on a counted pixel, throws naming the value.
  void update(const Tensor& pred, const Tensor& label);
  // Adds another accumulator's counts (same class count and ignore index).
  void merge(const SegConfusion& other);
  // Adds up the counts of every rank of `comm` (each counted its share of the images): exact
  // integer sums, so every rank then holds the counts of the whole set.
  void sum_over(dist::Communicator& comm);
  void reset();

  int64_t num_classes() const { return num_classes_; }
  int64_t ignore_index() const { return ignore_index_; }
  const std::vector<int64_t>& intersection() const { return inter_; }  // I_c
  const std::vector<int64_t>& predicted() const { return pred_; }      // P_c
  const std::vector<int64_t>& ground_truth() const { return gt_; }     // G_c
  std::vector<int64_t> union_counts() const;                           // U_c = P_c + G_c - I_c
  int64_t counted_pixels() const;                                      // sum_c G_c

  // Per-class IoU in [0, 1]; NaN for a class that never occurs in labels or predictions (U_c = 0).
  std::vector<double> iou() const;
  // 100 * mean of the per-class IoU over all classes. A class with U_c = 0 has no IoU and is left
  // out of the mean (on the Cityscapes / ADE20K val sets every class occurs, so this is the
  // official mean over all classes); NaN when no pixel was counted.
  double miou() const;
  // 100 * sum_c I_c / sum_c G_c: the share of counted pixels predicted correctly.
  double pixel_accuracy() const;

 private:
  int64_t num_classes_, ignore_index_;
  std::vector<int64_t> inter_, pred_, gt_;
};

class TopKAccuracy {
 public:
  // scores: [N, C] floating (logits or probabilities); target: [N] integer in [0, C).
  // A sample is correct at k when its target ranks among the k best scores, ranking ties by
  // class index (a tied class with a smaller index ranks first). A row with a NaN score counts as
  // wrong. k is capped at C.
  void update(const Tensor& scores, const Tensor& target);
  void merge(const TopKAccuracy& other);
  void sum_over(dist::Communicator& comm);  // as SegConfusion::sum_over
  void reset() { n_ = correct1_ = correct5_ = 0; }

  int64_t count() const { return n_; }
  int64_t correct_top1() const { return correct1_; }
  int64_t correct_top5() const { return correct5_; }
  double top1() const;  // percent; NaN before any sample
  double top5() const;

 private:
  int64_t n_ = 0, correct1_ = 0, correct5_ = 0;
};

}  // namespace evit::train
