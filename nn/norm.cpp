#include "nn/norm.h"

#include "autograd/grad_mode.h"
#include "ops/norm.h"
#include "ops/pointwise.h"

namespace evit::nn {

BatchNorm2d::BatchNorm2d(int64_t c, double eps_, double momentum_)
    : Module("BatchNorm2d"), eps(eps_), momentum(momentum_) {
  weight = register_parameter("weight", ones({c}));
  bias = register_parameter("bias", zeros({c}));
  running_mean = register_buffer("running_mean", zeros({c}));
  running_var = register_buffer("running_var", ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::i64));
}

Tensor BatchNorm2d::forward(const Tensor& x) { return forward_act(x, ActivationKind::none); }

Tensor BatchNorm2d::forward_act(const Tensor& x, ActivationKind act) {
  if (is_training() && batch_statistics) {
    // Momentum 1 makes the "running" update store exactly this batch's statistics.
    Tensor mean = zeros_like(running_mean), var = ones_like(running_var);
    Tensor y = batch_norm_act(x, weight, bias, mean, var, true, 1.0, eps, act);
    batch_statistics->push_back(mean);
    batch_statistics->push_back(var);
    return y;
  }
  if (is_training()) {
    NoGradGuard g;
    add_(num_batches_tracked, 1.0);
  }
  return batch_norm_act(x, weight, bias, running_mean, running_var, is_training(), momentum, eps, act);
}

LayerNorm::LayerNorm(int64_t features, double eps_) : Module("LayerNorm"), eps(eps_) {
  weight = register_parameter("weight", ones({features}));
  bias = register_parameter("bias", zeros({features}));
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

LayerNorm2d::LayerNorm2d(int64_t c, double eps_) : Module("LayerNorm2d"), eps(eps_) {
  weight = register_parameter("weight", ones({c}));
  bias = register_parameter("bias", zeros({c}));
}

Tensor LayerNorm2d::forward(const Tensor& x) { return layer_norm2d(x, weight, bias, eps); }

}  // namespace evit::nn
