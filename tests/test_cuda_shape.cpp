// Shape ops, pooling, resizing and dropout on CUDA vs the CPU ([cuda], hidden: run by
// tools/gpu_check.sh): cat/split/chunk, pad (grow, crop, mixed), pixel_shuffle/unshuffle,
// avg/max/adaptive pooling with strides, padding and ceil_mode, interpolate in every mode with
// align_corners both ways and odd sizes, and dropout masks equal to the CPU's for one generator.
#include "core/cuda.h"
#include "core/generator.h"
#include "ops/ops.h"
#include "tests/support/cuda_compare.h"

using namespace evit;
using evit::test::CudaCompareOptions;
using evit::test::cuda0;
using evit::test::random_f32;
using evit::test::require_cuda_matches_cpu;

namespace {

// Copies and gathers in the CPU's order: exact.
CudaCompareOptions exact() {
  CudaCompareOptions o;
  o.rtol = o.grad_rtol = 0;
  o.atol = o.grad_atol = 0;
  return o;
}

}  // namespace

TEST_CASE("CUDA cat, split and chunk match the CPU", "[.][cuda][shape_cuda]") {
  EVIT_REQUIRE_GPU();
  Tensor a = random_f32({2, 3, 5, 7}, true, -1, 1, 1);
  Tensor b = random_f32({2, 4, 5, 7}, true, -1, 1, 2);
  Tensor c = random_f32({2, 1, 5, 7}, true, -1, 1, 3);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return cat({in[0], in[1], in[2]}, 1); }, {a, b, c},
      exact());
  // last dim, a non-contiguous operand, an empty operand
  Tensor d = random_f32({2, 3, 7, 5}, true, -1, 1, 4);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        Tensor e = slice(in[0], 3, 0, 0);
        return cat({in[0], transpose(in[1], 2, 3), e}, 3);
      },
      {a, d}, exact());
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return cat({in[0], in[0]}, 0); },
                           {a}, exact());
  // split / chunk are views; their pieces recombine (and differentiate) on the device
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        auto parts = chunk(in[0], 3, 1);  // 4 channels -> 2 + 2
        auto s = split(in[0], 3, 3);      // 7 -> 3 + 3 + 1
        Tensor channels = cat({mul(parts[1], 2.0), parts[0]}, 1);
        Tensor columns = cat({s[2], s[0], s[1]}, 3);
        return add(channels, columns);
      },
      {b}, exact());
  // integer dtypes copy bit for bit
  Generator g(1);
  Tensor xi = randint(0, 100, {3, 4}, DType::i64, &g);
  REQUIRE(test::bitwise_equal(cat({xi.to(cuda0()), xi.to(cuda0())}, 1).to(kCPU), cat({xi, xi}, 1)));
}

TEST_CASE("CUDA pad matches the CPU: grow, crop, mixed, any rank", "[.][cuda][shape_cuda]") {
  EVIT_REQUIRE_GPU();
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{2, 3, 5, 7}, {1, 2}},
      {{2, 3, 5, 7}, {1, 2, 3, 0}},
      {{2, 3, 5, 7}, {-1, 2, 0, -3}},
      {{2, 3, 5, 7}, {0, 0, 0, 0, 1, 1}},
      {{2, 3, 5, 7}, {2, -2, -1, 1, -1, 0, 1, 0}},
      {{9}, {3, -4}},
      {{4, 6}, {-6, 1}},  // a whole dim cropped away: all padding
      {{8, 64, 13, 13}, {0, 1, 0, 1}},
  };
  for (const auto& [shape, p] : cases) {
    INFO("shape " << shape_str(shape) << " pad " << shape_str(p));
    Tensor x = random_f32(shape, true, -1, 1, 5);
    require_cuda_matches_cpu([p = p](const std::vector<Tensor>& in) { return pad(in[0], p, 0.5); },
                             {x}, exact());
  }
  // a non-contiguous input
  Tensor x = random_f32({3, 6, 5}, true, -1, 1, 6);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return pad(transpose(in[0], 1, 2), {1, 1, 2, 0}); }, {x},
      exact());
}

