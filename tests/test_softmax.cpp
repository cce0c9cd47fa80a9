// softmax / log_softmax / scaled_dot_product_attention: goldens, gradchecks, stability, errors.
#include <cmath>

#include "core/generator.h"
#include "core/parallel.h"
#include "ops/ops.h"
#include "ops/softmax.h"
#include "tests/support/test_util.h"

using namespace evit;

TEST_CASE("softmax and log_softmax match PyTorch", "[softmax]") {
  auto sm = [](int64_t dim) {
    return [dim](const std::vector<Tensor>& in) { return softmax(in[0], dim); };
  };
  auto lsm = [](int64_t dim) {
    return [dim](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); };
  };
  test::check_golden_case("softmax", "softmax_d1", sm(1), 1e-10, 1e-13);
  test::check_golden_case("softmax", "softmax_dlast", sm(-1), 1e-10, 1e-13);
  test::check_golden_case("softmax", "softmax_d0", sm(0), 1e-10, 1e-13);
  test::check_golden_case("softmax", "log_softmax_d1", lsm(1), 1e-10, 1e-13);
  test::check_golden_case("softmax", "log_softmax_dlast", lsm(-1), 1e-10, 1e-13);
  test::check_golden_case("softmax", "softmax_f32", sm(1), 1e-5, 1e-6);
}

TEST_CASE("softmax gradchecks on every dim and on strided input", "[softmax]") {
  Tensor x = test::random_leaf({3, 4, 5}, -3, 3, 1);
  for (int64_t dim : {0, 1, 2}) {
    INFO("dim " << dim);
    EVIT_REQUIRE_GRADCHECK([dim](const std::vector<Tensor>& in) { return softmax(in[0], dim); },
                           std::vector<Tensor>{x});
    EVIT_REQUIRE_GRADCHECK(
        [dim](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); },
        std::vector<Tensor>{x});
  }
  Tensor xt = transpose(test::random_leaf({5, 3}, -3, 3, 2), 0, 1).detach();
  xt.requires_grad_();
  EVIT_REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return softmax(in[0], 1); },
                         std::vector<Tensor>{xt});
}

TEST_CASE("softmax is stable for large inputs", "[softmax]") {
  Tensor x = from_vector<float>({1000.f, 1001.f, -1000.f, 999.f}, {1, 4});
  std::vector<float> y = softmax(x, 1).to_vector<float>();
  const double z = 1 + std::exp(1.0) + std::exp(-1.0);
  CHECK(y[0] == Approx(1 / z));
  CHECK(y[1] == Approx(std::exp(1.0) / z));
  CHECK(y[2] == 0.0f);
  std::vector<float> l = log_softmax(x, 1).to_vector<float>();
  CHECK(l[1] == Approx(1 - std::log(z)).margin(1e-4));  // f32 ulp at 1000 is 6e-5
  CHECK(std::isfinite(l[2]));
}

TEST_CASE("scaled_dot_product_attention matches PyTorch", "[softmax]") {
  test::check_golden_case(
      "softmax", "sdpa",
      [](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2]); },
      1e-10, 1e-12);
  test::check_golden_case(
      "softmax", "sdpa_scale03",
      [](const std::vector<Tensor>& in) {
        return scaled_dot_product_attention(in[0], in[1], in[2], 0.3);
      },
      1e-10, 1e-12);
  test::check_golden_case(
      "softmax", "sdpa_f32",
      [](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2]); },
      1e-4, 1e-5);
}

TEST_CASE("scaled_dot_product_attention gradcheck, strided inputs", "[softmax]") {
  Tensor q = test::random_leaf({1, 2, 3, 4}, -1, 1, 3), k = test::random_leaf({1, 2, 5, 4}, -1, 1, 4),
         v = test::random_leaf({1, 2, 5, 2}, -1, 1, 5);
  auto f = [](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2]); };
  EVIT_REQUIRE_GRADCHECK(f, (std::vector<Tensor>{q, k, v}));
  // [B, N, H, d] storage viewed as [B, H, N, d] (how heads are split off a projection)
  Tensor qs = transpose(test::random_leaf({1, 3, 2, 4}, -1, 1, 6), 1, 2).detach();
  qs.requires_grad_();
  EVIT_REQUIRE_GRADCHECK(f, (std::vector<Tensor>{qs, k, v}));
}

TEST_CASE("scaled_dot_product_attention is bitwise identical on 1 and 2 threads", "[softmax]") {
  Generator g(9);
  Tensor q = uniform({1, 8, 300, 16}, -1, 1, {DType::f32}, &g),
         k = uniform({1, 8, 70, 16}, -1, 1, {DType::f32}, &g),
         v = uniform({1, 8, 70, 16}, -1, 1, {DType::f32}, &g),
         w = uniform({1, 8, 300, 16}, -1, 1, {DType::f32}, &g);
  auto run = [&](int n) {
    set_num_threads(n);
    Tensor qq = q.clone().detach(), kk = k.clone().detach(), vv = v.clone().detach();
    qq.requires_grad_();
    kk.requires_grad_();
    vv.requires_grad_();
    Tensor o = scaled_dot_product_attention(qq, kk, vv);
    sum(mul(o, w)).backward();
    return std::vector<Tensor>{o.detach(), qq.grad(), kk.grad(), vv.grad()};
  };
  const int before = get_num_threads();
  auto a = run(1), b = run(2);
  set_num_threads(before);
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(test::bitwise_equal(a[i], b[i]));
}

TEST_CASE("softmax family errors", "[softmax]") {
  REQUIRE_THROWS_WITH(softmax(zeros({2, 3}), 2), Catch::Contains("softmax"));
  REQUIRE_THROWS_WITH(log_softmax(zeros({2, 3}, DType::i64), 1),
                      Catch::Contains("log_softmax") && Catch::Contains("floating"));
  Tensor q = zeros({1, 2, 3, 4});
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, zeros({1, 2, 5, 3}), zeros({1, 2, 5, 4})),
                      Catch::Contains("[1,2,3,4]") && Catch::Contains("[1,2,5,3]"));
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, zeros({1, 2, 5, 4}), zeros({1, 2, 6, 4})),
                      Catch::Contains("[1,2,5,4]") && Catch::Contains("[1,2,6,4]"));
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(zeros({2, 3, 4}), q, q),
                      Catch::Contains("4-D") && Catch::Contains("[2,3,4]"));
}
