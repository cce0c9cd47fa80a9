// Parameters and MACs of a model on an input size, counted as the EfficientViT paper counts them (docs/models.md).
#pragma once
#include "zoo/models.h"

namespace evit::zoo {

struct ModelProfile {
  int64_t params = 0;
  int64_t macs = 0;  // per forward pass of the whole batch in `input`
};

// Runs one eval-mode forward pass (no grad) on zeros of shape `input` while counting. The
// model's train/eval mode is restored afterwards.
ModelProfile profile_model(Model& model, const Shape& input);

}  // namespace evit::zoo
