// matmul and linear: gradchecks (transposed views, broadcasting, 1-D promotion), PyTorch
// goldens, error messages, and the no-copy guarantee for transposed views.
#include "core/parallel.h"
#include "ops/linalg.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {
// Full f64 gradcheck (a function: braced input lists do not fit through the macro).
void gc(const GradcheckFn& fn, const std::vector<Tensor>& inputs) {
  EVIT_REQUIRE_GRADCHECK(fn, inputs);
}

Tensor mm2(const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }
}  // namespace

TEST_CASE("matmul gradcheck: 2-D, 1-D promotion and dot", "[linalg]") {
  gc(mm2, {test::random_leaf({3, 4}, -1, 1, 1), test::random_leaf({4, 2}, -1, 1, 2)});
  gc(mm2, {test::random_leaf({4}, -1, 1, 3), test::random_leaf({4, 2}, -1, 1, 4)});
  gc(mm2, {test::random_leaf({2, 3, 4}, -1, 1, 5), test::random_leaf({4}, -1, 1, 6)});
  gc(mm2, {test::random_leaf({4}, -1, 1, 7), test::random_leaf({4}, -1, 1, 8)});
}

TEST_CASE("matmul gradcheck: batched with broadcast batch dims", "[linalg]") {
  gc(mm2, {test::random_leaf({2, 1, 2, 3}, -1, 1, 9),
                               test::random_leaf({3, 3, 2}, -1, 1, 10)});
  gc(mm2, {test::random_leaf({2, 3}, -1, 1, 11), test::random_leaf({2, 3, 2}, -1, 1, 12)});
  gc(mm2, {test::random_leaf({2, 2, 3}, -1, 1, 13), test::random_leaf({3, 2}, -1, 1, 14)});
}

TEST_CASE("matmul gradcheck: transposed and sliced (non-contiguous) operands", "[linalg]") {
  Tensor at = transpose(test::random_leaf({4, 3}, -1, 1, 15), 0, 1).detach().requires_grad_();
  Tensor bt = transpose(test::random_leaf({2, 4}, -1, 1, 16), 0, 1).detach().requires_grad_();
  gc(mm2, {at, bt});
  // batched, last two dims transposed
  Tensor ab = transpose(test::random_leaf({2, 4, 3}, -1, 1, 17), 1, 2).detach().requires_grad_();
  Tensor bb = permute(test::random_leaf({2, 4, 2}, -1, 1, 18), {2, 1, 0}).detach().requires_grad_();
  gc(mm2, {ab, transpose(bb, 0, 2).detach().requires_grad_()});
  gc(mm2, {ab, test::random_leaf({4, 2}, -1, 1, 30)});  // transposed batch times a 2-D matrix
  // a strided slice (neither row- nor column-major): copied, still correct
  Tensor as = slice(test::random_leaf({3, 8}, -1, 1, 19), 1, 0, 8, 2).detach().requires_grad_();
  gc(mm2, {as, test::random_leaf({4, 2}, -1, 1, 20)});
}

TEST_CASE("matmul passes transposed views to BLAS without copying", "[linalg]") {
  Tensor a = randn({64, 32}, DType::f32);
  Tensor b = randn({48, 32}, DType::f32);
  Tensor bt = transpose(b, 0, 1);  // [32, 48], column-major
  Tensor expected = matmul(a, bt.contiguous());
  int64_t before = linalg_stats::operand_copies();
  Tensor c = matmul(a, bt);
  Tensor cb = matmul(transpose(randn({3, 32, 64}, DType::f32), 1, 2), randn({3, 32, 5}, DType::f32));
  Tensor cf = matmul(transpose(randn({3, 32, 64}, DType::f32), 1, 2), randn({32, 5}, DType::f32));
  REQUIRE(linalg_stats::operand_copies() == before);
  EVIT_REQUIRE_CLOSE(c, expected, 1e-5, 1e-5);
  // backward uses transposed views of the saved operands: no copies either
  Tensor x = randn({5, 7}, DType::f64).requires_grad_();
  Tensor y = randn({7, 3}, DType::f64).requires_grad_();
  before = linalg_stats::operand_copies();
  sum(matmul(x, y)).backward();
  REQUIRE(linalg_stats::operand_copies() == before);
  // a view that is neither layout is copied (and counted)
  matmul(slice(a, 1, 0, 32, 2), randn({16, 4}, DType::f32));
  REQUIRE(linalg_stats::operand_copies() == before + 1);
}

