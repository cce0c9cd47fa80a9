// point_sample and the stage-2 SAM mask loss: PyTorch goldens (tools/golden/gen_point_sample.py),
// f64 gradchecks, the PointRend point choice, the lowest-of-K rule and thread-count determinism.
#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/parallel.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"
#include "train/sam_mask_loss.h"

using namespace evit;

TEST_CASE("point_sample equals grid_sample at points inside, on and beyond the edges", "[resize][sam]") {
  const auto fn = [](const std::vector<Tensor>& in) { return point_sample(in[0], in[1]); };
  test::check_golden_case("point_sample", "sample", fn, 1e-12, 1e-12);
  test::check_golden_case("point_sample", "sample_one_pixel", fn, 1e-12, 1e-12);
}

TEST_CASE("point_sample passes gradcheck on contiguous and transposed maps", "[resize][sam][autograd]") {
  const Tensor coords = sub(mul(rand({2, 9, 2}, DType::f64), 1.2), 0.1);  // some points outside
  EVIT_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return point_sample(in[0], coords); },
                         (std::vector<Tensor>{test::random_leaf({2, 3, 4, 5}, -1, 1, 3)}));
  Tensor t = transpose(test::random_leaf({2, 3, 5, 4}, -1, 1, 4).detach(), 2, 3).detach();
  t.requires_grad_(true);
  EVIT_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return point_sample(in[0], coords); },
                         (std::vector<Tensor>{t}));
}

TEST_CASE("point_sample names wrong shapes and differentiable coordinates", "[resize][sam]") {
  const Tensor x = zeros({2, 1, 4, 4});
  REQUIRE_THROWS_WITH(point_sample(zeros({4, 4}), zeros({2, 3, 2})), Catch::Contains("input must be 4-D"));
  REQUIRE_THROWS_WITH(point_sample(x, zeros({3, 5, 2})), Catch::Contains("coords must be [N, P, 2] with N = 2"));
  REQUIRE_THROWS_WITH(point_sample(x, zeros({2, 5, 3})), Catch::Contains("coords must be [N, P, 2]"));
  REQUIRE_THROWS_WITH(point_sample(x, zeros({2, 5, 2}, DType::f64)), Catch::Contains("dtype and device"));
  Tensor c = zeros({2, 5, 2});
  c.requires_grad_(true);
  REQUIRE_THROWS_WITH(point_sample(x, c), Catch::Contains("take no gradient"));
}

TEST_CASE("the SAM point loss is 20 x BCE + dice as the reference computes it", "[sam]") {
  test::check_golden_case(
      "point_sample", "mask_loss",
      [](const std::vector<Tensor>& in) { return train::sam_point_loss(in[0], in[1], in[2]); }, 1e-10, 1e-12);
  const Tensor targets = test::golden_tensor("point_sample", "mask_loss.x1");
  const Tensor coords = test::golden_tensor("point_sample", "mask_loss.x2");
  EVIT_REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return train::sam_point_loss(in[0], targets, coords); },
      (std::vector<Tensor>{test::random_leaf({3, 1, 6, 8}, -3, 3, 9)}));
}

TEST_CASE("PointRend points: the uncertain share comes from where the logits are near zero", "[sam]") {
  // Logits near 0 (uncertain) in the left half, far from 0 elsewhere.
  const int64_t H = 16, W = 16;
  Tensor logits = full({2, 1, H, W}, 8.0);
  float* v = logits.data_ptr<float>();
  for (int64_t m = 0; m < 2; ++m)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < 8; ++x) v[(m * H + y) * W + x] = 0.01f * static_cast<float>(x);
  train::SamMaskLossOptions o;
  o.points = 40;  // 120 candidates, about 60 in the left half: the 30 uncertain points come from there
  Generator g(11);
  const Tensor pts = train::sample_uncertain_points(logits, o, g);
  REQUIRE(pts.sizes() == Shape{2, 40, 2});
  const float* p = pts.data_ptr<float>();
  for (int64_t m = 0; m < 2; ++m) {
    for (int64_t i = 0; i < 30; ++i) {
      INFO("mask " << m << ", point " << i);
      CHECK(p[(m * 40 + i) * 2] < 0.5f + 1.0f / 16);  // bilinear: within half a pixel of the half
    }
    for (int64_t i = 0; i < 40 * 2; ++i) CHECK((p[m * 80 + i] >= 0 && p[m * 80 + i] < 1));
  }
  Generator again(11);
  REQUIRE(test::bitwise_equal(train::sample_uncertain_points(logits, o, again), pts));
  o.importance = 1.5;
  REQUIRE_THROWS_WITH(train::sample_uncertain_points(logits, o, g), Catch::Contains("importance in [0, 1]"));
}

