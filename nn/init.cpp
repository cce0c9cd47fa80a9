#include "nn/init.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/pointwise.h"

namespace evit::nn::init {

int64_t fan_in(const Tensor& w) {
  EVIT_CHECK(w.dim() >= 2, "init: fan_in needs a weight with at least 2 dims, got ", w.desc());
  int64_t f = w.size(1);
  for (int64_t d = 2; d < w.dim(); ++d) f *= w.size(d);
  return f;
}

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  NoGradGuard g;
  copy_(t, uniform(t.sizes(), low, high, {t.dtype()}, gen));
}

void normal_(Tensor& t, double mean, double std, Generator* gen) {
  NoGradGuard g;
  copy_(t, add(mul(randn(t.sizes(), {t.dtype()}, gen), std), mean));
}

void trunc_normal_(Tensor& t, double mean, double std, double a, double b, Generator* gen) {
  NoGradGuard g;
  Generator& rng = gen ? *gen : default_generator();
  Tensor draw = randn(t.sizes(), {DType::f64}, &rng);
  std::vector<double> v = draw.to_vector<double>();
  for (double& x : v) {
    double y = mean + std * x;
    // Redraw until inside [a, b]; a fixed number of draws per element keeps this reproducible.
    while (y < a || y > b) y = mean + std * randn({1}, {DType::f64}, &rng).item<double>();
    x = y;
  }
  copy_(t, from_vector<double>(v, t.sizes()).to(t.dtype()));
}

void constant_(Tensor& t, double value) {
  NoGradGuard g;
  fill_(t, value);
}

void default_weight_(Tensor& w, Generator* gen) {
  double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(w)));
  uniform_(w, -bound, bound, gen);
}

void default_bias_(Tensor& b, int64_t fan_in, Generator* gen) {
  double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  uniform_(b, -bound, bound, gen);
}

}  // namespace evit::nn::init
