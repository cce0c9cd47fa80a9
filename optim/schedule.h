// Per-step learning-rate schedule of the EfficientViT recipe (docs/training.md): linear warmup, then
// cosine decay.
//
//   step <  W:  lr(step) = warmup_lr + (base_lr - warmup_lr) * (step + 1) / W
//   step >= W:  t = step - W,  lr(step) = min_lr + 0.5 * (base_lr - min_lr) * (1 + cos(pi * t / T))
//
// `step` counts optimizer steps from 0 (the lr used by the first update is lr(0)). The recipe's
// recipe is warmup_lr = 0 and min_lr = 0 (warmup "from 0", cosine "to 0"); min_lr is a floor
// added for other recipes. Past the end (t >= T) the lr stays at min_lr — the reference scheduler
// would continue the cosine upwards there, which no recipe uses.
#pragma once
#include <cstdint>

#include "core/safetensors.h"

namespace evit::optim {

struct WarmupCosineOptions {
  double base_lr = 0.0;
  int64_t warmup_steps = 0;  // W >= 0
  int64_t decay_steps = 1;   // T >= 1: length of the cosine phase (the recipe's 300 epochs in steps)
  double warmup_lr = 0.0;
  double min_lr = 0.0;
};

class WarmupCosine {
 public:
  // Throws for negative lr or warmup, T < 1, or min_lr > base_lr.
  explicit WarmupCosine(WarmupCosineOptions o);

  double lr_at(int64_t step) const;
  double lr() const { return lr_at(step_); }  // lr of the next optimizer step
  void step() { ++step_; }                    // call after each optimizer step
  int64_t current_step() const { return step_; }
  const WarmupCosineOptions& options() const { return o_; }

  // "step" (i64) plus the options ("base_lr", "warmup_lr", "min_lr" f64; "warmup_steps",
  // "decay_steps" i64) so that a resumed run can tell it was given a different schedule.
  TensorMap state_dict() const;
  // Restores the step. With check_options, a saved option that differs from this schedule's
  // throws naming it (resuming with a changed schedule is then a deliberate choice).
  void load_state_dict(const TensorMap& state, bool check_options = true);

 private:
  WarmupCosineOptions o_;
  int64_t step_ = 0;
};

}  // namespace evit::optim
