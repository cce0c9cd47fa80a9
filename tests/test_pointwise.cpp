// Pointwise ops: PyTorch goldens, full f64 gradchecks (broadcast and non-contiguous inputs),
// comparisons, where, in-place updates.
#include <functional>
#include <map>

#include "core/generator.h"
#include "core/parallel.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

const std::map<std::string, Fn>& unary_ops() {
  static const std::map<std::string, Fn> ops = {
      {"neg", [](auto& in) { return neg(in[0]); }},
      {"exp", [](auto& in) { return exp(in[0]); }},
      {"log", [](auto& in) { return log(in[0]); }},
      {"sqrt", [](auto& in) { return sqrt(in[0]); }},
      {"rsqrt", [](auto& in) { return rsqrt(in[0]); }},
      {"abs", [](auto& in) { return abs(in[0]); }},
      {"pow3", [](auto& in) { return pow(in[0], 3.0); }},
      {"pow_half", [](auto& in) { return pow(in[0], 0.5); }},
      {"clamp", [](auto& in) { return clamp(in[0], -0.5, 0.5); }},
      {"relu", [](auto& in) { return relu(in[0]); }},
      {"relu6", [](auto& in) { return relu6(in[0]); }},
      {"hardswish", [](auto& in) { return hardswish(in[0]); }},
      {"gelu", [](auto& in) { return gelu(in[0]); }},
      {"gelu_tanh", [](auto& in) { return gelu_tanh(in[0]); }},
      {"silu", [](auto& in) { return silu(in[0]); }},
      {"sigmoid", [](auto& in) { return sigmoid(in[0]); }},
      {"tanh", [](auto& in) { return tanh(in[0]); }},
  };
  return ops;
}

const std::map<std::string, Fn>& binary_ops() {
  static const std::map<std::string, Fn> ops = {
      {"add_broadcast", [](auto& in) { return add(in[0], in[1]); }},
      {"sub_broadcast", [](auto& in) { return sub(in[0], in[1]); }},
      {"mul_broadcast", [](auto& in) { return mul(in[0], in[1]); }},
      {"div", [](auto& in) { return div(in[0], in[1]); }},
      {"maximum", [](auto& in) { return maximum(in[0], in[1]); }},
      {"minimum", [](auto& in) { return minimum(in[0], in[1]); }},
  };
  return ops;
}

// Values in [lo, hi) kept at least `gap` away from every kink point (relu at 0, clamp bounds...).
Tensor off_kinks(const Shape& shape, double lo, double hi, std::vector<double> kinks, uint64_t seed) {
  Generator g(seed);
  Tensor t = uniform(shape, lo, hi, {DType::f64}, &g);
  std::vector<double> v = t.to_vector<double>();
  for (double& x : v)
    for (double k : kinks)
      if (std::abs(x - k) < 0.05) x = k + (x < k ? -0.05 : 0.05);
  Tensor r = from_vector<double>(v, shape);
  r.requires_grad_(true);
  return r;
}
}  // namespace

TEST_CASE("pointwise ops match PyTorch goldens (values and gradients)", "[pointwise]") {
  for (auto& [name, fn] : unary_ops()) {
    SECTION(name) { test::check_golden_case("pointwise", name, fn); }
  }
  for (auto& [name, fn] : binary_ops()) {
    SECTION(name) { test::check_golden_case("pointwise", name, fn); }
  }
}

TEST_CASE("unary ops pass gradcheck on contiguous and non-contiguous inputs", "[pointwise]") {
  std::map<std::string, std::pair<double, double>> domain = {
      {"log", {0.2, 3}}, {"sqrt", {0.2, 3}}, {"rsqrt", {0.2, 3}}, {"pow_half", {0.2, 3}},
      {"relu6", {-2, 8}}, {"hardswish", {-5, 5}}};
  std::vector<double> kinks = {0.0, -0.5, 0.5, 6.0, -3.0, 3.0};
  for (auto& [name, fn] : unary_ops()) {
    SECTION(name) {
      auto [lo, hi] = domain.count(name) ? domain[name] : std::pair<double, double>{-2, 2};
      Tensor x = off_kinks({3, 4}, lo, hi, kinks, 11);
      EVIT_REQUIRE_GRADCHECK(fn, std::vector<Tensor>{x});
      // A transposed (non-contiguous) leaf.
      Tensor base = off_kinks({4, 3}, lo, hi, kinks, 12);
      Tensor xt = transpose(base.detach(), 0, 1);
      xt.requires_grad_(true);
      REQUIRE_FALSE(xt.is_contiguous());
      EVIT_REQUIRE_GRADCHECK(fn, std::vector<Tensor>{xt});
    }
  }
}

