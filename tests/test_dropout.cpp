// dropout, dropout2d, drop_path: statistics, eval identity, reproducibility, mask-consistent
// gradients, determinism across thread counts, errors.
#include <cmath>

#include "core/generator.h"
#include "core/parallel.h"
#include "ops/dropout.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {
double kept_fraction(const Tensor& y) {
  std::vector<double> v = y.to_vector<double>();
  double k = 0;
  for (double x : v) k += x != 0;
  return k / static_cast<double>(v.size());
}

// y = f(x) for x requiring grad, backward with weights w; returns (y, grad).
template <class F>
std::pair<Tensor, Tensor> run_with_grad(const Tensor& x0, const Tensor& w, F f) {
  Tensor x = x0.clone().detach();
  x.requires_grad_();
  Tensor y = f(x);
  sum(mul(y, w)).backward();
  return {y.detach(), x.grad()};
}
}  // namespace

TEST_CASE("dropout keeps about 1-p of the elements, scaled by 1/(1-p)", "[dropout]") {
  Generator g(1);
  Tensor x = ones({200000}, DType::f32);
  for (double p : {0.1, 0.5, 0.8}) {
    INFO("p = " << p);
    Tensor y = dropout(x, p, true, &g);
    // 200000 Bernoulli draws: std of the fraction <= 0.0012; allow 5 sigma.
    CHECK(std::abs(kept_fraction(y) - (1 - p)) < 0.006);
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    for (float v : y.to_vector<float>())
      if (v != 0) REQUIRE(v == scale);
  }
  CHECK(kept_fraction(dropout(x, 1.0, true, &g)) == 0.0);
}

TEST_CASE("dropout2d and drop_path drop whole channels / samples", "[dropout]") {
  Generator g(2);
  Tensor x = ones({64, 32, 3, 5}, DType::f64);
  Tensor y = dropout2d(x, 0.3, true, &g);
  std::vector<double> v = y.to_vector<double>();
  int64_t kept = 0;
  for (int64_t nc = 0; nc < 64 * 32; ++nc) {
    const double first = v[nc * 15];
    REQUIRE((first == 0.0 || first == 1.0 / 0.7));
    for (int64_t i = 1; i < 15; ++i) REQUIRE(v[nc * 15 + i] == first);
    kept += first != 0;
  }
  // 2048 channels: std of the fraction ~0.01; allow 5 sigma.
  CHECK(std::abs(kept / 2048.0 - 0.7) < 0.05);

  Tensor z = ones({4000, 2, 3}, DType::f32);
  Tensor d = drop_path(z, 0.25, true, &g);
  std::vector<float> dv = d.to_vector<float>();
  int64_t samples = 0;
  for (int64_t n = 0; n < 4000; ++n) {
    const float first = dv[n * 6];
    REQUIRE((first == 0.0f || first == static_cast<float>(1.0 / 0.75)));
    for (int64_t i = 1; i < 6; ++i) REQUIRE(dv[n * 6 + i] == first);
    samples += first != 0;
  }
  CHECK(std::abs(samples / 4000.0 - 0.75) < 0.035);
}

TEST_CASE("dropout ops in eval mode or with p = 0 are the identity", "[dropout]") {
  Tensor x = test::random_leaf({3, 4, 2, 2});
  REQUIRE(dropout(x, 0.5, false).is_same(x));
  REQUIRE(dropout(x, 0.0, true).is_same(x));
  REQUIRE(dropout2d(x, 0.5, false).is_same(x));
  REQUIRE(drop_path(x, 0.5, false).is_same(x));
  REQUIRE(drop_path(x, 0.0, true).is_same(x));
}

TEST_CASE("dropout masks are reproducible from the seed and advance the generator",
          "[dropout]") {
  Tensor x = ones({1000}, DType::f64);
  Generator a(42), b(42);
  Tensor y1 = dropout(x, 0.5, true, &a), y2 = dropout(x, 0.5, true, &b);
  REQUIRE(test::bitwise_equal(y1, y2));
  Tensor y3 = dropout(x, 0.5, true, &a);  // next counters: a different mask
  REQUIRE_FALSE(test::bitwise_equal(y1, y3));
  // The default generator is used when none is given, and manual_seed resets it.
  manual_seed(7);
  Tensor d1 = drop_path(ones({100, 3}), 0.5, true);
  manual_seed(7);
  Tensor d2 = drop_path(ones({100, 3}), 0.5, true);
  REQUIRE(test::bitwise_equal(d1, d2));
  // Same mask on 1 and 2 threads.
  const int before = get_num_threads();
  set_num_threads(1);
  Generator c1(5);
  Tensor m1 = dropout(ones({100000}), 0.3, true, &c1);
  set_num_threads(2);
  Generator c2(5);
  Tensor m2 = dropout(ones({100000}), 0.3, true, &c2);
  set_num_threads(before);
  REQUIRE(test::bitwise_equal(m1, m2));
}

TEST_CASE("dropout gradients are the mask times the scale", "[dropout]") {
  Generator g(11);
  Tensor x = uniform({4, 3, 5, 2}, 0.5, 1.5, {DType::f64}, &g);  // nonzero: y != 0 <=> kept
  Tensor w = uniform({4, 3, 5, 2}, -1, 1, {DType::f64}, &g);
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&, Generator*)> f;
    double p;
  };
  const Case cases[] = {
      {"dropout", [](const Tensor& t, Generator* gg) { return dropout(t, 0.4, true, gg); }, 0.4},
      {"dropout2d", [](const Tensor& t, Generator* gg) { return dropout2d(t, 0.5, true, gg); }, 0.5},
      {"drop_path", [](const Tensor& t, Generator* gg) { return drop_path(t, 0.5, true, gg); }, 0.5},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Generator gg(3);
    auto [y, gx] = run_with_grad(x, w, [&](const Tensor& t) { return c.f(t, &gg); });
    std::vector<double> yv = y.to_vector<double>(), xv = x.to_vector<double>(),
                        wv = w.to_vector<double>(), gv = gx.to_vector<double>();
    const double scale = 1.0 / (1.0 - c.p);
    for (size_t i = 0; i < yv.size(); ++i) {
      const double m = yv[i] != 0 ? 1.0 : 0.0;
      REQUIRE(yv[i] == Approx(m * scale * xv[i]));
      REQUIRE(gv[i] == Approx(m * scale * wv[i]));
    }
  }
  // gradcheck with a fixed mask: re-seed the generator on every evaluation.
  Tensor xl = test::random_leaf({2, 3, 2, 2});
  for (int which = 0; which < 3; ++which) {
    INFO("op " << which);
    EVIT_REQUIRE_GRADCHECK(
        [which](const std::vector<Tensor>& in) {
          Generator gg(17);
          if (which == 0) return dropout(in[0], 0.3, true, &gg);
          if (which == 1) return dropout2d(in[0], 0.3, true, &gg);
          return drop_path(in[0], 0.3, true, &gg);
        },
        std::vector<Tensor>{xl});
  }
}

TEST_CASE("dropout errors", "[dropout]") {
  REQUIRE_THROWS_WITH(dropout(zeros({2}), 1.5, true), Catch::Contains("dropout") && Catch::Contains("1.5"));
  REQUIRE_THROWS_WITH(drop_path(zeros({2}), -0.1, true), Catch::Contains("drop_path"));
  REQUIRE_THROWS_WITH(dropout2d(zeros({2, 3}), 0.5, true),
                      Catch::Contains("dropout2d") && Catch::Contains("[2,3]"));
  REQUIRE_THROWS_WITH(dropout(zeros({2}, DType::i64), 0.5, true), Catch::Contains("floating"));
}
