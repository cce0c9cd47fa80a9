// batch_norm, layer_norm, layer_norm2d: gradchecks, PyTorch goldens (tools/golden/gen_norm.py),
// running-statistics updates, errors and thread-count determinism.
#include "autograd/grad_mode.h"
#include "core/parallel.h"
#include "ops/norm.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {
// A non-contiguous f64 leaf with the given logical shape [a,b,c,d] (built permuted).
Tensor noncontig_leaf4(const Shape& s, uint64_t seed) {
  Tensor base = test::random_leaf({s[0], s[2], s[3], s[1]}, -1.0, 1.0, seed).detach();
  Tensor t = permute(base, {0, 3, 1, 2}).detach();
  REQUIRE_FALSE(t.is_contiguous());
  t.requires_grad_(true);
  return t;
}
}  // namespace

TEST_CASE("batch_norm training gradcheck, with and without affine", "[norm]") {
  Tensor x = test::random_leaf({3, 4, 3, 3}, -1.0, 2.0, 1);
  Tensor w = test::random_leaf({4}, 0.5, 1.5, 2);
  Tensor b = test::random_leaf({4}, -1.0, 1.0, 3);
  EVIT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true);
      },
      (std::vector<Tensor>{x, w, b}));
  EVIT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-3);
      },
      (std::vector<Tensor>{x}));
  // Non-contiguous input, with running stats being updated on every call (does not affect y).
  Tensor xn = noncontig_leaf4({3, 4, 3, 3}, 4);
  Tensor rm = zeros({4}, DType::f64), rv = ones({4}, DType::f64);
  EVIT_REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return batch_norm(in[0], in[1], Tensor(), rm, rv, true);
      },
      (std::vector<Tensor>{xn, w}));
}

TEST_CASE("batch_norm eval gradcheck, with and without affine", "[norm]") {
  Tensor x = test::random_leaf({3, 4, 3, 3}, -1.0, 2.0, 5);
  Tensor w = test::random_leaf({4}, 0.5, 1.5, 6);
  Tensor b = test::random_leaf({4}, -1.0, 1.0, 7);
  Tensor rm = uniform({4}, -0.5, 0.5, DType::f64), rv = uniform({4}, 0.5, 1.5, DType::f64);
  EVIT_REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, false); },
      (std::vector<Tensor>{x, w, b}));
  EVIT_REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return batch_norm(in[0], Tensor(), Tensor(), rm, rv, false);
      },
      (std::vector<Tensor>{noncontig_leaf4({3, 4, 3, 3}, 8)}));
}

TEST_CASE("layer_norm gradcheck over the last 1 and 2 dims", "[norm]") {
  Tensor x = test::random_leaf({2, 3, 4}, -1.0, 1.0, 9);
  Tensor w1 = test::random_leaf({4}, 0.5, 1.5, 10), b1 = test::random_leaf({4}, -1, 1, 11);
  Tensor w2 = test::random_leaf({3, 4}, 0.5, 1.5, 12), b2 = test::random_leaf({3, 4}, -1, 1, 13);
  EVIT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], {4}, in[1], in[2]); },
      (std::vector<Tensor>{x, w1, b1}));
  EVIT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], {3, 4}, in[1], in[2], 1e-6); },
      (std::vector<Tensor>{x, w2, b2}));
  // Non-contiguous input, no affine.
  Tensor xt = transpose(test::random_leaf({4, 2, 3}, -1, 1, 14).detach(), 0, 2).detach();
  xt.requires_grad_(true);
  EVIT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], {4}, Tensor(), Tensor()); },
      (std::vector<Tensor>{xt}));
}

TEST_CASE("layer_norm2d gradcheck", "[norm]") {
  Tensor x = test::random_leaf({2, 5, 3, 4}, -1.0, 1.0, 15);
  Tensor w = test::random_leaf({5}, 0.5, 1.5, 16), b = test::random_leaf({5}, -1, 1, 17);
  EVIT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm2d(in[0], in[1], in[2], 1e-6); },
      (std::vector<Tensor>{x, w, b}));
  EVIT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm2d(in[0], Tensor(), Tensor()); },
      (std::vector<Tensor>{noncontig_leaf4({2, 3, 2, 3}, 18)}));
}

