// Copying shape ops: cat, split/split_with_sizes/chunk, pad, pixel_shuffle/unshuffle.
#include "core/parallel.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;
using test::permuted_leaf;
using test::require_gradcheck;
using test::ThreadCountGuard;

namespace {

// The golden "pieces" cases: y = cat over pieces i of (piece_i * (i + 1)) flattened.
Tensor scaled_flat_cat(const std::vector<Tensor>& pieces) {
  std::vector<Tensor> flat;
  for (size_t i = 0; i < pieces.size(); ++i)
    flat.push_back(reshape(mul(pieces[i], static_cast<double>(i + 1)), {-1}));
  return cat(flat, 0);
}

void check_pieces_case(const std::string& name,
                       const std::function<std::vector<Tensor>(const Tensor&)>& make) {
  INFO("golden pieces case " << name);
  const TensorMap& m = test::golden("shape");
  Tensor x = test::golden_tensor("shape", name + ".x0");
  std::vector<Tensor> ps = make(x);
  size_t expected = 0;
  while (m.count(name + ".p" + std::to_string(expected))) ++expected;
  REQUIRE(ps.size() == expected);
  for (size_t i = 0; i < ps.size(); ++i)
    REQUIRE(test::bitwise_equal(ps[i], test::golden_tensor("shape", name + ".p" + std::to_string(i))));
  test::check_golden_case("shape", name, [&make](const std::vector<Tensor>& in) {
    return scaled_flat_cat(make(in[0]));
  });
}

}  // namespace

// ---- cat -----------------------------------------------------------------------------------

TEST_CASE("cat gradcheck along several dims, with non-contiguous inputs", "[shape]") {
  Tensor a = test::random_leaf({2, 3, 2}, -1, 1, 1);
  Tensor b = test::random_leaf({2, 1, 2}, -1, 1, 2);
  Tensor c = permuted_leaf({2, 2, 2}, {1, 0, 2}, 3);
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return cat({in[0], in[1], in[2]}, 1); }, {a, b, c});
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, -2); }, {a, b});
  Tensor d = test::random_leaf({1, 3, 2}, -1, 1, 4);
  require_gradcheck([](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, 0); },
                         {a, d});
  Tensor e = permuted_leaf({2, 2, 3}, {0, 2, 1}, 5);  // [2,3,2]
  require_gradcheck([](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, -1); },
                         {a, e});
}

TEST_CASE("cat only gives gradients to inputs that require them", "[shape]") {
  Tensor a = test::random_leaf({2, 2}, -1, 1, 6);
  Tensor b = ones({2, 3}, DType::f64);
  Tensor y = cat({a, b}, 1);
  REQUIRE(y.sizes() == Shape{2, 5});
  sum(mul(y, y)).backward();
  REQUIRE_FALSE(b.grad().defined());
  EVIT_REQUIRE_CLOSE(a.grad(), mul(a.detach(), 2.0), 0, 0);
}

TEST_CASE("cat matches PyTorch", "[shape]") {
  test::check_golden_case("shape", "cat_dim0",
                          [](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, 0); });
  test::check_golden_case("shape", "cat_dim1", [](const std::vector<Tensor>& in) {
    return cat({in[0], in[1], in[2]}, 1);
  });
  test::check_golden_case("shape", "cat_neg1_f32",
                          [](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, -1); });
}

TEST_CASE("cat works for integer dtypes and empty pieces", "[shape]") {
  Tensor a = from_vector<int64_t>({1, 2, 3, 4}, {2, 2});
  Tensor b = zeros({2, 0}, DType::i64);
  Tensor c = from_vector<int64_t>({5, 6}, {2, 1});
  Tensor y = cat({a, b, c}, 1);
  REQUIRE(y.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 5, 3, 4, 6});
}

