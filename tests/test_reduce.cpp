// Reductions: var, max/min (with indices), global max/min, argmax; determinism of sum.
#include <cmath>
#include <limits>

#include "core/parallel.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;
using test::permuted_leaf;
using test::require_gradcheck;
using test::ThreadCountGuard;

// ---- var -----------------------------------------------------------------------------------

TEST_CASE("var gradcheck over several dims, keepdim, negative dims", "[reduce]") {
  Tensor x = test::random_leaf({2, 3, 4}, -1, 1, 1);
  require_gradcheck([](const std::vector<Tensor>& in) { return var(in[0], {0, 2}); }, {x});
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return var(in[0], {-1}, false, true); }, {x});
  require_gradcheck([](const std::vector<Tensor>& in) { return var(in[0]); }, {x});
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return var(in[0], {1, -3}, true, true); }, {x});
}

TEST_CASE("var gradcheck on a non-contiguous input", "[reduce]") {
  Tensor x = permuted_leaf({3, 4, 2}, {2, 0, 1}, 2);  // [2,3,4]
  require_gradcheck([](const std::vector<Tensor>& in) { return var(in[0], {1}); }, {x});
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return var(in[0], {0, -1}, false, true); }, {x});
}

TEST_CASE("var matches PyTorch", "[reduce]") {
  test::check_golden_case("reduce", "var_unbiased_023", [](const std::vector<Tensor>& in) {
    return var(in[0], {0, 2, 3}, true);
  });
  test::check_golden_case("reduce", "var_biased_023", [](const std::vector<Tensor>& in) {
    return var(in[0], {0, 2, 3}, false);
  });
  test::check_golden_case("reduce", "var_keepdim_1_neg1", [](const std::vector<Tensor>& in) {
    return var(in[0], {1, -1}, true, true);
  });
  test::check_golden_case("reduce", "var_all",
                          [](const std::vector<Tensor>& in) { return var(in[0]); });
  test::check_golden_case(
      "reduce", "var_f32_dim0",
      [](const std::vector<Tensor>& in) { return var(in[0], {0}, false); }, 1e-5, 1e-6);
}

TEST_CASE("var of a single element is NaN when unbiased and 0 when biased", "[reduce]") {
  Tensor x = from_vector<double>({2.5, 1.0}, {2, 1});
  std::vector<double> u = var(x, {1}, true).to_vector<double>();
  REQUIRE(std::isnan(u[0]));
  REQUIRE(std::isnan(u[1]));
  REQUIRE(var(x, {1}, false).to_vector<double>() == std::vector<double>{0.0, 0.0});
}

TEST_CASE("var is accurate for large offsets (two-pass, double accumulation)", "[reduce]") {
  // sum(x^2) - n mean^2 in f32 would lose everything here.
  std::vector<float> v;
  for (int i = 0; i < 1000; ++i) v.push_back(1.0e4f + static_cast<float>(i % 2));
  Tensor x = from_vector<float>(v, {1000});
  REQUIRE(std::abs(var(x, {}, false).item<double>() - 0.25) < 1e-6);
}

TEST_CASE("var errors name the op and the input", "[reduce]") {
  REQUIRE_THROWS_WITH(var(zeros({2, 3}, DType::i64)),
                      Catch::Contains("var") && Catch::Contains("i64 [2,3]"));
  REQUIRE_THROWS_WITH(var(zeros({2, 3}, DType::f64), {2}),
                      Catch::Contains("var: dim 2 out of range"));
  REQUIRE_THROWS_WITH(var(zeros({2, 3}, DType::f64), {1, -1}),
                      Catch::Contains("var: dim -1 listed twice"));
}

TEST_CASE("var is bitwise identical on 1 and 2 threads", "[reduce]") {
  ThreadCountGuard guard;
  Tensor x = randn({2, 64, 32, 32}, DType::f32);
  Tensor big = randn({1 << 20}, DType::f32);
  set_num_threads(1);
  Tensor a = var(x, {0, 2, 3}), b = var(big);
  set_num_threads(2);
  Tensor c = var(x, {0, 2, 3}), d = var(big);
  REQUIRE(test::bitwise_equal(a, c));
  REQUIRE(test::bitwise_equal(b, d));
}