TEST_CASE("batch_norm matches PyTorch, including running statistics after two calls", "[norm]") {
  const char* F = "norm";
  {
    Tensor rm = test::golden_tensor(F, "bn_train.rm0").clone();
    Tensor rv = test::golden_tensor(F, "bn_train.rv0").clone();
    const uint64_t v0 = rm.version();
    batch_norm(test::golden_tensor(F, "bn_train.x_first"), Tensor(), Tensor(), rm, rv, true, 0.1,
               1e-5);
    REQUIRE(rm.version() > v0);
    test::check_golden_case(F, "bn_train", [&](const std::vector<Tensor>& in) {
      return batch_norm(in[0], in[1], in[2], rm, rv, true, 0.1, 1e-5);
    });
    EVIT_REQUIRE_CLOSE(rm, test::golden_tensor(F, "bn_train.rm"), 1e-12, 1e-14);
    EVIT_REQUIRE_CLOSE(rv, test::golden_tensor(F, "bn_train.rv"), 1e-12, 1e-14);
  }
  test::check_golden_case(F, "bn_train_plain", [](const std::vector<Tensor>& in) {
    return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-3);
  });
  {
    Tensor rm = test::golden_tensor(F, "bn_eval.rm"), rv = test::golden_tensor(F, "bn_eval.rv");
    const uint64_t v0 = rm.version();
    test::check_golden_case(F, "bn_eval", [&](const std::vector<Tensor>& in) {
      return batch_norm(in[0], in[1], in[2], rm, rv, false, 0.1, 1e-5);
    });
    REQUIRE(rm.version() == v0);  // eval mode leaves the statistics alone
  }
  {
    Tensor rm = test::golden_tensor(F, "bn_f32.rm0").clone();
    Tensor rv = test::golden_tensor(F, "bn_f32.rv0").clone();
    test::check_golden_case(
        F, "bn_f32",
        [&](const std::vector<Tensor>& in) {
          return batch_norm(in[0], in[1], in[2], rm, rv, true, 0.2, 1e-5);
        },
        2e-4, 2e-5);
    EVIT_REQUIRE_CLOSE(rm, test::golden_tensor(F, "bn_f32.rm"), 1e-6, 1e-6);
    EVIT_REQUIRE_CLOSE(rv, test::golden_tensor(F, "bn_f32.rv"), 1e-5, 1e-6);
  }
}

TEST_CASE("layer_norm and layer_norm2d match PyTorch", "[norm]") {
  const char* F = "norm";
  test::check_golden_case(F, "ln1", [](const std::vector<Tensor>& in) {
    return layer_norm(in[0], {5}, in[1], in[2], 1e-5);
  });
  test::check_golden_case(F, "ln2", [](const std::vector<Tensor>& in) {
    return layer_norm(in[0], {3, 4}, in[1], in[2], 1e-6);
  });
  test::check_golden_case(F, "ln_plain", [](const std::vector<Tensor>& in) {
    return layer_norm(in[0], {6}, Tensor(), Tensor(), 1e-5);
  });
  test::check_golden_case(F, "ln2d", [](const std::vector<Tensor>& in) {
    return layer_norm2d(in[0], in[1], in[2], 1e-6);
  });
  test::check_golden_case(
      F, "ln2d_f32",
      [](const std::vector<Tensor>& in) { return layer_norm2d(in[0], in[1], in[2], 1e-5); }, 1e-4,
      1e-5);
}

TEST_CASE("batch_norm running statistics use the unbiased variance", "[norm]") {
  // One channel, values {1, 2, 3, 6}: mean 3, biased var 3.5, unbiased var 14/3.
  Tensor x = from_vector<double>({1, 2, 3, 6}, {4, 1});
  Tensor rm = zeros({1}, DType::f64), rv = ones({1}, DType::f64);
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.5, 0.0);
  REQUIRE(rm.item<double>() == Approx(1.5).epsilon(1e-14));
  REQUIRE(rv.item<double>() == Approx(0.5 + 0.5 * 14.0 / 3.0).epsilon(1e-14));
  REQUIRE(y.to_vector<double>()[3] == Approx(3.0 / std::sqrt(3.5)).epsilon(1e-13));
}