TEST_CASE("cat errors name the tensor index and shapes", "[shape]") {
  Tensor a = zeros({2, 3});
  REQUIRE_THROWS_WITH(cat({}, 0), Catch::Contains("cat: expected a non-empty list"));
  REQUIRE_THROWS_WITH(cat({a, zeros({2, 4}), zeros({3, 3})}, 1),
                      Catch::Contains("tensor 2 is [3,3]") && Catch::Contains("tensor 0 is [2,3]"));
  REQUIRE_THROWS_WITH(cat({a, zeros({2, 3}, DType::f64)}, 0),
                      Catch::Contains("cat: tensor 1 has dtype f64 but tensor 0 has f32"));
  REQUIRE_THROWS_WITH(cat({a, zeros({2, 3, 1})}, 0),
                      Catch::Contains("cat: tensor 1 has 3 dims") && Catch::Contains("[2,3,1]"));
  REQUIRE_THROWS_WITH(cat({a, a}, 2), Catch::Contains("cat: dim 2 out of range"));
  REQUIRE_THROWS_WITH(cat({scalar_tensor(1.0)}, 0), Catch::Contains("zero-dimensional"));
}

TEST_CASE("cat is bitwise identical on 1 and 2 threads", "[shape]") {
  int saved = get_num_threads();
  Tensor a = randn({1, 64, 32, 64}), b = randn({1, 64, 32, 64});
  set_num_threads(1);
  Tensor y1 = cat({a, b}, 1);
  set_num_threads(2);
  Tensor y2 = cat({a, b}, 1);
  set_num_threads(saved);
  REQUIRE(test::bitwise_equal(y1, y2));
  REQUIRE(test::bitwise_equal(slice(y2, 1, 64, 128), b));
}

// ---- split / chunk --------------------------------------------------------------------------

TEST_CASE("split/split_with_sizes/chunk gradcheck (pieces are views)", "[shape]") {
  Tensor x = test::random_leaf({2, 5, 3}, -1, 1, 7);
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return scaled_flat_cat(split(in[0], 2, 1)); }, {x});
  require_gradcheck(
      [](const std::vector<Tensor>& in) {
        return scaled_flat_cat(split_with_sizes(in[0], {1, 0, 2}, -1));
      },
      {x});
  Tensor xp = permuted_leaf({5, 3, 2}, {2, 0, 1}, 8);  // [2,5,3]
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return scaled_flat_cat(chunk(in[0], 3, -2)); }, {xp});
  // Only some pieces used: the others get zero gradient.
  require_gradcheck([](const std::vector<Tensor>& in) { return chunk(in[0], 2, 0)[1]; },
                         {xp});
}

TEST_CASE("split/chunk follow PyTorch's piece sizes", "[shape]") {
  Tensor x = zeros({10, 2});
  auto sizes = [](const std::vector<Tensor>& ps) {
    std::vector<int64_t> s;
    for (const Tensor& p : ps) s.push_back(p.sizes()[0]);
    return s;
  };
  REQUIRE(sizes(split(x, 3, 0)) == std::vector<int64_t>{3, 3, 3, 1});
  REQUIRE(sizes(split(x, 20, 0)) == std::vector<int64_t>{10});
  REQUIRE(sizes(chunk(x, 3, 0)) == std::vector<int64_t>{4, 4, 2});
  REQUIRE(sizes(chunk(x, 4, 0)) == std::vector<int64_t>{3, 3, 3, 1});
  REQUIRE(sizes(chunk(x, 6, 0)) == std::vector<int64_t>{2, 2, 2, 2, 2});  // fewer than 6
  REQUIRE(sizes(chunk(x, 20, 0)) == std::vector<int64_t>(10, 1));
  REQUIRE(sizes(chunk(zeros({0, 2}), 3, 0)) == std::vector<int64_t>{0, 0, 0});
  REQUIRE(sizes(split(zeros({0, 2}), 2, 0)) == std::vector<int64_t>{0});
  // Views: they share storage with the input.
  std::vector<Tensor> ps = split(x, 4, 0);
  REQUIRE(ps[1].storage_offset() == 8);
  REQUIRE(ps[1].impl().storage == x.impl().storage);
}

TEST_CASE("split/chunk match PyTorch", "[shape]") {
  check_pieces_case("split_3_dim1", [](const Tensor& t) { return split(t, 3, 1); });
  check_pieces_case("split_2_dim_neg1", [](const Tensor& t) { return split(t, 2, -1); });
  check_pieces_case("split_sizes_dim0",
                    [](const Tensor& t) { return split_with_sizes(t, {1, 3, 2}, 0); });
  check_pieces_case("chunk_3_dim1", [](const Tensor& t) { return chunk(t, 3, 1); });
  check_pieces_case("chunk_4_of_5", [](const Tensor& t) { return chunk(t, 4, 0); });
}

