// The loss family on CUDA against the CPU kernels ([cuda], hidden: run by tools/gpu_check.sh):
// cross_entropy with every option (class indices with weights, ignore_index, label smoothing;
// probability targets; [N, C] rows of 1000 classes and [N, C, H, W] segmentation maps), BCE
// with logits and pos_weight, MSE, L1 and smooth L1, each with every reduction.
//
// Both backends add per-position losses in f64 (in a different order), so the default f32
// tolerances hold for the reduced values too.
#include <cmath>
#include <vector>

#include "core/cuda.h"
#include "core/generator.h"
#include "ops/ops.h"
#include "tests/support/cuda_compare.h"

using namespace evit;
using evit::test::cuda0;
using evit::test::random_f32;
using evit::test::require_cuda_matches_cpu;

namespace {

const Reduction kReductions[] = {Reduction::none, Reduction::mean, Reduction::sum};

// Class indices in [0, C) with every `every`-th position set to `ignore` (none when every == 0).
Tensor targets(const Shape& shape, int64_t C, int64_t every, int64_t ignore, uint64_t seed) {
  Generator g(seed);
  Tensor t = randint(0, C, shape, DType::i64, &g);
  if (every == 0) return t;
  std::vector<int64_t> v = t.to_vector<int64_t>();
  for (size_t i = 0; i < v.size(); i += static_cast<size_t>(every)) v[i] = ignore;
  return from_vector<int64_t>(v, shape);
}

}  // namespace

TEST_CASE("CUDA cross_entropy with class indices matches the CPU (rows of 1000 classes, odd sizes)", "[.][cuda][cuda_loss]") {
  EVIT_REQUIRE_GPU();
  struct Case {
    int64_t N, C;
  };
  for (const Case& c : std::vector<Case>{{64, 1000}, {37, 13}, {5, 2}, {3, 1100}}) {
    Tensor x = random_f32({c.N, c.C}, true, -4.0, 4.0, 101);
    Tensor w = random_f32({c.C}, false, 0.2, 2.0, 102);
    Tensor t = targets({c.N}, c.C, 0, -100, 103);
    Tensor t_ign = targets({c.N}, c.C, 3, -1, 104);
    for (Reduction r : kReductions) {
      for (double eps : {0.0, 0.1}) {
        INFO("N " << c.N << " C " << c.C << " reduction " << reduction_name(r) << " smoothing " << eps);
        require_cuda_matches_cpu(
            [r, eps](const std::vector<Tensor>& in) {
              return cross_entropy(in[0], in[1], Tensor(), -100, r, eps);
            },
            {x, t});
        require_cuda_matches_cpu(
            [r, eps](const std::vector<Tensor>& in) {
              return cross_entropy(in[0], in[1], in[2], -1, r, eps);
            },
            {x, t_ign, w});
      }
    }
  }
}

TEST_CASE("CUDA cross_entropy on segmentation maps with ignore_index 255 matches the CPU", "[.][cuda][cuda_loss]") {
  EVIT_REQUIRE_GPU();
  for (const Shape& s : std::vector<Shape>{{2, 19, 64, 128}, {3, 5, 7, 9}, {2, 4, 33}}) {
    const int64_t C = s[1];
    Shape ts = s;
    ts.erase(ts.begin() + 1);
    Tensor x = random_f32(s, true, -3.0, 3.0, 111);
    Tensor t = targets(ts, C, 7, 255, 112);
    Tensor w = random_f32({C}, false, 0.5, 1.5, 113);
    for (Reduction r : kReductions) {
      INFO("shape " << shape_str(s) << " reduction " << reduction_name(r));
      require_cuda_matches_cpu(
          [r](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], Tensor(), 255, r); },
          {x, t});
      require_cuda_matches_cpu(
          [r](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], in[2], 255, r, 0.1); },
          {x, t, w});
    }
  }
  // non-contiguous logits
  Tensor x = random_f32({3, 6, 5, 4}, true, -2.0, 2.0, 114);
  Tensor t = targets({3, 5, 4}, 6, 5, 255, 115);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return cross_entropy(transpose(transpose(in[0], 2, 3).contiguous(), 2, 3), in[1], Tensor(), 255);
      },
      {x, t});
}

TEST_CASE("CUDA cross_entropy with all targets ignored gives the CPU's NaN mean and zero sum", "[.][cuda][cuda_loss]") {
  EVIT_REQUIRE_GPU();
  Tensor x = random_f32({4, 3}, false);
  Tensor t = from_vector<int64_t>({-100, -100, -100, -100}, {4});
  Tensor mc = cross_entropy(x, t), md = cross_entropy(x.to(cuda0()), t.to(cuda0()));
  REQUIRE(std::isnan(mc.item<float>()));
  REQUIRE(std::isnan(md.item<float>()));
  REQUIRE(cross_entropy(x.to(cuda0()), t.to(cuda0()), Tensor(), -100, Reduction::sum).item<float>() == 0.0f);
}