TEST_CASE("CUDA pixel_shuffle and pixel_unshuffle match the CPU", "[.][cuda][shape_cuda]") {
  EVIT_REQUIRE_GPU();
  for (int64_t r : {2, 3}) {
    INFO("r " << r);
    Tensor x = random_f32({2, 5 * r * r, 7, 6}, true, -1, 1, 7);
    require_cuda_matches_cpu([r](const std::vector<Tensor>& in) { return pixel_shuffle(in[0], r); },
                             {x}, exact());
    Tensor z = random_f32({2, 5, 7 * r, 6 * r}, true, -1, 1, 8);
    require_cuda_matches_cpu(
        [r](const std::vector<Tensor>& in) { return pixel_unshuffle(in[0], r); }, {z}, exact());
    // 3-D input and a non-contiguous one
    Tensor w = random_f32({3 * r * r, 5, 4}, true, -1, 1, 9);
    require_cuda_matches_cpu([r](const std::vector<Tensor>& in) { return pixel_shuffle(in[0], r); },
                             {w}, exact());
    Tensor v = random_f32({2, 4 * r, 3, 2 * r}, true, -1, 1, 10);  // [N, W, C, H] -> [N, C, H, W]
    require_cuda_matches_cpu(
        [r](const std::vector<Tensor>& in) { return pixel_unshuffle(permute(in[0], {0, 2, 3, 1}), r); },
        {v}, exact());
  }
  Generator g(2);
  Tensor xi = randint(0, 100, {1, 8, 3, 3}, DType::i32, &g);
  REQUIRE(test::bitwise_equal(pixel_shuffle(xi.to(cuda0()), 2).to(kCPU), pixel_shuffle(xi, 2)));
}

TEST_CASE("CUDA pooling matches the CPU (avg, max, adaptive)", "[.][cuda][pool_cuda]") {
  EVIT_REQUIRE_GPU();
  struct Case {
    Shape shape;
    std::vector<int64_t> k, s, p;
    bool ceil;
  };
  const std::vector<Case> cases = {
      {{2, 3, 8, 8}, {2}, {}, {0}, false},
      {{2, 3, 13, 11}, {3}, {2}, {1}, false},
      {{2, 3, 13, 11}, {3}, {2}, {1}, true},
      {{1, 4, 14, 14}, {3, 2}, {1, 2}, {1, 0}, false},
      {{1, 2, 7, 9}, {5}, {3}, {2}, true},
      {{8, 64, 14, 14}, {3}, {2}, {1}, false},
  };
  // Forward sums are the CPU's loops (f64 window sums) and the gathers add in the CPU's order.
  for (const Case& c : cases) {
    INFO("shape " << shape_str(c.shape) << " kernel " << shape_str(c.k) << " stride "
                  << shape_str(c.s) << " padding " << shape_str(c.p) << " ceil " << c.ceil);
    Tensor x = random_f32(c.shape, true, -1, 1, 11);
    for (bool cip : {true, false})
      require_cuda_matches_cpu(
          [&c, cip](const std::vector<Tensor>& in) {
            return avg_pool2d(in[0], c.k, c.s, c.p, c.ceil, cip);
          },
          {x}, exact());
    require_cuda_matches_cpu(
        [&c](const std::vector<Tensor>& in) { return max_pool2d(in[0], c.k, c.s, c.p, c.ceil); },
        {x}, exact());
    Tensor xd = x.detach().to(cuda0());
    REQUIRE(test::bitwise_equal(max_pool2d_with_indices(xd, c.k, c.s, c.p, c.ceil).second.to(kCPU),
                                max_pool2d_with_indices(x.detach(), c.k, c.s, c.p, c.ceil).second));
  }
  // max pooling with ties (first in window order wins) and overlapping windows
  Generator g(3);
  Tensor tied = randint(-2, 3, {2, 3, 9, 9}, DType::i64, &g).to(DType::f32).requires_grad_();
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return max_pool2d(in[0], {3}, {1}, {1}); }, {tied},
      exact());
  // adaptive bins: down, identity, up, uneven, and global
  const std::vector<std::pair<Shape, std::vector<int64_t>>> acases = {
      {{2, 3, 14, 14}, {7}}, {{2, 3, 13, 11}, {5, 3}}, {{1, 2, 5, 5}, {5}},
      {{1, 2, 3, 4}, {5, 7}}, {{8, 64, 7, 7}, {1}}};
  for (const auto& [shape, os] : acases) {
    INFO("adaptive " << shape_str(shape) << " -> " << shape_str(os));
    Tensor x = random_f32(shape, true, -1, 1, 12);
    require_cuda_matches_cpu(
        [os = os](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], os); }, {x},
        exact());
  }
  // a non-contiguous input
  Tensor base = random_f32({2, 9, 9, 3}, true, -1, 1, 13);  // NHWC
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return avg_pool2d(permute(in[0], {0, 3, 1, 2}), {3}, {2}, {1});
      },
      {base}, exact());
}