TEST_CASE("binary ops pass gradcheck with broadcasting and strided inputs", "[pointwise]") {
  for (auto& [name, fn] : binary_ops()) {
    SECTION(name) {
      Tensor a = off_kinks({2, 3, 4}, 0.5, 2.0, {}, 21);
      Tensor b = off_kinks({3, 1}, 0.5, 2.0, {}, 22);
      if (name == "maximum" || name == "minimum") b = off_kinks({3, 1}, -1.0, 3.0, {}, 23);
      EVIT_REQUIRE_GRADCHECK(fn, (std::vector<Tensor>{a, b}));
      Tensor base = off_kinks({4, 6}, 0.5, 2.0, {}, 24);
      Tensor sliced = slice(base.detach(), 1, 0, 6, 2);  // [4,3], stride 2
      sliced.requires_grad_(true);
      Tensor c = off_kinks({4, 3}, 0.6, 2.1, {}, 25);
      EVIT_REQUIRE_GRADCHECK(fn, (std::vector<Tensor>{sliced, c}));
    }
  }
}

TEST_CASE("maximum and minimum split the gradient at ties", "[pointwise]") {
  Tensor a = test::leaf(from_vector<double>({1, 2}, {2}));
  Tensor b = test::leaf(from_vector<double>({1, 3}, {2}));
  sum(maximum(a, b)).backward();
  REQUIRE(a.grad().to_vector<double>() == std::vector<double>{0.5, 0});
  REQUIRE(b.grad().to_vector<double>() == std::vector<double>{0.5, 1});
}

TEST_CASE("comparisons match PyTorch and give bool tensors", "[pointwise]") {
  Tensor a = test::golden_tensor("pointwise", "compare.a");
  Tensor b = test::golden_tensor("pointwise", "compare.b");
  std::map<std::string, std::function<Tensor(const Tensor&, const Tensor&)>> ops = {
      {"eq", [](auto& x, auto& y) { return eq(x, y); }}, {"ne", [](auto& x, auto& y) { return ne(x, y); }},
      {"lt", [](auto& x, auto& y) { return lt(x, y); }}, {"le", [](auto& x, auto& y) { return le(x, y); }},
      {"gt", [](auto& x, auto& y) { return gt(x, y); }}, {"ge", [](auto& x, auto& y) { return ge(x, y); }}};
  for (auto& [name, fn] : ops) {
    INFO(name);
    Tensor r = fn(a, b);
    REQUIRE(r.dtype() == DType::boolean);
    REQUIRE(test::bitwise_equal(r, test::golden_tensor("pointwise", "compare." + name)));
  }
}

TEST_CASE("where matches PyTorch and routes gradients", "[pointwise]") {
  Tensor cond = test::golden_tensor("pointwise", "where.cond");
  test::check_golden_case("pointwise", "where",
                          [&](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); });
  REQUIRE_THROWS_WITH(where(ones({2}), ones({2}), ones({2})), Catch::Contains("must be bool"));
}

TEST_CASE("in-place ops update values, versions and respect broadcasting", "[pointwise]") {
  Tensor a = zeros({2, 3});
  add_(a, from_vector<float>({1, 2, 3}, {3}));
  REQUIRE(a.to_vector<float>() == std::vector<float>{1, 2, 3, 1, 2, 3});
  mul_(a, 2.0);
  REQUIRE(a.to_vector<float>() == std::vector<float>{2, 4, 6, 2, 4, 6});
  add_(a, ones({2, 3}), -0.5);
  REQUIRE(a.to_vector<float>() == std::vector<float>{1.5, 3.5, 5.5, 1.5, 3.5, 5.5});
  uint64_t v = a.version();
  zero_(a);
  REQUIRE(a.version() == v + 1);
  REQUIRE(a.to_vector<float>() == std::vector<float>(6, 0.f));
  Tensor dst = zeros({2, 2});
  copy_(dst, from_vector<float>({1, 2, 3, 4}, {2, 2}));
  REQUIRE(dst.to_vector<float>() == std::vector<float>{1, 2, 3, 4});
  REQUIRE_THROWS_WITH(add_(dst, ones({3, 2})), Catch::Contains("not broadcastable"));
  REQUIRE_THROWS_WITH(add_(dst, ones({2, 2, 2})), Catch::Contains("cannot broadcast"));
}

TEST_CASE("integer arithmetic works and integer gradients are refused", "[pointwise]") {
  Tensor a = arange(4);
  REQUIRE(add(a, a).to_vector<int64_t>() == std::vector<int64_t>{0, 2, 4, 6});
  REQUIRE(mul(a, 3.0).to_vector<int64_t>() == std::vector<int64_t>{0, 3, 6, 9});
  REQUIRE_THROWS_WITH(relu(a), Catch::Contains("relu: expected a floating dtype"));
  REQUIRE_THROWS_WITH(a.requires_grad_(), Catch::Contains("only floating"));
}

TEST_CASE("large pointwise ops are identical with 1 and 2 threads", "[pointwise]") {
  Generator g(3);
  Tensor x = randn({1 << 20}, {}, &g);
  set_num_threads(1);
  Tensor y1 = hardswish(add(x, 0.25));
  set_num_threads(2);
  Tensor y2 = hardswish(add(x, 0.25));
  REQUIRE(test::bitwise_equal(y1, y2));
}