TEST_CASE("CUDA cross_entropy names an out-of-range target like the CPU", "[.][cuda][cuda_loss]") {
  EVIT_REQUIRE_GPU();
  Tensor x = random_f32({2, 3, 2, 2}, false).to(cuda0());
  Tensor t = from_vector<int64_t>({0, 1, 2, 1, 0, 5, 3, 1}, {2, 2, 2}).to(cuda0());
  REQUIRE_THROWS_WITH(cross_entropy(x, t), Catch::Contains("target value 5") &&
                                               Catch::Contains("[1,0,1]") &&
                                               Catch::Contains("[0, 3)"));
  REQUIRE_THROWS_WITH(cross_entropy(x, t.to(kCPU)), Catch::Contains("one device"));
}

TEST_CASE("CUDA cross_entropy with probability targets matches the CPU", "[.][cuda][cuda_loss]") {
  EVIT_REQUIRE_GPU();
  for (const Shape& s : std::vector<Shape>{{16, 1000}, {9, 7}, {2, 5, 6, 7}}) {
    const int64_t C = s[1];
    Tensor x = random_f32(s, true, -3.0, 3.0, 121);
    Tensor p = softmax(random_f32(s, false, -2.0, 2.0, 122), 1).detach().requires_grad_();
    Tensor w = random_f32({C}, false, 0.5, 1.5, 123);
    for (Reduction r : kReductions) {
      for (double eps : {0.0, 0.2}) {
        INFO("shape " << shape_str(s) << " reduction " << reduction_name(r) << " smoothing " << eps);
        require_cuda_matches_cpu(
            [r, eps](const std::vector<Tensor>& in) {
              return cross_entropy(in[0], in[1], Tensor(), -100, r, eps);
            },
            {x, p});
        require_cuda_matches_cpu(
            [r, eps](const std::vector<Tensor>& in) {
              return cross_entropy(in[0], in[1], in[2], -100, r, eps);
            },
            {x, p.detach(), w});
      }
    }
  }
}

TEST_CASE("CUDA binary_cross_entropy_with_logits, mse, l1 and smooth_l1 match the CPU", "[.][cuda][cuda_loss]") {
  EVIT_REQUIRE_GPU();
  for (const Shape& s : std::vector<Shape>{{64, 1000}, {3, 7, 11}, {1}}) {
    Tensor x = random_f32(s, true, -5.0, 5.0, 131);
    Tensor t01 = random_f32(s, true, 0.0, 1.0, 132);
    Tensor t = random_f32(s, true, -3.0, 3.0, 133);
    // pos_weight without a gradient here: its gradient is reduced to [C] by the engine's sum_to
    // (the reduce family's CUDA kernels), checked in the next test case.
    Tensor pw = random_f32({s.back()}, false, 0.5, 3.0, 134);
    for (Reduction r : kReductions) {
      INFO("shape " << shape_str(s) << " reduction " << reduction_name(r));
      require_cuda_matches_cpu(
          [r](const std::vector<Tensor>& in) {
            return binary_cross_entropy_with_logits(in[0], in[1], Tensor(), r);
          },
          {x, t01});
      require_cuda_matches_cpu(
          [r](const std::vector<Tensor>& in) {
            return binary_cross_entropy_with_logits(in[0], in[1], in[2], r);
          },
          {x, t01, pw});
      require_cuda_matches_cpu([r](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); },
                               {x, t});
      require_cuda_matches_cpu([r](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1], r); },
                               {x, t});
      for (double beta : {1.0, 0.5, 0.0}) {
        INFO("beta " << beta);
        require_cuda_matches_cpu(
            [r, beta](const std::vector<Tensor>& in) { return smooth_l1_loss(in[0], in[1], r, beta); },
            {x, t});
      }
    }
  }
  // non-contiguous input, target without a gradient
  Tensor x = random_f32({8, 5}, true, -2.0, 2.0, 135);
  Tensor t = random_f32({8, 5}, false, -2.0, 2.0, 136);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return mse_loss(transpose(transpose(in[0], 0, 1).contiguous(), 0, 1), in[1]);
      },
      {x, t});
}

TEST_CASE("CUDA binary_cross_entropy_with_logits gradient of a broadcast pos_weight", "[.][cuda][cuda_loss]") {
  EVIT_REQUIRE_GPU();
  Tensor x = random_f32({6, 4}, true, -5.0, 5.0, 137);
  Tensor t = random_f32({6, 4}, false, 0.0, 1.0, 138);
  Tensor pw = random_f32({4}, true, 0.5, 3.0, 139);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return binary_cross_entropy_with_logits(in[0], in[1], in[2]); },
      {x, t, pw});
}

TEST_CASE("CUDA losses in f64 match the CPU tightly", "[.][cuda][cuda_loss]") {
  EVIT_REQUIRE_GPU();
  Generator g(141);
  Tensor x = uniform({6, 11, 4, 3}, -3.0, 3.0, DType::f64, &g).requires_grad_();
  Tensor t = targets({6, 4, 3}, 11, 5, 255, 142);
  test::CudaCompareOptions o;
  o.rtol = o.grad_rtol = 1e-11;
  o.atol = o.grad_atol = 1e-13;
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], Tensor(), 255, Reduction::mean, 0.1); },
      {x, t}, o);
  Tensor y = uniform({6, 11, 4, 3}, -3.0, 3.0, DType::f64, &g);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return smooth_l1_loss(in[0], in[1], Reduction::mean, 0.7); },
      {x, y}, o);
}
