// Convolution layers. Weights [out, in/groups, kH, kW] (Conv2d) and [in, out/groups, kH, kW]
// (ConvTranspose2d), as PyTorch lays them out, so reference checkpoints load unchanged.
#pragma once
#include "nn/module.h"
#include "ops/conv.h"

namespace evit::nn {

struct Conv2dOptions {
  int64_t in_channels, out_channels, kernel_size;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& o, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  const Conv2dOptions& options() const { return o_; }
  Tensor weight, bias;  // bias undefined when disabled

 private:
  Conv2dOptions o_;
};

struct ConvTranspose2dOptions {
  int64_t in_channels, out_channels, kernel_size;
  int64_t stride = 1, padding = 0, output_padding = 0, groups = 1, dilation = 1;
  bool bias = true;
};

class ConvTranspose2d : public Module {
 public:
  explicit ConvTranspose2d(const ConvTranspose2dOptions& o, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  const ConvTranspose2dOptions& options() const { return o_; }
  Tensor weight, bias;

 private:
  ConvTranspose2dOptions o_;
};

}  // namespace evit::nn
