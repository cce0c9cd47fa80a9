// avg_pool2d, max_pool2d, adaptive_avg_pool2d and interpolate: gradchecks, PyTorch goldens
// (tools/golden/gen_pool.py), errors and thread-count determinism.
#include "core/parallel.h"
#include "ops/ops.h"
#include "ops/pool.h"
#include "ops/resize.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {
using Fn = std::function<Tensor(const Tensor&)>;

void gradcheck1(const Fn& f, const Tensor& x) {
  EVIT_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return f(in[0]); },
                         (std::vector<Tensor>{x}));
}

// A non-contiguous f64 leaf of logical shape [n, c, h, w] (a transposed view).
Tensor noncontig_leaf(const Shape& s, uint64_t seed) {
  Tensor base = test::random_leaf({s[0], s[1], s[3], s[2]}, -1.0, 1.0, seed).detach();
  Tensor t = transpose(base, 2, 3).detach();
  t.requires_grad_(true);
  return t;
}
}  // namespace

TEST_CASE("pooling gradchecks with padding, stride and ceil mode", "[pool]") {
  Tensor x = test::random_leaf({1, 2, 5, 6}, -1, 1, 1);
  gradcheck1([](const Tensor& t) { return avg_pool2d(t, {3}, {2}, {1}); }, x);
  gradcheck1([](const Tensor& t) { return avg_pool2d(t, {3}, {2}, {1}, false, false); }, x);
  gradcheck1([](const Tensor& t) { return avg_pool2d(t, {3, 2}, {2, 1}, {1, 0}, true, false); },
             x);
  gradcheck1([](const Tensor& t) { return avg_pool2d(t, {2}); }, noncontig_leaf({1, 2, 4, 5}, 2));
  gradcheck1([](const Tensor& t) { return max_pool2d(t, {3}, {2}, {1}); }, x);
  gradcheck1([](const Tensor& t) { return max_pool2d(t, {2, 3}, {1, 2}, {1, 1}, true); }, x);
  gradcheck1([](const Tensor& t) { return max_pool2d(t, {2}); }, noncontig_leaf({1, 2, 4, 5}, 3));
  gradcheck1([](const Tensor& t) { return adaptive_avg_pool2d(t, {3, 4}); }, x);
  gradcheck1([](const Tensor& t) { return adaptive_avg_pool2d(t, {1}); },
             noncontig_leaf({2, 2, 3, 4}, 4));
  gradcheck1([](const Tensor& t) { return adaptive_avg_pool2d(t, {7, 8}); }, x);
}

TEST_CASE("interpolate gradchecks: every mode x align_corners x up/down, by size and scale",
          "[pool]") {
  Tensor x = test::random_leaf({1, 2, 4, 5}, -1, 1, 5);
  for (auto mode : {InterpolateMode::nearest, InterpolateMode::bilinear, InterpolateMode::bicubic}) {
    for (bool ac : {false, true}) {
      if (mode == InterpolateMode::nearest && ac) continue;
      INFO(interpolate_mode_name(mode) << " align_corners=" << ac);
      gradcheck1([&](const Tensor& t) { return interpolate(t, {7, 9}, {}, mode, ac); }, x);
      gradcheck1([&](const Tensor& t) { return interpolate(t, {3, 2}, {}, mode, ac); }, x);
      gradcheck1([&](const Tensor& t) { return interpolate(t, {}, {2.0, 1.5}, mode, ac); }, x);
      gradcheck1([&](const Tensor& t) { return interpolate(t, {}, {0.5, 0.7}, mode, ac); }, x);
    }
  }
  gradcheck1([](const Tensor& t) { return interpolate(t, {6, 4}, {}, InterpolateMode::bicubic); },
             noncontig_leaf({1, 2, 3, 4}, 6));
}

TEST_CASE("pools match PyTorch", "[pool]") {
  const char* F = "pool";
  test::check_golden_case(F, "avg_k3s2p1",
                          [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], {3}, {2}, {1}); });
  test::check_golden_case(F, "avg_k3s2p1_nopad", [](const std::vector<Tensor>& in) {
    return avg_pool2d(in[0], {3}, {2}, {1}, false, false);
  });
  test::check_golden_case(F, "avg_ceil", [](const std::vector<Tensor>& in) {
    return avg_pool2d(in[0], {3, 2}, {2, 3}, {1, 1}, true);
  });
  test::check_golden_case(F, "avg_ceil_nopad", [](const std::vector<Tensor>& in) {
    return avg_pool2d(in[0], {3}, {2}, {1}, true, false);
  });
  test::check_golden_case(F, "max_k3s2p1",
                          [](const std::vector<Tensor>& in) { return max_pool2d(in[0], {3}, {2}, {1}); });
  test::check_golden_case(F, "max_k2",
                          [](const std::vector<Tensor>& in) { return max_pool2d(in[0], {2}); });
  test::check_golden_case(F, "max_ceil", [](const std::vector<Tensor>& in) {
    return max_pool2d(in[0], {3}, {2}, {1}, true);
  });
  test::check_golden_case(F, "adaptive_5x3",
                          [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], {5, 3}); });
  test::check_golden_case(F, "adaptive_1",
                          [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], {1}); });
  test::check_golden_case(F, "adaptive_up",
                          [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], {6, 7}); });
}

