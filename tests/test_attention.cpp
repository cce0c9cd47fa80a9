// linear_attention: gradchecks (linear and quadratic paths, strided inputs), PyTorch goldens,
// a long-sequence run (N = 65536, where an N x N matrix would need 16 GiB), determinism, errors.
#include <chrono>
#include <cmath>

#include "core/generator.h"
#include "core/parallel.h"
#include "ops/attention.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {

// An f64 leaf with values in +-[0.15, 1): nothing sits near the ReLU kink at 0.
Tensor off_kink_leaf(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  Tensor u = uniform(shape, -1.0, 1.0, {DType::f64}, &g);
  std::vector<double> vals = u.to_vector<double>();
  for (double& x : vals) x = (x < 0 ? -1.0 : 1.0) * (0.15 + 0.85 * std::abs(x));
  return test::leaf(from_vector<double>(vals, shape));
}

Tensor la(const std::vector<Tensor>& in) { return linear_attention(in[0], in[1], in[2]); }

// Direct O(N d) evaluation of one output column in f64.
std::vector<double> column_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                     int64_t bh, int64_t i) {
  const int64_t d = q.size(2), N = q.size(3);
  std::vector<double> qv = q.to_vector<double>(), kv = k.to_vector<double>(),
                      vv = v.to_vector<double>();
  const int64_t base = bh * d * N;
  std::vector<double> num(d, 0.0);
  double den = 0;
  for (int64_t j = 0; j < N; ++j) {
    double s = 0;
    for (int64_t c = 0; c < d; ++c)
      s += std::max(kv[base + c * N + j], 0.0) * std::max(qv[base + c * N + i], 0.0);
    den += s;
    for (int64_t a = 0; a < d; ++a) num[a] += vv[base + a * N + j] * s;
  }
  for (double& x : num) x /= den + 1e-15;
  return num;
}

}  // namespace

TEST_CASE("linear_attention gradcheck, linear path (N > d)", "[attention]") {
  Tensor q = off_kink_leaf({1, 2, 3, 7}, 1), k = off_kink_leaf({1, 2, 3, 7}, 2),
         v = off_kink_leaf({1, 2, 3, 7}, 3);
  EVIT_REQUIRE_GRADCHECK(la, (std::vector<Tensor>{q, k, v}));
  // dv != d
  Tensor v5 = off_kink_leaf({1, 2, 5, 7}, 4);
  EVIT_REQUIRE_GRADCHECK(la, (std::vector<Tensor>{q, k, v5}));
}

TEST_CASE("linear_attention gradcheck, quadratic path (N <= d)", "[attention]") {
  for (int64_t n : {3, 4}) {
    INFO("N = " << n);
    Tensor q = off_kink_leaf({2, 1, 4, n}, 5), k = off_kink_leaf({2, 1, 4, n}, 6),
           v = off_kink_leaf({2, 1, 4, n}, 7);
    EVIT_REQUIRE_GRADCHECK(la, (std::vector<Tensor>{q, k, v}));
  }
}

TEST_CASE("linear_attention gradcheck on slices of one qkv tensor and permuted inputs",
          "[attention]") {
  // The model's layout: qkv [B, heads, 3d, N]; q, k, v are strided slices of it.
  Tensor qkv = off_kink_leaf({2, 2, 9, 6}, 8);
  auto f = [](const std::vector<Tensor>& in) {
    return linear_attention(slice(in[0], 2, 0, 3), slice(in[0], 2, 3, 6), slice(in[0], 2, 6, 9));
  };
  EVIT_REQUIRE_GRADCHECK(f, std::vector<Tensor>{qkv});
  // Inputs whose innermost stride is not 1 (made through permute): the op copies them.
  Tensor qp = permute(off_kink_leaf({1, 2, 6, 3}, 9), {0, 1, 3, 2}).detach();
  qp.requires_grad_();
  Tensor kp = off_kink_leaf({1, 2, 3, 6}, 10), vp = off_kink_leaf({1, 2, 3, 6}, 11);
  REQUIRE_FALSE(qp.is_contiguous());
  EVIT_REQUIRE_GRADCHECK(la, (std::vector<Tensor>{qp, kp, vp}));
}