TEST_CASE("CUDA interpolate matches the CPU in every mode", "[.][cuda][resize_cuda]") {
  EVIT_REQUIRE_GPU();
  // Same taps as the CPU (computed by its code) and the same order of operations; the GPU may
  // contract a*b + c into an FMA, so f32 agrees to a few ulps, not bitwise.
  CudaCompareOptions o;
  o.rtol = o.grad_rtol = 1e-5;
  o.atol = o.grad_atol = 1e-6;
  const std::vector<std::pair<Shape, std::vector<int64_t>>> sizes = {
      {{2, 3, 7, 9}, {14, 18}},   // x2 up
      {{2, 3, 14, 18}, {7, 9}},   // x2 down
      {{2, 3, 7, 9}, {11, 5}},    // odd, up and down at once
      {{1, 2, 9, 13}, {4, 13}},   // one axis unchanged (bilinear skips it)
      {{1, 1, 1, 5}, {3, 2}},     // a single input row
      {{4, 32, 16, 16}, {64, 64}},  // segmentation-head style x4
  };
  for (InterpolateMode mode :
       {InterpolateMode::nearest, InterpolateMode::bilinear, InterpolateMode::bicubic})
    for (bool ac : {false, true}) {
      if (mode == InterpolateMode::nearest && ac) continue;
      for (const auto& [shape, size] : sizes) {
        INFO(interpolate_mode_name(mode) << " align_corners " << ac << " " << shape_str(shape)
                                         << " -> " << shape_str(size));
        Tensor x = random_f32(shape, true, -1, 1, 14);
        require_cuda_matches_cpu(
            [mode, ac, size = size](const std::vector<Tensor>& in) {
              return interpolate(in[0], size, {}, mode, ac);
            },
            {x}, o);
      }
      // scale factors (x2, x0.5, non-integer) and a non-contiguous input
      for (const std::vector<double>& sf :
           std::vector<std::vector<double>>{{2.0}, {0.5}, {1.7, 0.6}}) {
        INFO(interpolate_mode_name(mode) << " align_corners " << ac << " scale " << sf[0]);
        Tensor x = random_f32({2, 9, 11, 3}, true, -1, 1, 15);  // NHWC
        require_cuda_matches_cpu(
            [mode, ac, sf](const std::vector<Tensor>& in) {
              return interpolate(permute(in[0], {0, 3, 1, 2}), {}, sf, mode, ac);
            },
            {x}, o);
      }
    }
  // f64: agreement to f64 rounding
  CudaCompareOptions tight;
  tight.rtol = tight.grad_rtol = 1e-12;
  tight.atol = tight.grad_atol = 1e-13;
  Tensor x64 = random_f32({1, 2, 5, 6}, false, -1, 1, 16).to(DType::f64).requires_grad_();
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return interpolate(in[0], {9, 13}, {}, InterpolateMode::bicubic, false);
      },
      {x64}, tight);
}

TEST_CASE("CUDA dropout draws the CPU's mask from the same generator", "[.][cuda][dropout_cuda]") {
  EVIT_REQUIRE_GPU();
  // Each call of the compared function starts a fresh generator with the same seed, so the CPU
  // and CUDA runs draw from the same Philox counters: outputs and gradients are equal exactly.
  Tensor x = random_f32({4, 6, 9, 11}, true, -1, 1, 17);
  for (double p : {0.1, 0.5, 0.9}) {
    INFO("p " << p);
    require_cuda_matches_cpu(
        [p](const std::vector<Tensor>& in) {
          Generator g(1234);
          return dropout(in[0], p, true, &g);
        },
        {x}, exact());
    require_cuda_matches_cpu(
        [p](const std::vector<Tensor>& in) {
          Generator g(99);
          return dropout2d(in[0], p, true, &g);
        },
        {x}, exact());
    require_cuda_matches_cpu(
        [p](const std::vector<Tensor>& in) {
          Generator g(7);
          return drop_path(in[0], p, true, &g);
        },
        {x}, exact());
  }
  // An odd element count (a partial last Philox counter), an advanced generator offset, and the
  // generator state after the call (both devices reserve the same counters).
  Tensor odd = random_f32({1001}, false, -1, 1, 18);
  Generator gh(5), gd(5);
  gh.reserve(37);
  gd.reserve(37);
  Tensor yh = dropout(odd, 0.3, true, &gh);
  Tensor yd = dropout(odd.to(cuda0()), 0.3, true, &gd);
  REQUIRE(test::bitwise_equal(yd.to(kCPU), yh));
  REQUIRE(gh.next_u64() == gd.next_u64());
  // eval mode and p = 1 (everything dropped)
  Tensor xd = odd.to(cuda0());
  REQUIRE(dropout(xd, 0.5, false).is_same(xd));
  Generator g1(2);
  REQUIRE(evit::max(evit::abs(dropout(xd, 1.0, true, &g1))).item<float>() == 0.0f);
}
