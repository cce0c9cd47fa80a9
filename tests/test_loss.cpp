// Losses: PyTorch goldens for every cross-entropy variant, BCE with logits, mse / l1 /
// smooth_l1; f64 gradchecks (including strided inputs and pos_weight); error messages.
#include <string>

#include "core/generator.h"
#include "core/parallel.h"
#include "ops/loss.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {

Reduction reduction_of(const std::string& name) {
  if (name.size() >= 5 && name.compare(name.size() - 5, 5, "_none") == 0) return Reduction::none;
  if (name.size() >= 4 && name.compare(name.size() - 4, 4, "_sum") == 0) return Reduction::sum;
  return Reduction::mean;
}

GradcheckFn ce_fn(Reduction red, double ls = 0.0, int64_t ignore = -100) {
  return [=](const std::vector<Tensor>& in) {
    return cross_entropy(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), ignore, red, ls);
  };
}

}  // namespace

TEST_CASE("cross_entropy matches PyTorch (class indices, weights, ignore_index, smoothing)",
          "[loss]") {
  struct Case {
    const char* name;
    double ls;
    int64_t ignore;
  };
  const Case cases[] = {
      {"ce_mean", 0, -100},          {"ce_sum", 0, -100},
      {"ce_none", 0, -100},          {"ce_weight_mean", 0, -100},
      {"ce_ignore_mean", 0, -100},   {"ce_ignore_weight_mean", 0, -100},
      {"ce_ignore_weight_sum", 0, -100}, {"ce_ignore_none", 0, -100},
      {"ce_ignore7_mean", 0, 3},     {"ce_ls_mean", 0.1, -100},
      {"ce_ls_sum", 0.1, -100},      {"ce_ls_none", 0.1, -100},
      {"ce_ls_weight_mean", 0.2, -100}, {"ce_ls_weight_none", 0.2, -100},
      {"ce_sp_mean", 0, -100},       {"ce_sp_weight_mean", 0, -100},
      {"ce_sp_none", 0, -100},       {"ce_sp_ls_weight_mean", 0.1, -100},
      {"ce_sp_ls_mean", 0.1, -100},
  };
  for (const Case& c : cases) {
    INFO("case " << c.name);
    test::check_golden_case("loss", c.name, ce_fn(reduction_of(c.name), c.ls, c.ignore), 1e-10,
                            1e-12);
  }
}

TEST_CASE("cross_entropy with probability targets matches PyTorch", "[loss]") {
  const std::pair<const char*, double> cases[] = {{"ce_soft_mean", 0},
                                                  {"ce_soft_sum", 0},
                                                  {"ce_soft_none", 0},
                                                  {"ce_soft_ls_weight_mean", 0.1},
                                                  {"ce_soft_sp_mean", 0}};
  for (auto [name, ls] : cases) {
    INFO("case " << name);
    test::check_golden_case("loss", name, ce_fn(reduction_of(name), ls), 1e-10, 1e-12);
  }
}

TEST_CASE("binary_cross_entropy_with_logits and regression losses match PyTorch", "[loss]") {
  for (std::string red : {"mean", "sum", "none"}) {
    Reduction r = reduction_of("_" + red);
    INFO("reduction " << red);
    test::check_golden_case(
        "loss", "bce_" + red,
        [r](const std::vector<Tensor>& in) {
          return binary_cross_entropy_with_logits(in[0], in[1], Tensor(), r);
        },
        1e-10, 1e-12);
    test::check_golden_case(
        "loss", "bce_pw_" + red,
        [r](const std::vector<Tensor>& in) {
          return binary_cross_entropy_with_logits(in[0], in[1], in[2], r);
        },
        1e-10, 1e-12);
    test::check_golden_case(
        "loss", "mse_" + red,
        [r](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); }, 1e-10, 1e-12);
    test::check_golden_case(
        "loss", "l1_" + red,
        [r](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1], r); }, 1e-10, 1e-12);
    test::check_golden_case(
        "loss", "sl1_" + red,
        [r](const std::vector<Tensor>& in) { return smooth_l1_loss(in[0], in[1], r, 1.0); },
        1e-10, 1e-12);
    test::check_golden_case(
        "loss", "sl1b05_" + red,
        [r](const std::vector<Tensor>& in) { return smooth_l1_loss(in[0], in[1], r, 0.5); },
        1e-10, 1e-12);
  }
}