TEST_CASE("matmul f32 agrees with f64", "[linalg]") {
  Tensor a = randn({2, 17, 33}, DType::f64), b = randn({33, 9}, DType::f64);
  Tensor c64 = matmul(a, b);
  Tensor c32 = matmul(a.to(DType::f32), b.to(DType::f32));
  EVIT_REQUIRE_CLOSE(c32.to(DType::f64), c64, 1e-4, 1e-4);
}

TEST_CASE("linear gradcheck with and without bias, batched and non-contiguous", "[linalg]") {
  auto lin = [](const std::vector<Tensor>& in) {
    return linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
  };
  gc(lin, {test::random_leaf({2, 3, 4}, -1, 1, 21), test::random_leaf({5, 4}, -1, 1, 22),
                               test::random_leaf({5}, -1, 1, 23)});
  gc(lin, {test::random_leaf({4}, -1, 1, 24), test::random_leaf({3, 4}, -1, 1, 25)});
  Tensor xt = transpose(test::random_leaf({4, 3}, -1, 1, 26), 0, 1).detach().requires_grad_();
  Tensor wt = transpose(test::random_leaf({4, 2}, -1, 1, 27), 0, 1).detach().requires_grad_();
  gc(lin, {xt, wt, test::random_leaf({2}, -1, 1, 28)});
}

TEST_CASE("linalg goldens match PyTorch", "[linalg]") {
  for (const char* c : {"mm_2d", "dot_1d", "vec_mat", "mat_vec", "batched_fold", "batched_broadcast",
                        "mat_batched"})
    test::check_golden_case("linalg", c, mm2);
  auto lin = [](const std::vector<Tensor>& in) {
    return linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
  };
  test::check_golden_case("linalg", "linear_bias", lin);
  test::check_golden_case("linalg", "linear_nobias", lin);
}

TEST_CASE("matmul and linear errors name the shapes", "[linalg]") {
  REQUIRE_THROWS_WITH(matmul(zeros({2, 3}), zeros({4, 5})),
                      Catch::Contains("matmul: shapes [2,3] and [4,5] cannot be multiplied (3 != 4)"));
  REQUIRE_THROWS_WITH(matmul(zeros({2, 3}), zeros({2, 3}, DType::f64)), Catch::Contains("matmul: dtypes differ"));
  REQUIRE_THROWS_WITH(matmul(zeros({2, 2, 3}), zeros({3, 3, 2})), Catch::Contains("matmul"));
  REQUIRE_THROWS_WITH(linear(zeros({2, 3}), zeros({4, 5})), Catch::Contains("linear: input f32 [2,3] has 3 features"));
  REQUIRE_THROWS_WITH(linear(zeros({2, 3}), zeros({3})), Catch::Contains("linear: weight must be 2-D"));
  REQUIRE_THROWS_WITH(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})), Catch::Contains("linear: bias must be [4]"));
}

TEST_CASE("matmul and linear are bitwise identical on 1 and 2 threads", "[linalg]") {
  const int saved = get_num_threads();
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = randn({3, 40, 300}, dt), b = randn({300, 30}, dt), bias = randn({30}, dt);
    auto go = [&](int threads) {
      set_num_threads(threads);
      Tensor al = a.detach().requires_grad_(), bl = b.detach().requires_grad_(), cl = bias.detach().requires_grad_();
      Tensor y = linear(al, transpose(bl, 0, 1), cl);
      Tensor z = matmul(y, transpose(y, 1, 2));
      sum(z).backward();
      return std::vector<Tensor>{z, al.grad(), bl.grad(), cl.grad()};
    };
    auto r1 = go(1), r2 = go(2);
    set_num_threads(saved);
    for (size_t i = 0; i < r1.size(); ++i) REQUIRE(test::bitwise_equal(r1[i], r2[i]));
  }
}

TEST_CASE("linear with zero input features gives the bias (or zeros) for every row", "[linalg]") {
  Tensor x = zeros({3, 2, 0});
  Tensor w = zeros({4, 0});
  Tensor b = from_vector<float>({1, 2, 3, 4}, {4});
  Tensor y = linear(x, w, b);
  REQUIRE(y.sizes() == Shape{3, 2, 4});
  REQUIRE(test::bitwise_equal(y, expand(b, {3, 2, 4}).contiguous()));
  REQUIRE(linear(x, w, Tensor()).to_vector<float>() == std::vector<float>(24, 0.0f));
}