TEST_CASE("interpolate matches PyTorch in every mode", "[pool]") {
  const char* F = "pool";
  struct Case {
    const char* name;
    std::vector<int64_t> size;
    std::vector<double> scale;
  };
  const std::vector<Case> cases = {{"up_size", {9, 16}, {}},       {"down_size", {4, 6}, {}},
                                   {"up_scale", {}, {2.0, 1.7}},   {"down_scale", {}, {0.6, 0.45}},
                                   {"scale3", {}, {3.0}},          {"odd_scale", {}, {1.1, 0.7}}};
  struct Mode {
    const char* tag;
    InterpolateMode mode;
    bool ac;
  };
  const std::vector<Mode> modes = {{"nearest", InterpolateMode::nearest, false},
                                   {"bilinear_noac", InterpolateMode::bilinear, false},
                                   {"bilinear_ac", InterpolateMode::bilinear, true},
                                   {"bicubic_noac", InterpolateMode::bicubic, false},
                                   {"bicubic_ac", InterpolateMode::bicubic, true}};
  for (const Mode& m : modes)
    for (const Case& c : cases)
      test::check_golden_case(F, std::string(m.tag) + "_" + c.name,
                              [&](const std::vector<Tensor>& in) {
                                return interpolate(in[0], c.size, c.scale, m.mode, m.ac);
                              });
  test::check_golden_case(F, "bicubic_x2", [](const std::vector<Tensor>& in) {
    return interpolate(in[0], {}, {2.0}, InterpolateMode::bicubic, false);
  });
  test::check_golden_case(
      F, "bicubic_x2_f32",
      [](const std::vector<Tensor>& in) {
        return interpolate(in[0], {}, {2.0}, interpolate_mode("bicubic"), false);
      },
      1e-5, 1e-6);
  test::check_golden_case(
      F, "bilinear_f32",
      [](const std::vector<Tensor>& in) {
        return interpolate(in[0], {13, 10}, {}, interpolate_mode("bilinear"), false);
      },
      1e-5, 1e-6);
  // Nearest selects elements: exact in f32 too.
  test::check_golden_case(
      F, "nearest_f32",
      [](const std::vector<Tensor>& in) {
        return interpolate(in[0], {}, {1.5, 0.75}, interpolate_mode("nearest"));
      },
      0, 0);
}

TEST_CASE("pool and interpolate errors name the op and shapes", "[pool]") {
  Tensor x = zeros({1, 2, 5, 5});
  REQUIRE_THROWS_WITH(avg_pool2d(zeros({2, 5, 5}), {2}),
                      Catch::Contains("avg_pool2d") && Catch::Contains("4-D") &&
                          Catch::Contains("[2,5,5]"));
  REQUIRE_THROWS_WITH(avg_pool2d(x, {3}, {1}, {2}), Catch::Contains("at most half the kernel"));
  REQUIRE_THROWS_WITH(max_pool2d(x, {6}), Catch::Contains("max_pool2d") &&
                                              Catch::Contains("too small"));
  REQUIRE_THROWS_WITH(max_pool2d(x, {2}, {0}), Catch::Contains("stride must be positive"));
  REQUIRE_THROWS_WITH(max_pool2d(x, {2, 2, 2}), Catch::Contains("kernel must have 1 or 2 values"));
  REQUIRE_THROWS_WITH(adaptive_avg_pool2d(x, {0, 2}),
                      Catch::Contains("adaptive_avg_pool2d") && Catch::Contains("positive"));
  REQUIRE_THROWS_WITH(adaptive_avg_pool2d(zeros({1, 2, 5, 5}, DType::i64), {2}),
                      Catch::Contains("floating"));
  REQUIRE_THROWS_WITH(interpolate(x, {4, 4}, {2.0}, InterpolateMode::bilinear),
                      Catch::Contains("exactly one of size and scale_factor"));
  REQUIRE_THROWS_WITH(interpolate(x, {}, {}, InterpolateMode::bilinear),
                      Catch::Contains("exactly one of size and scale_factor"));
  REQUIRE_THROWS_WITH(interpolate(x, {4, 4}, {}, InterpolateMode::nearest, true),
                      Catch::Contains("align_corners"));
  REQUIRE_THROWS_WITH(interpolate(x, {}, {0.1}, InterpolateMode::bicubic),
                      Catch::Contains("empty") && Catch::Contains("[1,2,5,5]"));
  REQUIRE_THROWS_WITH(interpolate(zeros({2, 5, 5}), {4}, {}, InterpolateMode::bicubic),
                      Catch::Contains("interpolate") && Catch::Contains("4-D"));
  REQUIRE_THROWS_WITH(interpolate_mode("area"), Catch::Contains("unknown mode 'area'"));
}

TEST_CASE("interpolate and pools are bitwise equal on 1 and 2 threads", "[pool]") {
  const int saved = get_num_threads();
  Tensor x0 = randn({2, 16, 24, 32});
  Tensor gy = randn({2, 16, 48, 64});
  Tensor gp = randn({2, 16, 12, 16});
  std::vector<Tensor> outs[2];
  for (int t = 1; t <= 2; ++t) {
    set_num_threads(t);
    Tensor x = x0.clone().detach();
    x.requires_grad_(true);
    Tensor y = interpolate(x, {}, {2.0}, InterpolateMode::bicubic);
    y.backward(gy);
    Tensor gi = x.grad();
    x.set_grad(Tensor());
    Tensor p = avg_pool2d(x, {3}, {2}, {1});
    p.backward(gp);
    outs[t - 1] = {y.detach(), gi, p.detach(), x.grad()};
  }
  set_num_threads(saved);
  for (size_t i = 0; i < outs[0].size(); ++i) {
    INFO("tensor " << i);
    REQUIRE(test::bitwise_equal(outs[0][i], outs[1][i]));
  }
}