TEST_CASE("the stage-2 loss keeps the lowest of the K masks per prompt", "[sam]") {
  // Two prompts, K = 3 low-res masks of 8x8, targets at 16x16: mask 1 of prompt 0 and mask 2 of
  // prompt 1 are near-perfect, so the loss equals the mean of their own losses.
  const int64_t S = 16;
  Tensor targets = zeros({2, S, S});
  float* t = targets.data_ptr<float>();
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x) t[y * S + x] = x < 8, t[S * S + y * S + x] = y >= 6;
  Tensor low = full({2, 3, 8, 8}, -1.0);
  float* l = low.data_ptr<float>();
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 8; ++x) {
      l[((0 * 3 + 1) * 8 + y) * 8 + x] = x < 4 ? 12.f : -12.f;
      l[((1 * 3 + 2) * 8 + y) * 8 + x] = y >= 3 ? 12.f : -12.f;
    }
  train::SamMaskLossOptions o;
  o.points = 64;
  Generator g(5);
  const double loss = train::sam_finetune_loss(low, targets, o, g).item<double>();
  // The same draws, step by step: per prompt and mask the point loss, then the lowest per prompt.
  Generator replay(5);
  double L[2][3];
  for (int64_t k = 0; k < 3; ++k) {
    const Tensor up = interpolate(slice(low, 1, k, k + 1), {S, S}, {}, InterpolateMode::bilinear, false);
    const Tensor pts = train::sample_uncertain_points(up, o, replay);
    const Tensor per_mask = train::sam_point_loss(up, unsqueeze(targets, 1), pts);
    for (int64_t m = 0; m < 2; ++m) L[m][k] = per_mask.data_ptr<float>()[m];
  }
  CHECK(L[0][1] < std::min(L[0][0], L[0][2]));  // the designed masks are the best ones
  CHECK(L[1][2] < std::min(L[1][0], L[1][1]));
  CHECK(L[0][0] > 5.0);  // a constant -1 mask is far off
  CHECK(loss == Approx((L[0][1] + L[1][2]) / 2).epsilon(1e-6));
  // Gradients reach only the chosen masks.
  Tensor leaf = low.clone();
  leaf.requires_grad_(true);
  Generator g2(5);
  train::sam_finetune_loss(leaf, targets, o, g2).backward();
  const Tensor grad_norm = sum(abs(leaf.grad()), {2, 3});
  const float* gn = grad_norm.data_ptr<float>();
  CHECK(gn[0 * 3 + 0] == 0.f);
  CHECK(gn[0 * 3 + 1] > 0.f);
  CHECK(gn[1 * 3 + 0] == 0.f);
  CHECK(gn[1 * 3 + 2] > 0.f);
}

TEST_CASE("the stage-2 loss passes gradcheck and does not depend on the thread count", "[sam][autograd]") {
  const Tensor targets = gt(rand({2, 12, 12}, DType::f64), 0.5).to(DType::f64);
  train::SamMaskLossOptions o;
  o.points = 20;
  const auto fn = [&](const std::vector<Tensor>& in) {
    Generator g(3);  // the same points on every evaluation
    return train::sam_finetune_loss(in[0], targets, o, g);
  };
  EVIT_REQUIRE_GRADCHECK(fn, (std::vector<Tensor>{test::random_leaf({2, 3, 6, 6}, -2, 2, 12)}));

  const Tensor low = randn({4, 3, 64, 64});
  const Tensor big_targets = gt(rand({4, 256, 256}), 0.5).to(DType::f32);
  o.points = 112 * 112;
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor leaf = low.clone();
    leaf.requires_grad_(true);
    Generator g(8);
    Tensor loss = train::sam_finetune_loss(leaf, big_targets, o, g);
    loss.backward();
    return std::make_pair(loss.detach(), leaf.grad());
  };
  test::ThreadCountGuard restore;
  const auto a = run(1), b = run(2);
  REQUIRE(test::bitwise_equal(a.first, b.first));
  REQUIRE(test::bitwise_equal(a.second, b.second));
}