TEST_CASE("split/chunk errors", "[shape]") {
  Tensor x = zeros({4, 3});
  REQUIRE_THROWS_WITH(split(x, 0, 0), Catch::Contains("split: split size must be positive"));
  REQUIRE_THROWS_WITH(split(x, 2, 2), Catch::Contains("split: dim 2 out of range"));
  REQUIRE_THROWS_WITH(split_with_sizes(x, {1, 2}, 0),
                      Catch::Contains("add up to 3") && Catch::Contains("[4,3]") &&
                          Catch::Contains("has size 4"));
  REQUIRE_THROWS_WITH(split_with_sizes(x, {5, -1}, 0), Catch::Contains("size 1 is negative"));
  REQUIRE_THROWS_WITH(chunk(x, 0, 0), Catch::Contains("chunk: number of chunks must be positive"));
  REQUIRE_THROWS_WITH(chunk(scalar_tensor(1.0), 2, 0), Catch::Contains("zero-dimensional"));
}

// ---- pad -----------------------------------------------------------------------------------

TEST_CASE("pad gradcheck with positive, negative and mixed pads", "[shape]") {
  Tensor x = test::random_leaf({2, 3, 4}, -1, 1, 9);
  require_gradcheck([](const std::vector<Tensor>& in) { return pad(in[0], {1, 2}); }, {x});
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return pad(in[0], {-1, 1, 2, -1}, 0.5); }, {x});
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return pad(in[0], {0, -2, -1, 0, 1, 1}); }, {x});
  Tensor xp = permuted_leaf({4, 2, 3}, {1, 2, 0}, 10);  // [2,3,4]
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return pad(in[0], {1, 1, 1, 1}, -2.0); }, {xp});
}

TEST_CASE("pad matches PyTorch", "[shape]") {
  test::check_golden_case("shape", "pad_pos",
                          [](const std::vector<Tensor>& in) { return pad(in[0], {1, 2, 0, 3}, 0.5); });
  test::check_golden_case("shape", "pad_neg",
                          [](const std::vector<Tensor>& in) { return pad(in[0], {-1, 2, 1, -2}); });
  test::check_golden_case("shape", "pad_3dims_mixed", [](const std::vector<Tensor>& in) {
    return pad(in[0], {1, -1, -1, 0, 2, 1}, -3.0);
  });
  test::check_golden_case("shape", "pad_f32",
                          [](const std::vector<Tensor>& in) { return pad(in[0], {2, 2}); });
}

