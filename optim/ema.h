// Exponential moving average of a model's state, as the EfficientViT recipes keep it (docs/training.md):
//
//   decay_t = decay * (1 - exp(-step / warmup_steps))      (decay_t = decay when warmup_steps = 0)
//   ema    -= (1 - decay_t) * (ema - model)
//
// over every floating entry of the model's state — parameters and persistent buffers, so BN
// running statistics are averaged too; integer entries (num_batches_tracked) are left out, as the
// reference does. `step` is the number of optimizer steps completed (1 after the first one): the
// reference updates after incrementing its global step. The shadow copy is a TensorMap keyed by
// the model's state names, so it saves and loads by name and loads into a model directly.
#pragma once
#include <cstdint>
#include <string>

#include "core/safetensors.h"
#include "nn/module.h"

namespace evit::optim {

struct EMAOptions {
  double decay = 0.9998;
  double warmup_steps = 2000.0;  // 0: no warm-up, decay_t = decay
};

class EMA {
 public:
  // The shadow starts as a copy of the model's floating state.
  EMA(const nn::Module& model, EMAOptions options = {});

  double decay_at(int64_t step) const;
  // Moves the shadow towards the model's current state. Throws naming any entry whose shape or
  // dtype changed, or that the model lost.
  void update(const nn::Module& model, int64_t step);

  const TensorMap& shadow() const { return shadow_; }
  // Copies the shadow into a model (in place; integer entries keep the model's values).
  void copy_to(nn::Module& model) const;

  TensorMap state_dict() const;  // the shadow (detached aliases)
  // Replaces the shadow: the keys must be exactly this EMA's keys with the same shapes.
  void load_state_dict(const TensorMap& state);
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  EMAOptions o_;
  TensorMap shadow_;
};

}  // namespace evit::optim
