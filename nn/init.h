// Parameter initialisation, from evit's seeded generators (default_generator() when none given).
#pragma once
#include "core/generator.h"
#include "core/tensor.h"

namespace evit::nn::init {

// fan_in of a weight as PyTorch computes it: size(1) * receptive field (dims 2..).
int64_t fan_in(const Tensor& w);
// PyTorch's default for Conv/Linear weights: kaiming_uniform(a = sqrt(5)), i.e. U(-b, b) with
// b = 1 / sqrt(fan_in).
void default_weight_(Tensor& w, Generator* gen = nullptr);
// PyTorch's default for Conv/Linear biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of the weight.
void default_bias_(Tensor& b, int64_t fan_in, Generator* gen = nullptr);
void uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
void normal_(Tensor& t, double mean, double std, Generator* gen = nullptr);
// Normal(mean, std) truncated to [a, b] by redrawing out-of-range values (as timm's trunc_normal_
// bounds them; the distribution is the same).
void trunc_normal_(Tensor& t, double mean, double std, double a, double b, Generator* gen = nullptr);
void constant_(Tensor& t, double value);

}  // namespace evit::nn::init