// ---- max / min / argmax ----------------------------------------------------------------------

TEST_CASE("max/min along a dim: gradcheck with keepdim, negative dims, non-contiguous",
          "[reduce]") {
  Tensor x = test::random_leaf({2, 3, 4}, -1, 1, 3);
  require_gradcheck([](const std::vector<Tensor>& in) { return max(in[0], 1).first; }, {x});
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return min(in[0], -1, true).first; }, {x});
  require_gradcheck([](const std::vector<Tensor>& in) { return max(in[0], 0, true).first; },
                         {x});
  Tensor xp = permuted_leaf({4, 2, 3}, {1, 2, 0}, 4);  // [2,3,4]
  require_gradcheck([](const std::vector<Tensor>& in) { return max(in[0], -2).first; }, {xp});
  require_gradcheck([](const std::vector<Tensor>& in) { return min(in[0], 2).first; }, {xp});
}

TEST_CASE("global max/min gradcheck (also non-contiguous)", "[reduce]") {
  Tensor x = test::random_leaf({3, 4}, -1, 1, 5);
  require_gradcheck([](const std::vector<Tensor>& in) { return max(in[0]); }, {x});
  require_gradcheck([](const std::vector<Tensor>& in) { return min(in[0]); }, {x});
  Tensor xp = permuted_leaf({4, 3}, {1, 0}, 6);
  require_gradcheck([](const std::vector<Tensor>& in) { return max(in[0]); }, {xp});
}

TEST_CASE("max/min/argmax match PyTorch (values, indices, gradients)", "[reduce]") {
  struct Case {
    const char* name;
    bool is_max;
    int64_t dim;
    bool keep;
  };
  for (Case c : {Case{"max_dim1", true, 1, false}, Case{"min_dim1", false, 1, false},
                 Case{"max_dim_neg1_keep", true, -1, true}, Case{"min_dim0_keep", false, 0, true}}) {
    test::check_golden_case("reduce", c.name, [c](const std::vector<Tensor>& in) {
      return c.is_max ? max(in[0], c.dim, c.keep).first : min(in[0], c.dim, c.keep).first;
    });
    Tensor x = test::golden_tensor("reduce", std::string(c.name) + ".x0");
    Tensor idx = c.is_max ? max(x, c.dim, c.keep).second : min(x, c.dim, c.keep).second;
    INFO(c.name);
    REQUIRE(idx.dtype() == DType::i64);
    REQUIRE(test::bitwise_equal(idx, test::golden_tensor("reduce", std::string(c.name) + ".indices")));
  }
  test::check_golden_case("reduce", "max_all",
                          [](const std::vector<Tensor>& in) { return max(in[0]); });
  test::check_golden_case("reduce", "min_all",
                          [](const std::vector<Tensor>& in) { return min(in[0]); });
  Tensor x = test::golden_tensor("reduce", "argmax_dim2.x0");
  REQUIRE(test::bitwise_equal(argmax(x, 2), test::golden_tensor("reduce", "argmax_dim2.y")));
  REQUIRE(test::bitwise_equal(argmax(x, 0, true),
                              test::golden_tensor("reduce", "argmax_dim0_keep.y")));
}

TEST_CASE("max/min pick the first occurrence and send the gradient there only", "[reduce]") {
  Tensor x = test::leaf(from_vector<double>({1, 3, 3, 2, 0, 0, -1, 0}, {2, 4}));
  auto [v, i] = max(x, 1);
  REQUIRE(v.to_vector<double>() == std::vector<double>{3, 0});
  REQUIRE(i.to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  auto [mv, mi] = min(x, 1);
  REQUIRE(mv.to_vector<double>() == std::vector<double>{1, -1});
  REQUIRE(mi.to_vector<int64_t>() == std::vector<int64_t>{0, 2});
  sum(v).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0, 1, 0, 0, 0});

  Tensor y = test::leaf(from_vector<double>({0, 5, 1, 5, 5}, {5}));
  Tensor m = max(y);
  REQUIRE(m.dim() == 0);
  REQUIRE(m.item<double>() == 5);
  m.backward();
  REQUIRE(y.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0, 0});
  REQUIRE(argmax(from_vector<double>({2, 7, 7}, {3}), 0).item<int64_t>() == 1);
}

