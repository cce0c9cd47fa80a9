#include "nn/linear.h"

#include "nn/init.h"
#include "nn/macs.h"
#include "ops/linalg.h"

namespace evit::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool use_bias, Generator* gen)
    : Module("Linear") {
  Tensor w = empty({out_features, in_features});
  init::default_weight_(w, gen);
  weight = register_parameter("weight", w);
  if (use_bias) {
    Tensor b = empty({out_features});
    init::default_bias_(b, in_features, gen);
    bias = register_parameter("bias", b);
  }
}

Tensor Linear::forward(const Tensor& x) {
  Tensor y = linear(x, weight, bias);
  MacCounter::add(y.numel() * weight.size(1));
  return y;
}

}  // namespace evit::nn
