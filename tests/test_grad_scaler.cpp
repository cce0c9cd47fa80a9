// The loss scaler on the CPU: unscaling, skipping a step on inf/NaN gradients, backoff and
// growth of the scale, state round trip and misuse errors. (tests/test_cuda_optim.cpp checks
// the CUDA path against this one.)
#include <cmath>
#include <limits>

#include "ops/ops.h"
#include "optim/grad_scaler.h"
#include "optim/sgd.h"
#include "tests/support/test_util.h"

using namespace evit;

TEST_CASE("GradScaler unscales, skips steps with inf/NaN gradients, backs off and grows", "[grad_scaler]") {
  Tensor w = from_vector<float>({0.5f, -1.0f, 2.0f, 0.25f, 3.0f}, {5}).requires_grad_();
  Tensor b = from_vector<double>({1.0, -2.0, 0.125}, {3}).requires_grad_();
  optim::SGD opt({{{{"w", w}, {"b", b}}, 0.1, 0.0}});
  optim::GradScaler scaler(65536.0, 2.0, 0.5, /*growth_interval=*/3);
  REQUIRE(scaler.get_scale() == 65536.0);

  // scale(): the gradients of the scaled loss are the true ones times the scale; unscale_
  // brings them back exactly (powers of two).
  Tensor x = from_vector<float>({1.5f, -0.75f, 0.3f, 2.0f, -1.25f}, {5});
  Tensor bx = from_vector<double>({0.2, 0.4, -0.6}, {3});
  Tensor loss = add(sum(mul(w, x)), sum(mul(b, bx)).to(DType::f32));
  Tensor scaled = scaler.scale(loss);
  REQUIRE(scaled.item<float>() == loss.item<float>() * 65536.0f);
  scaled.backward();
  EVIT_REQUIRE_CLOSE(w.grad(), mul(x, 65536.0), 0, 0);
  REQUIRE(scaler.unscale_(opt));
  REQUIRE(test::bitwise_equal(w.grad(), x));
  EVIT_REQUIRE_CLOSE(b.grad(), bx, 1e-15, 0);
  // step after unscale_ does not unscale again
  Tensor w0 = w.detach().clone();
  REQUIRE(scaler.step(opt));
  EVIT_REQUIRE_CLOSE(w.detach(), sub(w0, mul(x, 0.1)), 1e-6, 1e-7);
  scaler.update();
  REQUIRE(scaler.get_scale() == 65536.0);
  REQUIRE(scaler.growth_tracker() == 1);

  // An inf gradient: unscale reports it, the step is skipped, the scale backs off.
  const float inf = std::numeric_limits<float>::infinity();
  w.set_grad(from_vector<float>({1.0f, inf, 2.0f, 0.0f, 4.0f}, {5}));
  b.set_grad(from_vector<double>({65536.0, 0.0, -131072.0}, {3}));
  Tensor w1 = w.detach().clone(), b1 = b.detach().clone();
  REQUIRE_FALSE(scaler.step(opt));
  REQUIRE(scaler.found_inf());
  REQUIRE(test::bitwise_equal(w.detach(), w1));
  REQUIRE(test::bitwise_equal(b.detach(), b1));
  // the gradients were still unscaled (like torch), inf stays inf
  REQUIRE(b.grad().to_vector<double>() == std::vector<double>{1.0, 0.0, -2.0});
  REQUIRE(std::isinf(w.grad().to_vector<float>()[1]));
  scaler.update();
  REQUIRE(scaler.get_scale() == 32768.0);
  REQUIRE(scaler.growth_tracker() == 0);

  // NaN counts as well.
  w.set_grad(from_vector<float>({1.0f, std::nanf(""), 2.0f, 0.0f, 4.0f}, {5}));
  REQUIRE_FALSE(scaler.unscale_(std::vector<Tensor>{w, b}));
  REQUIRE_FALSE(scaler.step(opt));
  scaler.update();
  REQUIRE(scaler.get_scale() == 16384.0);

  // growth_interval good steps double the scale and restart the tracker.
  for (int s = 0; s < 3; ++s) {
    INFO("good step " << s);
    w.set_grad(mul(x, scaler.get_scale()));
    b.set_grad(mul(bx, scaler.get_scale()));
    Tensor before = w.detach().clone();
    REQUIRE(scaler.step(opt));
    REQUIRE(test::bitwise_equal(w.grad(), x));  // unscaled grads equal the true ones
    EVIT_REQUIRE_CLOSE(w.detach(), sub(before, mul(x, 0.1)), 1e-6, 1e-7);
    scaler.update();
    REQUIRE(scaler.growth_tracker() == (s < 2 ? s + 1 : 0));
    REQUIRE(scaler.get_scale() == (s < 2 ? 16384.0 : 32768.0));
  }

  // A non-contiguous gradient is unscaled in place through its view.
  Tensor m = zeros({3, 4}).requires_grad_();
  Tensor gbase = mul(reshape(arange(int64_t{12}, DType::f32), {4, 3}), 4.0);
  m.set_grad(transpose(gbase, 0, 1));
  optim::GradScaler small(4.0);
  REQUIRE(small.unscale_(std::vector<Tensor>{m}));
  REQUIRE(test::bitwise_equal(m.grad().contiguous(), transpose(reshape(arange(int64_t{12}, DType::f32), {4, 3}), 0, 1).contiguous()));

  // State round trip.
  optim::GradScaler other;
  other.load_state_dict(scaler.state_dict());
  REQUIRE(other.get_scale() == scaler.get_scale());
  REQUIRE(other.growth_tracker() == scaler.growth_tracker());
  TensorMap st = scaler.state_dict();
  st["bogus"] = zeros({});
  REQUIRE_THROWS_WITH(other.load_state_dict(st), Catch::Contains("bogus"));

  // Misuse is reported.
  REQUIRE_THROWS_WITH(scaler.update(), Catch::Contains("update()"));
  w.set_grad(x.clone());
  scaler.unscale_(opt);
  REQUIRE_THROWS_WITH(scaler.unscale_(opt), Catch::Contains("already"));
  scaler.step(opt);
  REQUIRE_THROWS_WITH(scaler.step(opt), Catch::Contains("already"));
  scaler.update();
  REQUIRE_THROWS_WITH(optim::GradScaler(65536.0, 0.5), Catch::Contains("growth_factor"));

  // Disabled: a pass-through.
  optim::GradScaler off(65536.0, 2.0, 0.5, 2000, /*enabled=*/false);
  REQUIRE(off.scale(loss).is_same(loss));
  w.set_grad(from_vector<float>({inf, 0, 0, 0, 0}, {5}));
  REQUIRE(off.step(opt));
}

TEST_CASE("GradScaler: a scale that would overflow f32 is not grown", "[grad_scaler]") {
  Tensor w = zeros({2}).requires_grad_();
  optim::GradScaler scaler(3e38, 2.0, 0.5, 1);
  w.set_grad(ones({2}));
  REQUIRE(scaler.step(std::vector<Tensor>{w}, [] {}));
  scaler.update();
  REQUIRE(scaler.get_scale() == static_cast<double>(3e38f));
  REQUIRE(scaler.growth_tracker() == 0);
}