TEST_CASE("pad handles integer dtypes, full crops and empty pads", "[shape]") {
  Tensor x = from_vector<int64_t>({1, 2, 3, 4}, {2, 2});
  REQUIRE(pad(x, {1, 0}, 7).to_vector<int64_t>() == std::vector<int64_t>{7, 1, 2, 7, 3, 4});
  REQUIRE(pad(x, {-2, 1}).sizes() == Shape{2, 1});
  REQUIRE(pad(x, {-2, 1}).to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  REQUIRE(pad(x, {0, 0, -1, 0}).to_vector<int64_t>() == std::vector<int64_t>{3, 4});
  REQUIRE(test::bitwise_equal(pad(x, {}), x));
  Tensor v = from_vector<double>({1, 2, 3}, {3});
  REQUIRE(pad(v, {1, -1}).to_vector<double>() == std::vector<double>{0, 1, 2});
  // A whole padded leading plane and a fully cropped input.
  REQUIRE(pad(reshape(x, {1, 2, 2}), {0, 0, 0, 0, 1, 0}, 9).to_vector<int64_t>() ==
          std::vector<int64_t>{9, 9, 9, 9, 1, 2, 3, 4});
  REQUIRE(pad(x, {0, 0, -2, 1}, 5).to_vector<int64_t>() == std::vector<int64_t>{5, 5});
}

TEST_CASE("pad errors", "[shape]") {
  Tensor x = zeros({2, 3});
  REQUIRE_THROWS_WITH(pad(x, {1}), Catch::Contains("pad: the padding must have an even number"));
  REQUIRE_THROWS_WITH(pad(x, {1, 1, 1, 1, 1, 1}),
                      Catch::Contains("pad 3 dims but the input f32 [2,3] has 2"));
  REQUIRE_THROWS_WITH(pad(x, {-2, -2}),
                      Catch::Contains("gives a negative size -1") && Catch::Contains("[2,3]"));
}

TEST_CASE("pad is bitwise identical on 1 and 2 threads", "[shape]") {
  int saved = get_num_threads();
  Tensor x = randn({1, 128, 32, 64});
  set_num_threads(1);
  Tensor a = pad(x, {1, 1, 1, 1});
  set_num_threads(2);
  Tensor b = pad(x, {1, 1, 1, 1});
  set_num_threads(saved);
  REQUIRE(test::bitwise_equal(a, b));
  REQUIRE(test::bitwise_equal(slice(slice(b, 2, 1, 33), 3, 1, 65), x));
}

// ---- pixel_shuffle --------------------------------------------------------------------------

TEST_CASE("pixel_shuffle/unshuffle gradcheck (also non-contiguous)", "[shape]") {
  Tensor x = test::random_leaf({1, 8, 2, 3}, -1, 1, 11);
  require_gradcheck([](const std::vector<Tensor>& in) { return pixel_shuffle(in[0], 2); },
                         {x});
  Tensor u = test::random_leaf({2, 1, 4, 6}, -1, 1, 12);
  require_gradcheck([](const std::vector<Tensor>& in) { return pixel_unshuffle(in[0], 2); },
                         {u});
  Tensor xp = permuted_leaf({1, 2, 3, 9}, {0, 3, 1, 2}, 13);  // [1,9,2,3]
  require_gradcheck([](const std::vector<Tensor>& in) { return pixel_shuffle(in[0], 3); },
                         {xp});
  Tensor up = permuted_leaf({1, 6, 3}, {0, 2, 1}, 14);  // [1,3,6] (3-D: no batch dim)
  require_gradcheck([](const std::vector<Tensor>& in) { return pixel_unshuffle(in[0], 3); },
                         {up});
}

TEST_CASE("pixel_shuffle/unshuffle match PyTorch", "[shape]") {
  test::check_golden_case("shape", "pixel_shuffle_r2",
                          [](const std::vector<Tensor>& in) { return pixel_shuffle(in[0], 2); });
  test::check_golden_case("shape", "pixel_shuffle_r3",
                          [](const std::vector<Tensor>& in) { return pixel_shuffle(in[0], 3); });
  test::check_golden_case("shape", "pixel_unshuffle_r2",
                          [](const std::vector<Tensor>& in) { return pixel_unshuffle(in[0], 2); });
  test::check_golden_case("shape", "pixel_unshuffle_r3",
                          [](const std::vector<Tensor>& in) { return pixel_unshuffle(in[0], 3); });
}

TEST_CASE("pixel_unshuffle inverts pixel_shuffle for any dtype", "[shape]") {
  Tensor x = arange(2 * 18 * 3 * 2).to(DType::i32);
  x = reshape(x, {2, 18, 3, 2});
  Tensor y = pixel_shuffle(x, 3);
  REQUIRE(y.sizes() == Shape{2, 2, 9, 6});
  REQUIRE(test::bitwise_equal(pixel_unshuffle(y, 3), x));
  // Batch dims beyond one are flattened like PyTorch's [*, C, H, W].
  Tensor z = randn({2, 3, 4, 2, 2}, DType::f64);
  REQUIRE(pixel_shuffle(z, 2).sizes() == Shape{2, 3, 1, 4, 4});
  REQUIRE(test::bitwise_equal(pixel_unshuffle(pixel_shuffle(z, 2), 2), z));
}

TEST_CASE("pixel_shuffle/unshuffle errors", "[shape]") {
  REQUIRE_THROWS_WITH(pixel_shuffle(zeros({1, 6, 2, 2}), 2),
                      Catch::Contains("pixel_shuffle: channels (6) must be divisible by r*r = 4") &&
                          Catch::Contains("[1,6,2,2]"));
  REQUIRE_THROWS_WITH(pixel_unshuffle(zeros({1, 2, 4, 5}), 2),
                      Catch::Contains("pixel_unshuffle: height (4) and width (5) must be divisible"));
  REQUIRE_THROWS_WITH(pixel_shuffle(zeros({4, 4}), 2), Catch::Contains("at least 3-D"));
  REQUIRE_THROWS_WITH(pixel_shuffle(zeros({1, 4, 2, 2}), 0), Catch::Contains("factor must be >= 1"));
}