TEST_CASE("cross_entropy gradchecks", "[loss]") {
  Tensor t = from_vector<int64_t>({2, -100, 0, 4, 1}, {5});
  Tensor w = from_vector<double>({0.5, 1.0, 2.0, 1.5, 0.7}, {5});
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    INFO("reduction " << reduction_name(r));
    Tensor x = test::random_leaf({5, 5}, -2, 2, 3);
    EVIT_REQUIRE_GRADCHECK(
        [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, w, -100, r, 0.15); },
        std::vector<Tensor>{x});
  }
  // Spatial logits given as a non-contiguous view ([N, H, W, C] permuted to [N, C, H, W]).
  Tensor xs = permute(test::random_leaf({2, 3, 2, 4}, -2, 2, 4), {0, 3, 1, 2}).detach();
  xs.requires_grad_();
  Tensor ts = from_vector<int64_t>({0, 1, 2, 3, -100, 1, 2, 0, 3, 3, 1, 0}, {2, 3, 2});
  EVIT_REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], ts, Tensor(), -100, Reduction::mean, 0.1); },
      std::vector<Tensor>{xs});
  // Probability targets: gradient for logits and targets.
  Tensor xp = test::random_leaf({3, 4}, -2, 2, 5), tp = test::random_leaf({3, 4}, 0, 1, 6);
  EVIT_REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return cross_entropy(in[0], in[1], Tensor(), -100, Reduction::mean, 0.2);
      },
      (std::vector<Tensor>{xp, tp}));
}

TEST_CASE("elementwise loss gradchecks, pos_weight included", "[loss]") {
  Tensor x = test::random_leaf({3, 4}, -3, 3, 7);
  Tensor t = test::random_leaf({3, 4}, 0, 1, 8);
  Tensor pw = test::random_leaf({4}, 0.5, 2, 9);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    INFO("reduction " << reduction_name(r));
    EVIT_REQUIRE_GRADCHECK(
        [r](const std::vector<Tensor>& in) {
          return binary_cross_entropy_with_logits(in[0], in[1], in[2], r);
        },
        (std::vector<Tensor>{x, t, pw}));
    EVIT_REQUIRE_GRADCHECK([r](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); },
                           (std::vector<Tensor>{x, t}));
    // x in [-3, 3], t in [0, 1): differences stay away from 0 and from +-beta only by chance,
    // so use a transposed (non-contiguous) x with values far from the kinks.
    Tensor xt = transpose(from_vector<double>({3.1, -2.2, 2.4, -1.7, 2.9, -2.6, 1.9, 2.2, -2.8,
                                               1.3, -1.4, 2.7},
                                              {4, 3}),
                          0, 1)
                    .detach();
    xt.requires_grad_();
    EVIT_REQUIRE_GRADCHECK([r](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1], r); },
                           (std::vector<Tensor>{xt, t}));
    EVIT_REQUIRE_GRADCHECK(
        [r](const std::vector<Tensor>& in) { return smooth_l1_loss(in[0], in[1], r, 0.5); },
        (std::vector<Tensor>{xt, t}));
  }
}