TEST_CASE("max/min propagate NaN and work on integer dtypes", "[reduce]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = from_vector<double>({1, nan, 3, nan}, {4});
  auto [v, i] = max(x, 0);
  REQUIRE(std::isnan(v.item<double>()));
  REQUIRE(i.item<int64_t>() == 1);
  REQUIRE(std::isnan(min(x).item<double>()));
  Tensor n = from_vector<int64_t>({4, -2, 9, 9, -7, 0}, {2, 3});
  REQUIRE(max(n, 0).first.to_vector<int64_t>() == std::vector<int64_t>{9, -2, 9});
  REQUIRE(min(n, 1).second.to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  REQUIRE(max(n).item<int64_t>() == 9);
}

TEST_CASE("global max/min over many chunks agree with a scalar scan", "[reduce]") {
  ThreadCountGuard guard;
  Tensor x = randn({300000}, DType::f32);
  std::vector<float> v = x.to_vector<float>();
  size_t best = 0;
  for (size_t k = 1; k < v.size(); ++k)
    if (v[k] < v[best]) best = k;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    REQUIRE(min(x).item<float>() == v[best]);
    Tensor l = test::leaf(x);
    min(l).backward();
    REQUIRE(l.grad().to_vector<double>()[best] == 1.0);
    REQUIRE(sum(l.grad()).item<double>() == 1.0);
  }
}

namespace {

// The definition of first-occurrence max/min (NaN wins), as a plain scan over a strided run.
std::pair<double, int64_t> reference_best(const std::vector<double>& v, int64_t start, int64_t n,
                                          int64_t stride, bool is_max) {
  double best = v[start];
  int64_t bi = 0;
  for (int64_t k = 1; k < n; ++k) {
    double c = v[start + k * stride];
    bool take = std::isnan(c) ? !std::isnan(best)
                              : (!std::isnan(best) && (is_max ? c > best : c < best));
    if (take) {
      best = c;
      bi = k;
    }
  }
  return {best, bi};
}

}  // namespace

TEST_CASE("max/min over the last dim: first occurrence with many ties and NaNs", "[reduce]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Row lengths around the kernel's block widths; values from {0,1,2,3} so ties are everywhere.
  for (int64_t n : {1, 5, 31, 32, 33, 64, 127, 128, 129, 300, 1000}) {
    for (bool with_nan : {false, true}) {
      Tensor t = randint(0, 4, {6, n}).to(DType::f64);
      std::vector<double> v = t.to_vector<double>();
      if (with_nan) {
        v[n / 2] = nan;        // row 0
        v[3 * n + n - 1] = nan;  // row 3, last element
        v[5 * n] = nan;        // row 5, first element
        v[5 * n + n / 3] = nan;
      }
      Tensor x = from_vector<double>(v, {6, n});
      for (bool is_max : {true, false}) {
        INFO("n " << n << " nan " << with_nan << " max " << is_max);
        auto [vals, idx] = is_max ? max(x, 1) : min(x, 1);
        std::vector<double> vv = vals.to_vector<double>();
        std::vector<int64_t> iv = idx.to_vector<int64_t>();
        for (int64_t r = 0; r < 6; ++r) {
          auto [bv, bi] = reference_best(v, r * n, n, 1, is_max);
          REQUIRE(iv[r] == bi);
          REQUIRE((std::isnan(bv) ? std::isnan(vv[r]) : vv[r] == bv));
        }
        // Global: the first best over all elements.
        auto [gv, gi] = reference_best(v, 0, 6 * n, 1, is_max);
        Tensor l = test::leaf(x);
        Tensor m = is_max ? max(l) : min(l);
        REQUIRE((std::isnan(gv) ? std::isnan(m.item<double>()) : m.item<double>() == gv));
        m.backward();
        std::vector<double> gr = l.grad().to_vector<double>();
        for (int64_t k = 0; k < 6 * n; ++k) REQUIRE(gr[k] == (k == gi ? 1.0 : 0.0));
      }
    }
  }
}

