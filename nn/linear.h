// Linear layer: y = x W^T + b, W [out, in].
#pragma once
#include "nn/module.h"

namespace evit::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
};

}  // namespace evit::nn