TEST_CASE("BCE with logits is stable for large logits", "[loss]") {
  Tensor x = from_vector<double>({-800.0, 800.0, -50.0, 50.0}, {4});
  Tensor t = from_vector<double>({1.0, 0.0, 0.0, 1.0}, {4});
  Tensor l = binary_cross_entropy_with_logits(x, t, Tensor(), Reduction::none);
  std::vector<double> v = l.to_vector<double>();
  CHECK(v[0] == Approx(800.0));
  CHECK(v[1] == Approx(800.0));
  CHECK(v[2] == Approx(0.0).margin(1e-12));  // -50 + 50 + 1.9e-22 cancels, as in torch
  CHECK(v[3] == Approx(std::log1p(std::exp(-50.0))));  // 1.9e-22, no cancellation here
}

TEST_CASE("cross_entropy reduction is bitwise identical on 1 and 2 threads", "[loss]") {
  Generator g(3);
  Tensor x = uniform({2, 19, 64, 64}, -4, 4, {DType::f32}, &g);
  Tensor t = randint(0, 19, {2, 64, 64}, DType::i64, &g);
  auto run = [&](int n) {
    set_num_threads(n);
    Tensor xx = x.clone().detach();
    xx.requires_grad_();
    Tensor l = cross_entropy(xx, t, Tensor(), -100, Reduction::mean, 0.1);
    l.backward();
    return std::make_pair(l.detach(), xx.grad());
  };
  const int before = get_num_threads();
  auto a = run(1), b = run(2);
  set_num_threads(before);
  REQUIRE(test::bitwise_equal(a.first, b.first));
  REQUIRE(test::bitwise_equal(a.second, b.second));
}

TEST_CASE("loss errors name values, positions and shapes", "[loss]") {
  Tensor x = zeros({2, 3, 2, 2}, DType::f64);
  Tensor t = zeros({2, 2, 2}, DType::i64);
  Tensor bad = from_vector<int64_t>({0, 1, 2, 0, 1, 5, 0, 0}, {2, 2, 2});
  REQUIRE_THROWS_WITH(cross_entropy(x, bad),
                      Catch::Contains("target value 5") && Catch::Contains("[1,0,1]") &&
                          Catch::Contains("[0, 3)"));
  Tensor neg = from_vector<int64_t>({-1, 0}, {2});
  REQUIRE_THROWS_WITH(cross_entropy(zeros({2, 3}, DType::f64), neg),
                      Catch::Contains("target value -1") && Catch::Contains("[0]"));
  REQUIRE_THROWS_WITH(cross_entropy(x, zeros({2, 2}, DType::i64)),
                      Catch::Contains("[2,3,2,2]") && Catch::Contains("[2,2]") &&
                          Catch::Contains("[2,2,2]"));
  REQUIRE_THROWS_WITH(cross_entropy(x, t, zeros({4}, DType::f64)),
                      Catch::Contains("weight") && Catch::Contains("[4]"));
  REQUIRE_THROWS_WITH(cross_entropy(zeros({2, 3}, DType::f64), zeros({2, 4}, DType::f64)),
                      Catch::Contains("[2,3]") && Catch::Contains("[2,4]"));
  REQUIRE_THROWS_WITH(cross_entropy(zeros({3}, DType::f64), zeros({}, DType::i64)),
                      Catch::Contains("cross_entropy") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(cross_entropy(x, t, Tensor(), -100, Reduction::mean, 1.5),
                      Catch::Contains("label_smoothing"));
  REQUIRE_THROWS_WITH(mse_loss(zeros({2, 3}), zeros({3, 2})),
                      Catch::Contains("mse_loss") && Catch::Contains("[2,3]") &&
                          Catch::Contains("[3,2]"));
  REQUIRE_THROWS_WITH(l1_loss(zeros({2}), zeros({2}, DType::f64)), Catch::Contains("dtypes differ"));
  REQUIRE_THROWS_WITH(
      binary_cross_entropy_with_logits(zeros({2, 3}), zeros({2, 3}), zeros({4})),
      Catch::Contains("binary_cross_entropy_with_logits") && Catch::Contains("[4]"));
  REQUIRE_THROWS_WITH(smooth_l1_loss(zeros({2}), zeros({2}), Reduction::mean, -1.0),
                      Catch::Contains("beta"));
}
