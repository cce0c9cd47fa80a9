// Normalisation layers with PyTorch's parameter and buffer names.
#pragma once
#include <vector>
#include "nn/module.h"
#include "ops/norm.h"

namespace evit::nn {

// weight, bias, running_mean, running_var, num_batches_tracked (i64 scalar). Training mode
// normalises with batch statistics and updates the running ones (momentum, unbiased variance);
// eval mode uses the running statistics.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x) override;
  // act(forward(x)) through batch_norm_act: one pass less each way on the CPU (ops/norm.h).
  Tensor forward_act(const Tensor& x, ActivationKind act);
  double eps, momentum;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  // When set (data-parallel steps split into micro-batches), a training forward appends its batch
  // mean and unbiased variance here and leaves running_mean, running_var and num_batches_tracked
  // alone: the trainer averages the statistics of the step's micro-batches over all ranks and
  // updates the running ones once per step (train/data_parallel.h).
  std::vector<Tensor>* batch_statistics = nullptr;
};

// LayerNorm over the last dim (features), affine.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t features, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  double eps;
  Tensor weight, bias;
};

// Per-pixel LayerNorm over the channels of [N, C, H, W], affine.
class LayerNorm2d : public Module {
 public:
  explicit LayerNorm2d(int64_t channels, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  double eps;
  Tensor weight, bias;
};

}  // namespace evit::nn