TEST_CASE("linear_attention_qkv: gradcheck on the packed tensor, and the three-slice op's values",
          "[attention]") {
  auto packed = [](int64_t d) {
    return [d](const std::vector<Tensor>& in) { return linear_attention_qkv(in[0], d); };
  };
  // Linear path (N = 6 > d = 3) and quadratic path (N = 4 <= d = 4).
  EVIT_REQUIRE_GRADCHECK(packed(3), std::vector<Tensor>{off_kink_leaf({2, 2, 9, 6}, 12)});
  EVIT_REQUIRE_GRADCHECK(packed(4), std::vector<Tensor>{off_kink_leaf({1, 3, 12, 4}, 13)});
  // A non-contiguous packed input: the op copies it.
  Tensor t = permute(off_kink_leaf({1, 2, 6, 9}, 14), {0, 1, 3, 2}).detach().requires_grad_();
  EVIT_REQUIRE_GRADCHECK(packed(3), std::vector<Tensor>{t});
  // Bit for bit the op on three slices, output and gradient, in f32.
  for (int64_t n : {5, 40}) {
    INFO("N = " << n);
    Generator g(15);
    Tensor x = uniform({2, 3, 24, n}, -1, 1, {DType::f32}, &g), w = uniform({2, 3, 8, n}, -1, 1, {DType::f32}, &g);
    Tensor a = x.clone().detach().requires_grad_(), b = x.clone().detach().requires_grad_();
    Tensor ya = linear_attention_qkv(a, 8);
    Tensor yb = linear_attention(slice(b, 2, 0, 8), slice(b, 2, 8, 16), slice(b, 2, 16, 24));
    sum(mul(ya, w)).backward();
    sum(mul(yb, w)).backward();
    CHECK(ya.to_vector<float>() == yb.to_vector<float>());
    CHECK(a.grad().to_vector<float>() == b.grad().to_vector<float>());
  }
  CHECK_THROWS_WITH(linear_attention_qkv(zeros({1, 2, 10, 5}), 3),
                    Catch::Contains("qkv must be [B, G, 3d, N] with d = 3"));
}

TEST_CASE("linear_attention_qkv over several parts: the concatenation's values and gradients, bit for bit",
          "[attention]") {
  // LiteMLA's qkv and its aggregates, read in turn instead of concatenated first.
  auto parts_op = [](int64_t d) {
    return [d](const std::vector<Tensor>& in) { return linear_attention_qkv(in, d); };
  };
  EVIT_REQUIRE_GRADCHECK(parts_op(3),
                         (std::vector<Tensor>{off_kink_leaf({2, 2, 9, 6}, 21), off_kink_leaf({2, 1, 9, 6}, 22)}));
  EVIT_REQUIRE_GRADCHECK(parts_op(4),  // quadratic path, a non-contiguous part
                         (std::vector<Tensor>{off_kink_leaf({1, 1, 12, 4}, 23),
                                              permute(off_kink_leaf({1, 2, 4, 12}, 24), {0, 1, 3, 2}).detach().requires_grad_()}));
  for (int64_t n : {5, 40}) {
    INFO("N = " << n);
    Generator g(25);
    const Tensor p0 = uniform({2, 3, 24, n}, -1, 1, {DType::f32}, &g), p1 = uniform({2, 2, 24, n}, -1, 1, {DType::f32}, &g);
    const Tensor w = uniform({2, 5, 8, n}, -1, 1, {DType::f32}, &g);
    Tensor a0 = p0.clone().requires_grad_(), a1 = p1.clone().requires_grad_();
    Tensor b0 = p0.clone().requires_grad_(), b1 = p1.clone().requires_grad_();
    Tensor ya = linear_attention_qkv(std::vector<Tensor>{a0, a1}, 8);
    Tensor yb = linear_attention_qkv(cat({b0, b1}, 1), 8);
    sum(mul(ya, w)).backward();
    sum(mul(yb, w)).backward();
    CHECK(ya.to_vector<float>() == yb.to_vector<float>());
    CHECK(a0.grad().to_vector<float>() == b0.grad().to_vector<float>());
    CHECK(a1.grad().to_vector<float>() == b1.grad().to_vector<float>());
  }
  CHECK_THROWS_WITH(linear_attention_qkv(std::vector<Tensor>{zeros({1, 2, 9, 5}), zeros({1, 2, 9, 6})}, 3),
                    Catch::Contains("the parts must share B, N, dtype and device"));
  CHECK_THROWS_WITH(linear_attention_qkv(std::vector<Tensor>{}, 3), Catch::Contains("no qkv tensor given"));
}

TEST_CASE("linear_attention matches the PyTorch LiteMLA reference", "[attention]") {
  for (const char* c : {"lin_f64", "lin_dv_f64", "quad_f64", "quad_eq_f64"})
    test::check_golden_case("attention", c, la, 1e-9, 1e-11);
  test::check_golden_case(
      "attention", "qkv_f64",
      [](const std::vector<Tensor>& in) {
        return linear_attention(slice(in[0], 2, 0, 8), slice(in[0], 2, 8, 16),
                                slice(in[0], 2, 16, 24));
      },
      1e-9, 1e-11);
  test::check_golden_case("attention", "lin_f32", la, 1e-4, 1e-5);
}

