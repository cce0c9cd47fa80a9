// The autograd engine: accumulation, broadcasting, guards, hooks, version checks, anomaly mode.
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

TEST_CASE("gradients accumulate over two backward calls", "[autograd]") {
  Tensor x = test::leaf(from_vector<double>({1, 2, 3}, {3}));
  sum(mul(x, x)).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{2, 4, 6});
  sum(mul(x, x)).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{4, 8, 12});
  x.set_grad(Tensor());
  REQUIRE_FALSE(x.grad().defined());
}

TEST_CASE("the same gradient reaching two leaves is not aliased", "[autograd]") {
  Tensor a = test::leaf(ones({2}, DType::f64));
  Tensor b = test::leaf(ones({2}, DType::f64));
  sum(add(a, b)).backward();
  sum(mul(a, 3.0)).backward();  // accumulates into a only
  REQUIRE(a.grad().to_vector<double>() == std::vector<double>{4, 4});
  REQUIRE(b.grad().to_vector<double>() == std::vector<double>{1, 1});
}

TEST_CASE("broadcast gradients are reduced to the input shape", "[autograd]") {
  Tensor a = test::leaf(ones({2, 3}, DType::f64));
  Tensor b = test::leaf(ones({3}, DType::f64));
  Tensor c = test::leaf(ones({2, 1}, DType::f64));
  sum(mul(add(a, b), c)).backward();
  REQUIRE(b.grad().sizes() == Shape{3});
  REQUIRE(b.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
  REQUIRE(c.grad().sizes() == Shape{2, 1});
  REQUIRE(c.grad().to_vector<double>() == std::vector<double>{6, 6});
}

TEST_CASE("a diamond graph sums both paths", "[autograd]") {
  Tensor x = test::leaf(from_vector<double>({2.0}, {1}));
  Tensor y = mul(x, 3.0);
  Tensor z = add(mul(y, y), y);  // z = 9x^2 + 3x, dz/dx = 18x + 3
  z.backward(ones({1}, DType::f64));
  REQUIRE(x.grad().item<double>() == 39.0);
}

TEST_CASE("NoGradGuard stops recording and detach cuts the graph", "[autograd]") {
  Tensor x = test::leaf(ones({2}, DType::f64));
  {
    NoGradGuard g;
    Tensor y = mul(x, 2.0);
    REQUIRE_FALSE(y.requires_grad());
  }
  Tensor d = mul(x, 2.0).detach();
  REQUIRE_FALSE(d.requires_grad());
  REQUIRE(d.is_leaf());
  Tensor y = mul(x, 2.0);
  REQUIRE(y.requires_grad());
  REQUIRE_FALSE(y.is_leaf());
  REQUIRE(y.grad_fn()->name() == "MulBackward");
}

TEST_CASE("inputs that do not require grad get no gradient", "[autograd]") {
  Tensor x = test::leaf(ones({2}, DType::f64));
  Tensor c = ones({2}, DType::f64);
  sum(mul(x, c)).backward();
  REQUIRE(x.grad().defined());
  REQUIRE_FALSE(c.grad().defined());
}

TEST_CASE("in-place change after save is caught with op and shapes", "[autograd]") {
  Tensor x = test::leaf(ones({2, 3}, DType::f64));
  Tensor w = ones({2, 3}, DType::f64);
  Tensor y = mul(x, w);  // MulBackward saves w
  fill_(w, 2.0);
  REQUIRE_THROWS_WITH(sum(y).backward(),
                      Catch::Contains("MulBackward") && Catch::Contains("f64 [2,3]") &&
                          Catch::Contains("modified in-place"));
}

TEST_CASE("in-place on a tensor requiring grad is refused in grad mode", "[autograd]") {
  Tensor x = test::leaf(ones({2}, DType::f64));
  REQUIRE_THROWS_WITH(add_(x, ones({2}, DType::f64)), Catch::Contains("requires grad"));
  NoGradGuard g;
  add_(x, ones({2}, DType::f64));
  REQUIRE(x.to_vector<double>() == std::vector<double>{2, 2});
}

TEST_CASE("backward twice without retain_graph is an error", "[autograd]") {
  Tensor x = test::leaf(ones({2}, DType::f64));
  Tensor y = sum(exp(x));
  y.backward();
  REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("second time"));
  Tensor z = sum(exp(x));
  z.backward(Tensor(), true);
  z.backward();
  REQUIRE(x.grad().defined());
}

