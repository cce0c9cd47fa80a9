// Tensor basics: factories, views, dtype conversion, printing, errors.
#include "core/generator.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

TEST_CASE("factories produce the requested shapes, dtypes and values", "[core]") {
  Tensor z = zeros({2, 3});
  REQUIRE(z.sizes() == Shape{2, 3});
  REQUIRE(z.dtype() == DType::f32);
  REQUIRE(z.to_vector<float>() == std::vector<float>(6, 0.f));
  REQUIRE(ones({4}, DType::f64).to_vector<double>() == std::vector<double>(4, 1.0));
  REQUIRE(full({2}, 2.5).to_vector<float>() == std::vector<float>{2.5f, 2.5f});
  REQUIRE(arange(5).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  REQUIRE(arange(1.0, 2.0, 0.25, DType::f32).to_vector<float>() ==
          std::vector<float>{1.f, 1.25f, 1.5f, 1.75f});
  Tensor v = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(v.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  REQUIRE(select(select(v, 0, 1), 0, 2).item<float>() == 6.f);
}

TEST_CASE("item requires exactly one element", "[core]") {
  Tensor v = from_vector<float>({1, 2}, {2});
  REQUIRE_THROWS_WITH(v.item<float>(), Catch::Contains("has 2 elements"));
  REQUIRE(scalar_tensor(3.0).item<double>() == 3.0);
}

TEST_CASE("random factories are reproducible from a seed and have the right moments", "[core]") {
  Generator g1(42), g2(42);
  Tensor a = randn({10000}, {}, &g1);
  Tensor b = randn({10000}, {}, &g2);
  REQUIRE(test::bitwise_equal(a, b));
  double m = mean(a).item<double>();
  double v = mean(mul(a, a)).item<double>() - m * m;
  REQUIRE(std::abs(m) < 0.05);
  REQUIRE(std::abs(v - 1.0) < 0.05);
  Tensor u = rand({10000}, {}, &g1);
  for (float x : u.to_vector<float>()) REQUIRE((x >= 0.f && x < 1.f));
  Tensor r = randint(3, 7, {1000}, DType::i64, &g1);
  auto rv = r.to_vector<int64_t>();
  for (int64_t x : rv) REQUIRE((x >= 3 && x < 7));
  // Successive draws differ (the generator advances).
  Tensor c = randn({10000}, {}, &g1);
  REQUIRE_FALSE(test::bitwise_equal(a, c));
}

TEST_CASE("views share storage and the version counter", "[core][shape]") {
  Tensor x = arange(0.0, 24.0, 1.0, DType::f32);
  Tensor y = reshape(x, {2, 3, 4});
  REQUIRE(y.raw_data() == x.raw_data());
  Tensor p = permute(y, {2, 0, 1});
  REQUIRE(p.sizes() == Shape{4, 2, 3});
  REQUIRE_FALSE(p.is_contiguous());
  REQUIRE(p.contiguous().is_contiguous());
  // Element [1,0,2] of p is y[0,2,1] = 9.
  REQUIRE(p.contiguous().to_vector<float>()[1 * 6 + 0 * 3 + 2] == 9.f);
  Tensor s = slice(y, 2, 1, 3);
  REQUIRE(s.sizes() == Shape{2, 3, 2});
  REQUIRE(s.to_vector<float>()[0] == 1.f);
  uint64_t v0 = x.version();
  fill_(s, 7.0);
  REQUIRE(x.version() == v0 + 1);
  REQUIRE(x.to_vector<float>()[1] == 7.f);
  REQUIRE(x.to_vector<float>()[0] == 0.f);
  Tensor e = expand(from_vector<float>({1, 2}, {2, 1}), {2, 3});
  REQUIRE(e.to_vector<float>() == std::vector<float>{1, 1, 1, 2, 2, 2});
  REQUIRE(select(y, 1, -1).sizes() == Shape{2, 4});
  REQUIRE(unsqueeze(x, 0).sizes() == Shape{1, 24});
  REQUIRE(squeeze(unsqueeze(x, 1)).sizes() == Shape{24});
  REQUIRE(flatten(y, 1).sizes() == Shape{2, 12});
}

TEST_CASE("view refuses non-viewable strides and reshape copies instead", "[core][shape]") {
  Tensor y = reshape(arange(0.0, 6.0, 1.0, DType::f32), {2, 3});
  Tensor t = transpose(y, 0, 1);
  REQUIRE_THROWS_WITH(view(t, {6}), Catch::Contains("cannot view"));
  Tensor r = reshape(t, {6});
  REQUIRE(r.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("dtype conversion and no implicit promotion", "[core]") {
  Tensor a = from_vector<float>({1.5f, -2.5f}, {2});
  REQUIRE(a.to(DType::i64).to_vector<int64_t>() == std::vector<int64_t>{1, -2});
  REQUIRE(a.to(DType::f64).to_vector<double>() == std::vector<double>{1.5, -2.5});
  // Floats to u8 truncate and wrap modulo 256 (through int64, as PyTorch does): the same on
  // every CPU and on CUDA, where a plain conversion would saturate negatives to 0.
  Tensor f = from_vector<float>({-1.5f, -37.9f, 300.7f, 255.9f}, {4});
  REQUIRE(f.to(DType::u8).to_vector<uint8_t>() == std::vector<uint8_t>{255, 219, 44, 255});
  REQUIRE(f.to(DType::f16).to(DType::u8).to_vector<uint8_t>() == std::vector<uint8_t>{255, 219, 44, 255});
  Tensor b = ones({2}, DType::f64);
  REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("dtypes differ") && Catch::Contains("f32 [2]") &&
                                     Catch::Contains("f64 [2]"));
}

TEST_CASE("errors name the op and shapes", "[core]") {
  Tensor a = ones({2, 3}), b = ones({4, 3});
  REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("add: shapes [2,3] and [4,3] are not broadcastable"));
  REQUIRE_THROWS_WITH(reshape(a, {4}), Catch::Contains("reshape: shape [4] is invalid for input f32 [2,3]"));
  REQUIRE_THROWS_WITH(permute(a, {0, 0}), Catch::Contains("repeated"));
  REQUIRE_THROWS_WITH(Device("gpu:0"), Catch::Contains("bad device string"));
  REQUIRE_THROWS_WITH(ones({2}, TensorOptions(DType::f32, Device("cuda:0"))),
                      Catch::Contains("cuda:0"));
}

TEST_CASE("printing shows dtype, shape and values", "[core]") {
  std::string s = to_string(from_vector<float>({1, 2, 3, 4}, {2, 2}));
  REQUIRE(s.find("f32 [2,2]") != std::string::npos);
  REQUIRE(s.find("4.00000e+00") != std::string::npos);
}