TEST_CASE("normalization errors name the op and shapes", "[norm]") {
  Tensor x = zeros({2, 3, 4, 4});
  Tensor c3 = ones({3}), c4 = ones({4});
  REQUIRE_THROWS_WITH(batch_norm(zeros({5}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                      Catch::Contains("batch_norm") && Catch::Contains("at least 2-D"));
  REQUIRE_THROWS_WITH(batch_norm(x, c4, Tensor(), Tensor(), Tensor(), true),
                      Catch::Contains("weight must be [3]") && Catch::Contains("f32 [4]"));
  REQUIRE_THROWS_WITH(batch_norm(x, c3, ones({3}, DType::f64), Tensor(), Tensor(), true),
                      Catch::Contains("bias dtype f64"));
  REQUIRE_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
                      Catch::Contains("eval mode"));
  REQUIRE_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), c3, Tensor(), true),
                      Catch::Contains("given together"));
  REQUIRE_THROWS_WITH(batch_norm(zeros({1, 3, 1, 1}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                      Catch::Contains("more than 1 value per channel"));
  REQUIRE_THROWS_WITH(batch_norm(zeros({2, 3}, DType::i64), Tensor(), Tensor(), Tensor(), Tensor(),
                                 true),
                      Catch::Contains("floating"));
  REQUIRE_THROWS_WITH(layer_norm(x, {3}, Tensor(), Tensor()),
                      Catch::Contains("layer_norm") && Catch::Contains("[2,3,4,4]"));
  REQUIRE_THROWS_WITH(layer_norm(x, {4, 4}, c4, Tensor()),
                      Catch::Contains("weight must be [4,4]"));
  REQUIRE_THROWS_WITH(layer_norm2d(zeros({2, 3, 4}), c3, c3),
                      Catch::Contains("layer_norm2d") && Catch::Contains("4-D"));
  REQUIRE_THROWS_WITH(layer_norm2d(x, c4, Tensor()), Catch::Contains("weight must be [3]"));
}

TEST_CASE("batch_norm forward and backward are bitwise equal on 1 and 2 threads", "[norm]") {
  const int saved = get_num_threads();
  Tensor x0 = mul(randn({4, 64, 32, 32}), 2.0);
  x0 = add(x0, 0.5);
  Tensor w0 = uniform({64}, 0.5, 1.5), b0 = uniform({64}, -1, 1);
  Tensor gy = randn({4, 64, 32, 32});
  std::vector<Tensor> outs[2];
  for (int t = 1; t <= 2; ++t) {
    set_num_threads(t);
    Tensor x = x0.clone().detach(), w = w0.clone().detach(), b = b0.clone().detach();
    x.requires_grad_(true), w.requires_grad_(true), b.requires_grad_(true);
    Tensor rm = zeros({64}), rv = ones({64});
    Tensor y = batch_norm(x, w, b, rm, rv, true);
    y.backward(gy);
    outs[t - 1] = {y.detach(), x.grad(), w.grad(), b.grad(), rm, rv};
  }
  set_num_threads(saved);
  for (size_t i = 0; i < outs[0].size(); ++i) {
    INFO("tensor " << i);
    REQUIRE(test::bitwise_equal(outs[0][i], outs[1][i]));
  }
}

namespace {
struct FusedCase {
  ActivationKind act;
  const char* name;
  Tensor (*op)(const Tensor&);
};
const FusedCase kFusedCases[] = {
    {ActivationKind::relu, "relu", relu},          {ActivationKind::relu6, "relu6", relu6},
    {ActivationKind::hardswish, "hardswish", hardswish}, {ActivationKind::silu, "silu", silu},
    {ActivationKind::gelu, "gelu", gelu},          {ActivationKind::gelu_tanh, "gelu_tanh", gelu_tanh},
};
}  // namespace

TEST_CASE("batch_norm_act gradcheck for every activation, training and eval", "[norm]") {
  Tensor x = test::random_leaf({3, 4, 3, 3}, -1.0, 2.0, 11);
  Tensor w = test::random_leaf({4}, 0.5, 4.0, 12);  // normalised values reach past hardswish's ±3 and relu6's 6
  Tensor b = test::random_leaf({4}, -1.0, 1.0, 13);
  Tensor rm = uniform({4}, -0.5, 0.5, DType::f64), rv = uniform({4}, 0.5, 1.5, DType::f64);
  for (const FusedCase& c : kFusedCases) {
    INFO(c.name);
    const ActivationKind act = c.act;
    EVIT_REQUIRE_GRADCHECK(
        [act](const std::vector<Tensor>& in) {
          return batch_norm_act(in[0], in[1], in[2], Tensor(), Tensor(), true, 0.1, 1e-5, act);
        },
        (std::vector<Tensor>{x, w, b}));
    EVIT_REQUIRE_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return batch_norm_act(in[0], in[1], in[2], rm, rv, false, 0.1, 1e-5, act);
        },
        (std::vector<Tensor>{x, w, b}));
  }
}

TEST_CASE("batch_norm_act gives the activation of batch_norm bit for bit, values and gradients", "[norm]") {
  Tensor x0 = add(mul(randn({4, 16, 12, 10}), 2.0), 0.5);
  Tensor w0 = uniform({16}, 0.5, 3.0), b0 = uniform({16}, -1, 1);
  Tensor gy = randn({4, 16, 12, 10});
  const Tensor rm0 = uniform({16}, -0.2, 0.2), rv0 = uniform({16}, 0.8, 1.2);
  for (const FusedCase& c : kFusedCases)
    for (bool training : {true, false}) {
      INFO(c.name << (training ? " training" : " eval"));
      std::vector<Tensor> got[2];
      for (int fused = 0; fused < 2; ++fused) {
        Tensor x = x0.clone().detach(), w = w0.clone().detach(), b = b0.clone().detach();
        x.requires_grad_(true), w.requires_grad_(true), b.requires_grad_(true);
        Tensor rm = rm0.clone(), rv = rv0.clone();
        Tensor y = fused ? batch_norm_act(x, w, b, rm, rv, training, 0.1, 1e-5, c.act)
                         : c.op(batch_norm(x, w, b, rm, rv, training, 0.1, 1e-5));
        y.backward(gy);
        got[fused] = {y.detach(), x.grad(), w.grad(), b.grad(), rm, rv};
      }
      for (size_t i = 0; i < got[0].size(); ++i) {
        INFO("tensor " << i << " (y, dx, dw, db, running mean, running var)");
        REQUIRE(test::bitwise_equal(got[1][i], got[0][i]));
      }
      // The activation did something: not the plain normalisation.
      if (training) CHECK_FALSE(test::bitwise_equal(got[1][0], batch_norm(x0, w0, b0, Tensor(), Tensor(), true)));
    }
}