TEST_CASE("hooks see and can replace gradients", "[autograd]") {
  Tensor x = test::leaf(ones({2}, DType::f64));
  Tensor y = mul(x, 2.0);
  Tensor seen;
  y.register_hook([&](const Tensor& g) {
    seen = g;
    return mul(g, 10.0);
  });
  x.register_hook([](const Tensor& g) { return add(g, 1.0); });
  sum(y).backward();
  REQUIRE(seen.to_vector<double>() == std::vector<double>{1, 1});
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{21, 21});
}

TEST_CASE("grad-ready hooks run once per backward, when the leaf's gradient is complete", "[autograd]") {
  Tensor x = test::leaf(ones({2}, DType::f64));
  Tensor w = test::leaf(ones({2}, DType::f64));
  std::vector<std::vector<double>> seen;
  std::vector<std::string> order;
  x.register_grad_ready_hook([&](const Tensor& leaf) {
    seen.push_back(leaf.grad().to_vector<double>());
    order.push_back("x");
  });
  w.register_grad_ready_hook([&](const Tensor&) { order.push_back("w"); });
  // x reaches the loss along three paths: the hook sees the sum of all three, once.
  Tensor y = add(add(mul(x, 2.0), mul(x, 3.0)), mul(mul(x, 4.0), w));
  sum(y).backward();
  REQUIRE(seen == std::vector<std::vector<double>>{{9, 9}});
  REQUIRE(order.size() == 2);
  // A second backward adds into .grad: the hook sees the total.
  sum(mul(x, 1.0)).backward();
  REQUIRE(seen.back() == std::vector<double>{10, 10});
  // A hook may take the gradient away.
  Tensor z = test::leaf(ones({2}, DType::f64));
  z.register_grad_ready_hook([](const Tensor& leaf) { leaf.set_grad(Tensor()); });
  sum(mul(z, 2.0)).backward();
  REQUIRE_FALSE(z.grad().defined());
  REQUIRE_THROWS_WITH(y.register_grad_ready_hook([](const Tensor&) {}), Catch::Contains("not a leaf"));
}

TEST_CASE("anomaly mode names the node that produced NaN", "[autograd]") {
  set_anomaly_enabled(true);
  Tensor x = test::leaf(from_vector<double>({0.0, 1.0}, {2}));
  Tensor y = sum(sqrt(x));  // d sqrt / dx at 0 is inf
  REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("SqrtBackward") && Catch::Contains("f64 [2]"));
  set_anomaly_enabled(false);
}

TEST_CASE("a long chain is backpropagated and freed without recursion", "[autograd]") {
  Tensor x = test::leaf(ones({1}, DType::f64));
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = add(y, 0.0);
  y.backward(ones({1}, DType::f64));
  REQUIRE(x.grad().item<double>() == 1.0);
  y = Tensor();  // destroys 100000 nodes
}

TEST_CASE("gradcheck detects a wrong gradient", "[autograd]") {
  // A deliberately wrong op: forward x^2, backward claims 3x.
  auto bad = [](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor y = mul(x.detach(), x.detach());
    autograd::record("BadBackward", {x}, {y}, {x}, [](const BackwardContext& ctx) -> std::vector<Tensor> {
      return {mul(mul(ctx.saved(0), 3.0), ctx.grad_output(0))};
    });
    return y;
  };
  Tensor x = test::random_leaf({3});
  REQUIRE_FALSE(gradcheck(bad, {x}).ok);
  GradcheckOptions fast;
  fast.fast = true;
  REQUIRE_FALSE(gradcheck(bad, {x}, fast).ok);
  auto good = [](const std::vector<Tensor>& in) { return mul(in[0], in[0]); };
  REQUIRE(gradcheck(good, {x}).ok);
  REQUIRE(gradcheck(good, {x}, fast).ok);
}