TEST_CASE("linear_attention runs forward and backward at N = 65536 without an N x N matrix",
          "[attention]") {
  const Shape shape{1, 2, 16, 65536};
  Generator g(21);
  Tensor q = uniform(shape, -1, 1, {DType::f32}, &g), k = uniform(shape, -1, 1, {DType::f32}, &g),
         v = uniform(shape, -1, 1, {DType::f32}, &g), w = uniform(shape, -1, 1, {DType::f32}, &g);
  auto run = [&](DType t) {
    Tensor qq = q.to(t).clone().detach(), kk = k.to(t).clone().detach(),
           vv = v.to(t).clone().detach();
    qq.requires_grad_();
    kk.requires_grad_();
    vv.requires_grad_();
    Tensor out = linear_attention(qq, kk, vv);
    sum(mul(out, w.to(t))).backward();
    return std::vector<Tensor>{out.detach(), qq.grad(), kk.grad(), vv.grad()};
  };
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Tensor> r32 = run(DType::f32);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO("f32 forward + backward took " << secs << " s");
  CHECK(secs < 5.0);
  std::vector<Tensor> r64 = run(DType::f64);
  // f32 (f32 accumulation over 65536 terms) against f64.
  for (size_t i = 0; i < r32.size(); ++i) {
    INFO("output/gradient " << i);
    REQUIRE(all_finite(r32[i]));
    EVIT_REQUIRE_CLOSE(r32[i], r64[i].to(DType::f32), 2e-3, 2e-5);
  }
  // A few columns against the direct O(N d) formula.
  Tensor q64 = q.to(DType::f64), k64 = k.to(DType::f64), v64 = v.to(DType::f64);
  for (int64_t i : {0, 12345, 65535}) {
    std::vector<double> ref = column_reference(q64, k64, v64, 1, i);
    Tensor col = select(select(select(r64[0], 0, 0), 0, 1), 1, i);
    EVIT_REQUIRE_CLOSE(col, from_vector<double>(ref, {16}), 1e-10, 1e-12);
  }
}

TEST_CASE("linear_attention is bitwise identical on 1 and 2 threads", "[attention]") {
  const Shape shape{1, 4, 16, 4096};
  Generator g(5);
  Tensor q = uniform(shape, -1, 1, {DType::f32}, &g), k = uniform(shape, -1, 1, {DType::f32}, &g),
         v = uniform(shape, -1, 1, {DType::f32}, &g), w = uniform(shape, -1, 1, {DType::f32}, &g);
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor qq = q.clone().detach(), kk = k.clone().detach(), vv = v.clone().detach();
    qq.requires_grad_();
    kk.requires_grad_();
    vv.requires_grad_();
    Tensor out = linear_attention(qq, kk, vv);
    sum(mul(out, w)).backward();
    return std::vector<Tensor>{out.detach(), qq.grad(), kk.grad(), vv.grad()};
  };
  const int before = get_num_threads();
  std::vector<Tensor> a = run(1), b = run(2);
  set_num_threads(before);
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("output/gradient " << i);
    REQUIRE(test::bitwise_equal(a[i], b[i]));
  }
}

TEST_CASE("linear_attention argument errors", "[attention]") {
  Tensor a = zeros({1, 2, 4, 8}), b = zeros({1, 2, 4, 9}), c = zeros({2, 4, 8});
  REQUIRE_THROWS_WITH(linear_attention(c, c, c),
                      Catch::Contains("linear_attention") && Catch::Contains("4-D") &&
                          Catch::Contains("[2,4,8]"));
  REQUIRE_THROWS_WITH(linear_attention(a, b, a),
                      Catch::Contains("same shape") && Catch::Contains("[1,2,4,8]") &&
                          Catch::Contains("[1,2,4,9]"));
  REQUIRE_THROWS_WITH(linear_attention(a, a, b),
                      Catch::Contains("v must be") && Catch::Contains("[1,2,4,9]"));
  REQUIRE_THROWS_WITH(linear_attention(a, a, zeros({1, 2, 4, 8}, DType::f64)),
                      Catch::Contains("dtypes differ"));
  REQUIRE_THROWS_WITH(linear_attention(zeros({1, 2, 4, 8}, DType::i64),
                                       zeros({1, 2, 4, 8}, DType::i64),
                                       zeros({1, 2, 4, 8}, DType::i64)),
                      Catch::Contains("linear_attention") && Catch::Contains("floating"));
}
