// BatchNorm folding for deployment: folded models compute the eval-mode outputs of the originals.
#include <cmath>

#include "autograd/grad_mode.h"
#include "core/generator.h"
#include "nn/norm.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"
#include "train/export.h"
#include "zoo/models.h"

using namespace evit;

namespace {
// Gives every BatchNorm non-trivial statistics and affine parameters, so folding has work to do.
int64_t randomize_batchnorms(nn::Module& m, uint64_t seed) {
  Generator g(seed);
  NoGradGuard no_grad;
  int64_t n = 0;
  for (auto& [name, mod] : m.named_modules()) {
    auto bn = std::dynamic_pointer_cast<nn::BatchNorm2d>(mod);
    if (!bn) continue;
    const Shape s = bn->running_mean.sizes();
    copy_(bn->running_mean, mul(randn(s, {}, &g), 0.5));
    copy_(bn->running_var, uniform(s, 0.3, 2.0, {}, &g));
    copy_(bn->weight, uniform(s, 0.5, 1.5, {}, &g));
    copy_(bn->bias, mul(randn(s, {}, &g), 0.2));
    ++n;
  }
  return n;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}
}  // namespace

TEST_CASE("fold_conv_bn matches the BatchNorm formula on a small case", "[export]") {
  nn::Conv2d conv({1, 2, 1, 1, 0, 1, 1, true});
  nn::BatchNorm2d bn(2, 0.0);  // eps 0 so that the hand values are exact
  NoGradGuard no_grad;
  copy_(conv.weight, from_vector<float>({2, 3}, {2, 1, 1, 1}));
  copy_(conv.bias, from_vector<float>({1, -1}, {2}));
  copy_(bn.running_mean, from_vector<float>({0.5f, 2}, {2}));
  copy_(bn.running_var, from_vector<float>({4, 0.25f}, {2}));
  copy_(bn.weight, from_vector<float>({1, 3}, {2}));
  copy_(bn.bias, from_vector<float>({0, 1}, {2}));
  // s = gamma / sqrt(var) = (0.5, 6); W' = (1, 18); b' = beta - mean s + b s = (0 - 0.25 + 0.5, 1 - 12 - 6).
  train::FoldedConv f = train::fold_conv_bn(conv, bn);
  REQUIRE(f.weight.to_vector<float>() == std::vector<float>{1, 18});
  REQUIRE(f.bias.to_vector<float>() == std::vector<float>{0.25f, -17});
  nn::BatchNorm2d wrong(3);
  REQUIRE_THROWS_WITH(train::fold_conv_bn(conv, wrong), Catch::Contains("2 output channels"));
}

TEST_CASE("folded models reproduce the eval outputs; exports have no norm entries", "[export]") {
  NoGradGuard no_grad;
  for (const char* name : {"efficientvit-b0", "efficientvit-seg-b0-cityscapes"}) {
    INFO(name);
    manual_seed(3);
    auto m = zoo::create_model(name);
    REQUIRE(randomize_batchnorms(*m, 17) > 10);
    m->eval();
    Tensor x = randn({2, 3, 64, 64});
    Tensor ref = m->forward(x);
    TensorMap original = m->state_dict();

    TensorMap exported = train::export_folded(*m);
    REQUIRE(test::bitwise_equal(m->forward(x), ref));  // export leaves the model alone
    int64_t norm_keys = 0, added_bias = 0;
    for (auto& [k, v] : original) norm_keys += k.find("running_mean") != std::string::npos;
    for (auto& [k, v] : exported) {
      INFO(k);
      REQUIRE(k.find("running_mean") == std::string::npos);
      REQUIRE(k.find("num_batches_tracked") == std::string::npos);
      added_bias += original.count(k) == 0;
    }
    // Each BatchNorm takes 5 entries away and (its conv having no bias here) adds a conv bias.
    REQUIRE(added_bias == norm_keys);
    REQUIRE(exported.size() == original.size() - 5 * norm_keys + added_bias);

    int64_t folded = train::fold_batchnorm(*m);
    REQUIRE(folded == norm_keys);
    Tensor y = m->forward(x);
    EVIT_REQUIRE_CLOSE(y, ref, 1e-4, 1e-4 * max_abs(ref));
    // The in-place result and the export agree key for key.
    TensorMap after = m->state_dict();
    REQUIRE(after.size() == exported.size());
    for (auto& [k, v] : exported) {
      INFO(k);
      REQUIRE(after.count(k) == 1);
      REQUIRE(test::bitwise_equal(after.at(k), v));
    }
    // A fresh model, folded, loads the export strictly and computes the same outputs.
    auto fresh = zoo::create_model(name);
    train::fold_batchnorm(*fresh);
    fresh->load_state_dict(exported, /*strict=*/true);
    fresh->eval();
    REQUIRE(test::bitwise_equal(fresh->forward(x), y));
    // Nothing left to fold.
    REQUIRE(train::fold_batchnorm(*m) == 0);
  }
}