TEST_CASE("global max/min with ties across chunks keep the first one, on 1 and 2 threads",
          "[reduce]") {
  ThreadCountGuard guard;
  Tensor x = randint(0, 3, {400000}).to(DType::f32);
  std::vector<double> v = x.to_vector<double>();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (bool is_max : {true, false}) {
      auto [bv, bi] = reference_best(v, 0, 400000, 1, is_max);
      Tensor l = test::leaf(x);
      (is_max ? max(l) : min(l)).backward();
      REQUIRE(l.grad().to_vector<double>()[bi] == 1.0);
      REQUIRE(argmax(reshape(x, {4, 100000}), 1).to_vector<int64_t>()[0] ==
              reference_best(v, 0, 100000, 1, true).second);
    }
  }
}

TEST_CASE("max/min along a wide middle dim match a reference", "[reduce]") {
  // [2, 5, 1500]: post > the kernel's column strip, so strips are exercised.
  Tensor x = randn({2, 5, 1500}, DType::f64);
  auto [v, i] = max(x, 1);
  std::vector<double> xv = x.to_vector<double>(), vv = v.to_vector<double>();
  std::vector<int64_t> iv = i.to_vector<int64_t>();
  for (int64_t p = 0; p < 2; ++p)
    for (int64_t j = 0; j < 1500; ++j) {
      int64_t bi = 0;
      for (int64_t k = 1; k < 5; ++k)
        if (xv[(p * 5 + k) * 1500 + j] > xv[(p * 5 + bi) * 1500 + j]) bi = k;
      REQUIRE(iv[p * 1500 + j] == bi);
      REQUIRE(vv[p * 1500 + j] == xv[(p * 5 + bi) * 1500 + j]);
    }
}

TEST_CASE("max/min/argmax errors", "[reduce]") {
  REQUIRE_THROWS_WITH(max(zeros({2, 3}), 2), Catch::Contains("max: dim 2 out of range"));
  REQUIRE_THROWS_WITH(min(zeros({2, 0}), 1),
                      Catch::Contains("min: cannot reduce over dim 1 of size 0") &&
                          Catch::Contains("[2,0]"));
  REQUIRE_THROWS_WITH(max(zeros({0, 3})), Catch::Contains("max: cannot reduce an empty tensor"));
  REQUIRE_THROWS_WITH(argmax(zeros({2, 3}), -3), Catch::Contains("argmax: dim -3 out of range"));
  REQUIRE_THROWS_WITH(max(zeros({2}, DType::boolean), 0), Catch::Contains("max"));
}

TEST_CASE("max along a dim of a scalar returns it with index 0", "[reduce]") {
  Tensor s = scalar_tensor(4.0, DType::f64);
  auto [v, i] = max(s, 0);
  REQUIRE(v.dim() == 0);
  REQUIRE(v.item<double>() == 4.0);
  REQUIRE(i.item<int64_t>() == 0);
}

// ---- sum determinism -------------------------------------------------------------------------

TEST_CASE("sum is bitwise identical on 1 and 2 threads", "[reduce]") {
  ThreadCountGuard guard;
  Tensor x = randn({2, 64, 32, 32}, DType::f32);
  Tensor big = randn({1 << 20}, DType::f32);
  Tensor xd = randn({2, 64, 32, 32}, DType::f64);
  set_num_threads(1);
  Tensor a = sum(x, {0, 2, 3}), b = sum(big), e = sum(xd, {0, 2, 3}), m = mean(big);
  set_num_threads(2);
  REQUIRE(get_num_threads() == 2);
  Tensor c = sum(x, {0, 2, 3}), d = sum(big), f = sum(xd, {0, 2, 3}), n = mean(big);
  REQUIRE(a.sizes() == Shape{64});
  REQUIRE(b.dim() == 0);
  REQUIRE(test::bitwise_equal(a, c));
  REQUIRE(test::bitwise_equal(b, d));
  REQUIRE(test::bitwise_equal(e, f));
  REQUIRE(test::bitwise_equal(m, n));
  // And the values are right (compared with a plain double accumulation).
  std::vector<float> bv = big.to_vector<float>();
  double ref = 0;
  for (float v : bv) ref += v;
  REQUIRE(std::abs(d.item<double>() - ref) <= 1e-3 * std::max(1.0, std::abs(ref)));
}
