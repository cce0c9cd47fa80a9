// softmax, log_softmax and scaled_dot_product_attention on CUDA against the CPU kernels
// ([cuda], hidden: run by tools/gpu_check.sh). Row sums accumulate in f64 on both backends; exp
// differs by an ulp between the CPU's vectorised exp and CUDA's expf, well inside the default
// tolerances.
#include <cmath>
#include <limits>

#include "core/cuda.h"
#include "core/generator.h"
#include "ops/ops.h"
#include "tests/support/cuda_compare.h"

using namespace evit;
using evit::test::cuda0;
using evit::test::random_f32;
using evit::test::require_cuda_matches_cpu;

TEST_CASE("CUDA softmax and log_softmax match the CPU over every dim", "[.][cuda][cuda_softmax]") {
  EVIT_REQUIRE_GPU();
  Tensor x = random_f32({4, 7, 9, 5}, true, -6.0, 6.0, 81);
  for (int64_t dim = -4; dim < 4; ++dim) {
    INFO("dim " << dim);
    require_cuda_matches_cpu([dim](const std::vector<Tensor>& in) { return softmax(in[0], dim); }, {x});
    require_cuda_matches_cpu([dim](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); }, {x});
  }
}

TEST_CASE("CUDA softmax rows: 1000 classes, long, short and odd rows, non-contiguous input", "[.][cuda][cuda_softmax]") {
  EVIT_REQUIRE_GPU();
  // warp rows (<= 512), block rows (> 512), a single element, a column softmax
  for (const Shape& s : std::vector<Shape>{{16, 1000}, {8, 3001}, {33, 17}, {5, 1}, {1, 513}, {300, 2}}) {
    INFO("shape " << shape_str(s));
    Tensor x = random_f32(s, true, -10.0, 10.0, 82);
    require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return softmax(in[0], -1); }, {x});
    require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); }, {x});
    require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return softmax(in[0], 0); }, {x});
  }
  Tensor x = random_f32({6, 40, 30}, true, -3.0, 3.0, 83);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return softmax(transpose(in[0], 1, 2), 2); }, {x});
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return log_softmax(permute(in[0], {2, 0, 1}), 1); }, {x});
  // 0-D input
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return softmax(in[0], 0); },
                           {random_f32({}, true, -1.0, 1.0, 84)});
}

TEST_CASE("CUDA softmax handles -inf entries and all -inf rows like the CPU", "[.][cuda][cuda_softmax]") {
  EVIT_REQUIRE_GPU();
  const float ninf = -std::numeric_limits<float>::infinity();
  Tensor x = from_vector<float>({1.0f, ninf, 2.0f, ninf, ninf, ninf, 0.5f, 0.5f, ninf}, {3, 3});
  for (bool log : {false, true}) {
    Tensor yc = log ? log_softmax(x, 1) : softmax(x, 1);
    Tensor yd = (log ? log_softmax(x.to(cuda0()), 1) : softmax(x.to(cuda0()), 1)).to(kCPU);
    std::vector<float> a = yc.to_vector<float>(), b = yd.to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) {
      INFO("log " << log << " element " << i << ": cpu " << a[i] << " cuda " << b[i]);
      if (std::isnan(a[i])) REQUIRE(std::isnan(b[i]));
      else if (std::isinf(a[i])) REQUIRE(a[i] == b[i]);
      else REQUIRE(std::abs(a[i] - b[i]) <= 1e-6f + 1e-5f * std::abs(a[i]));
    }
  }
}

TEST_CASE("CUDA softmax in f64 matches the CPU tightly", "[.][cuda][cuda_softmax]") {
  EVIT_REQUIRE_GPU();
  Generator g(85);
  Tensor x = uniform({5, 700, 3}, -5.0, 5.0, DType::f64, &g).requires_grad_();
  test::CudaCompareOptions o;
  o.rtol = o.grad_rtol = 1e-12;
  o.atol = o.grad_atol = 1e-14;
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return softmax(in[0], 1); }, {x}, o);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return log_softmax(in[0], 2); }, {x}, o);
}

TEST_CASE("CUDA scaled_dot_product_attention matches the CPU", "[.][cuda][cuda_softmax]") {
  EVIT_REQUIRE_GPU();
  struct Case {
    int64_t B, H, Nq, Nk, d, dv;
  };
  // SAM decoder-like shapes, then odd sizes (and a key count above the warp-row limit)
  for (const Case& c : std::vector<Case>{{1, 8, 7, 64, 32, 32}, {2, 4, 50, 37, 16, 24}, {1, 1, 3, 600, 5, 1}}) {
    INFO("B " << c.B << " H " << c.H << " Nq " << c.Nq << " Nk " << c.Nk << " d " << c.d << " dv " << c.dv);
    Tensor q = random_f32({c.B, c.H, c.Nq, c.d}, true, -1.0, 1.0, 91);
    Tensor k = random_f32({c.B, c.H, c.Nk, c.d}, true, -1.0, 1.0, 92);
    Tensor v = random_f32({c.B, c.H, c.Nk, c.dv}, true, -1.0, 1.0, 93);
    require_cuda_matches_cpu(
        [](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2]); },
        {q, k, v});
    require_cuda_matches_cpu(
        [](const std::vector<Tensor>& in) {
          return scaled_dot_product_attention(in[0], in[1], in[2], 0.3);
        },
        {q, k.detach(), v});  // k without a gradient
  }
  // non-contiguous q (heads and tokens swapped in memory)
  Tensor q = random_f32({2, 9, 3, 8}, true, -1.0, 1.0, 94);
  Tensor k = random_f32({2, 3, 11, 8}, true, -1.0, 1.0, 95);
  Tensor v = random_f32({2, 3, 11, 6}, true, -1.0, 1.0, 96);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return scaled_dot_product_attention(transpose(in[0], 1, 2), in[1], in[2]);
      },
      {q, k, v});
}
