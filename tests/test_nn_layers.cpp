// nn layers: PyTorch-default initialisation, layer behaviour and module conversions.
#include <cmath>

#include "autograd/grad_mode.h"
#include "core/generator.h"
#include "nn/activation.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

TEST_CASE("default initialisation follows PyTorch's bounds and is seeded", "[nn]") {
  Generator g1(1), g2(1);
  nn::Conv2d a({16, 32, 3, 1, 1, 1, 2}, &g1), b({16, 32, 3, 1, 1, 1, 2}, &g2);
  REQUIRE(test::bitwise_equal(a.weight, b.weight));
  const double bound = 1.0 / std::sqrt(8.0 * 9.0);  // fan_in = in/groups * k * k
  auto w = a.weight.to_vector<float>();
  double mx = 0, sq = 0;
  for (float v : w) mx = std::max(mx, std::abs(double(v))), sq += double(v) * v;
  REQUIRE(mx <= bound);
  REQUIRE(mx > 0.95 * bound);
  // U(-b, b) has variance b²/3.
  REQUIRE(std::abs(sq / w.size() - bound * bound / 3) < 0.1 * bound * bound / 3);
  for (float v : a.bias.to_vector<float>()) REQUIRE(std::abs(v) <= bound);
  nn::Linear l(100, 10);
  for (float v : l.weight.to_vector<float>()) REQUIRE(std::abs(v) <= 0.1f);
}

TEST_CASE("trunc_normal stays within its bounds with the right spread", "[nn]") {
  Tensor t = empty({20000});
  Generator g(3);
  nn::init::trunc_normal_(t, 0.0, 0.02, -0.04, 0.04, &g);
  auto v = t.to_vector<float>();
  double sq = 0;
  for (float x : v) {
    REQUIRE(std::abs(x) <= 0.04f);
    sq += double(x) * x;
  }
  // Truncation at ±2σ reduces the standard deviation to about 0.88σ.
  REQUIRE(std::abs(std::sqrt(sq / v.size()) - 0.88 * 0.02) < 0.002);
}

TEST_CASE("BatchNorm2d tracks batches and switches statistics with the mode", "[nn]") {
  nn::BatchNorm2d bn(3);
  Tensor x = randn({4, 3, 5, 5});
  bn.forward(x);
  REQUIRE(bn.num_batches_tracked.item<int64_t>() == 1);
  REQUIRE(bn.running_mean.to_vector<float>() != std::vector<float>(3, 0.f));
  bn.eval();
  Tensor y = bn.forward(x);
  REQUIRE(bn.num_batches_tracked.item<int64_t>() == 1);
  Tensor expected = div(sub(x, reshape(bn.running_mean, {1, 3, 1, 1})),
                        sqrt(add(reshape(bn.running_var, {1, 3, 1, 1}), 1e-5)));
  EVIT_REQUIRE_CLOSE(y, expected, 1e-5, 1e-5);
}

TEST_CASE("dropout modules are identity in eval mode", "[nn]") {
  auto seq = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Dropout>(0.5), std::make_shared<nn::Dropout2d>(0.5),
      std::make_shared<nn::DropPath>(0.5), nn::Identity()});
  Tensor x = randn({2, 4, 3, 3});
  seq->eval();
  REQUIRE(test::bitwise_equal(seq->forward(x), x));
  seq->train();
  REQUIRE_FALSE(test::bitwise_equal(seq->forward(x), x));
  REQUIRE_THROWS_WITH(nn::Dropout(1.0), Catch::Contains("p must be in [0, 1)"));
  REQUIRE_THROWS_WITH(nn::make_activation("swish"), Catch::Contains("unknown activation 'swish'"));
}

TEST_CASE("Module::to converts in place so layer members follow", "[nn]") {
  nn::Linear l(3, 2);
  Tensor alias = l.weight;
  l.to(DType::f64);
  REQUIRE(alias.dtype() == DType::f64);
  REQUIRE(l.named_parameters()[0].second.dtype() == DType::f64);
  Tensor y = l.forward(randn({4, 3}, DType::f64));
  REQUIRE(y.dtype() == DType::f64);
  REQUIRE_THROWS_WITH(l.to(Device("cuda:0")), Catch::Contains("cuda:0"));
}
