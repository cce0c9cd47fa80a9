// Dropout modules: active in training mode only, masks from the given (or default) generator.
#pragma once
#include "core/generator.h"
#include "nn/module.h"

namespace evit::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  double p;

 private:
  Generator* gen_;
};

// Zeroes whole channels of [N, C, H, W].
class Dropout2d : public Module {
 public:
  explicit Dropout2d(double p, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  double p;

 private:
  Generator* gen_;
};

// Stochastic depth: drops a whole sample's residual branch, scaling survivors by 1/(1-p).
class DropPath : public Module {
 public:
  explicit DropPath(double p, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  double p;

 private:
  Generator* gen_;
};

}  // namespace evit::nn
