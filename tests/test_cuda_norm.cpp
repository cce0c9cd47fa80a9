// batch_norm, layer_norm and layer_norm2d on CUDA against the CPU kernels ([cuda], hidden: run by
// tools/gpu_check.sh): outputs, gradients of input / weight / bias, running statistics after a
// training step, eval mode, EfficientViT shapes and odd sizes, non-contiguous inputs.
//
// Both backends accumulate statistics in f64; only the summation order differs (per-block
// partials on the GPU, lanes on the CPU), so the default f32 tolerances hold.
#include "core/cuda.h"
#include "core/generator.h"
#include "ops/norm.h"
#include "ops/ops.h"
#include "tests/support/cuda_compare.h"

using namespace evit;
using evit::test::cuda0;
using evit::test::random_f32;
using evit::test::require_cuda_matches_cpu;

namespace {

// The same values as x, as a non-contiguous view (dims 0 and 1 swapped in memory).
Tensor strided(const Tensor& x) { return transpose(transpose(x, 0, 1).contiguous(), 0, 1); }

}  // namespace

TEST_CASE("CUDA batch_norm training matches the CPU, with running statistics after a step", "[.][cuda][cuda_norm]") {
  EVIT_REQUIRE_GPU();
  const std::vector<Shape> shapes = {{8, 64, 28, 28}, {3, 5, 7, 9}, {13, 7}, {2, 3, 33}};
  for (const Shape& s : shapes) {
    INFO("shape " << shape_str(s));
    const int64_t C = s[1];
    Tensor x = random_f32(s, true, -2.0, 3.0, 21);  // mean far from 0: the shifted sums matter
    Tensor w = random_f32({C}, true, 0.5, 1.5, 22);
    Tensor b = random_f32({C}, true, -0.5, 0.5, 23);
    // outputs and all gradients (running stats present, updated per call: no effect on y)
    require_cuda_matches_cpu(
        [C](const std::vector<Tensor>& in) {
          Tensor rm = zeros({C}, {DType::f32, in[0].device()});
          Tensor rv = ones({C}, {DType::f32, in[0].device()});
          return batch_norm(in[0], in[1], in[2], rm, rv, true, 0.1, 1e-5);
        },
        {x, w, b});
    // no affine, no running stats
    require_cuda_matches_cpu(
        [](const std::vector<Tensor>& in) {
          return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-3);
        },
        {x});
    // running statistics after two steps (momentum 0.2), compared element by element
    Tensor rm = random_f32({C}, false, -0.2, 0.2, 24), rv = random_f32({C}, false, 0.5, 2.0, 25);
    Tensor rm_d = rm.to(cuda0()), rv_d = rv.to(cuda0());
    Tensor xd = x.detach().to(cuda0());
    for (int step = 0; step < 2; ++step) {
      batch_norm(x.detach(), w.detach(), b.detach(), rm, rv, true, 0.2, 1e-5);
      batch_norm(xd, w.detach().to(cuda0()), b.detach().to(cuda0()), rm_d, rv_d, true, 0.2, 1e-5);
    }
    EVIT_REQUIRE_CLOSE(rm_d.to(kCPU), rm, 1e-5, 1e-6);
    EVIT_REQUIRE_CLOSE(rv_d.to(kCPU), rv, 1e-5, 1e-6);
  }
}

TEST_CASE("CUDA batch_norm updates strided running statistics and non-contiguous inputs", "[.][cuda][cuda_norm]") {
  EVIT_REQUIRE_GPU();
  Tensor x = random_f32({6, 10, 5, 3}, true, -1.0, 1.0, 31);
  Tensor w = random_f32({10}, true, 0.5, 1.5, 32);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return batch_norm(strided(in[0]), in[1], Tensor(), Tensor(), Tensor(), true);
      },
      {x, w});
  // running stats as every other element of a [20] buffer
  Tensor buf = random_f32({20}, false, 0.5, 1.5, 33);
  Tensor buf_d = buf.to(cuda0());
  Tensor rm = slice(buf, 0, 0, 20, 2), rv = slice(buf, 0, 1, 20, 2);
  Tensor rm_d = slice(buf_d, 0, 0, 20, 2), rv_d = slice(buf_d, 0, 1, 20, 2);
  batch_norm(x.detach(), Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  batch_norm(x.detach().to(cuda0()), Tensor(), Tensor(), rm_d, rv_d, true, 0.1, 1e-5);
  EVIT_REQUIRE_CLOSE(buf_d.to(kCPU), buf, 1e-5, 1e-6);
}

TEST_CASE("CUDA batch_norm eval mode matches the CPU", "[.][cuda][cuda_norm]") {
  EVIT_REQUIRE_GPU();
  for (const Shape& s : std::vector<Shape>{{8, 64, 28, 28}, {5, 3, 11, 13}, {9, 17}}) {
    INFO("shape " << shape_str(s));
    const int64_t C = s[1];
    Tensor x = random_f32(s, true, -1.0, 1.0, 41);
    Tensor w = random_f32({C}, true, 0.5, 1.5, 42);
    Tensor b = random_f32({C}, true, -0.5, 0.5, 43);
    Tensor rm = random_f32({C}, false, -0.3, 0.3, 44), rv = random_f32({C}, false, 0.5, 2.0, 45);
    require_cuda_matches_cpu(
        [rm, rv](const std::vector<Tensor>& in) {
          return batch_norm(in[0], in[1], in[2], rm.to(in[0].device()), rv.to(in[0].device()),
                            false);
        },
        {x, w, b});
    // only the input needs a gradient: the backward does no reductions
    require_cuda_matches_cpu(
        [rm, rv](const std::vector<Tensor>& in) {
          return batch_norm(in[0], Tensor(), Tensor(), rm.to(in[0].device()),
                            rv.to(in[0].device()), false);
        },
        {x});
  }
}

TEST_CASE("CUDA batch_norm in f64 matches the CPU tightly", "[.][cuda][cuda_norm]") {
  EVIT_REQUIRE_GPU();
  Generator g(51);
  Tensor x = uniform({4, 6, 9, 7}, -1.0, 2.0, DType::f64, &g).requires_grad_();
  Tensor w = uniform({6}, 0.5, 1.5, DType::f64, &g).requires_grad_();
  test::CudaCompareOptions o;
  o.rtol = o.grad_rtol = 1e-10;
  o.atol = o.grad_atol = 1e-12;
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return batch_norm(in[0], in[1], Tensor(), Tensor(), Tensor(), true);
      },
      {x, w}, o);
}

TEST_CASE("CUDA layer_norm matches the CPU (short and long rows, multi-dim shapes)", "[.][cuda][cuda_norm]") {
  EVIT_REQUIRE_GPU();
  struct Case {
    Shape x, norm;
  };
  const std::vector<Case> cases = {{{4, 50, 256}, {256}},  {{3, 1500}, {1500}}, {{7, 33}, {33}},
                                   {{5, 3, 7, 9}, {7, 9}}, {{2, 5, 1}, {1}},    {{6, 700}, {700}}};
  for (const Case& c : cases) {
    INFO("x " << shape_str(c.x) << " normalized " << shape_str(c.norm));
    Tensor x = random_f32(c.x, true, -2.0, 3.0, 61);
    Tensor w = random_f32(c.norm, true, 0.5, 1.5, 62);
    Tensor b = random_f32(c.norm, true, -0.5, 0.5, 63);
    const Shape ns = c.norm;
    require_cuda_matches_cpu(
        [ns](const std::vector<Tensor>& in) { return layer_norm(in[0], ns, in[1], in[2], 1e-5); },
        {x, w, b});
    require_cuda_matches_cpu(
        [ns](const std::vector<Tensor>& in) { return layer_norm(in[0], ns, Tensor(), Tensor(), 1e-3); },
        {x});
  }
  // non-contiguous input, weight only
  Tensor x = random_f32({6, 9, 40}, true, -1.0, 1.0, 64);
  Tensor w = random_f32({40}, true, 0.5, 1.5, 65);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return layer_norm(strided(in[0]), {40}, in[1], Tensor()); },
      {x, w});
}

TEST_CASE("CUDA layer_norm2d matches the CPU", "[.][cuda][cuda_norm]") {
  EVIT_REQUIRE_GPU();
  for (const Shape& s : std::vector<Shape>{{8, 64, 28, 28}, {3, 5, 7, 9}, {2, 130, 3, 1}}) {
    INFO("shape " << shape_str(s));
    Tensor x = random_f32(s, true, -2.0, 3.0, 71);
    Tensor w = random_f32({s[1]}, true, 0.5, 1.5, 72);
    Tensor b = random_f32({s[1]}, true, -0.5, 0.5, 73);
    require_cuda_matches_cpu(
        [](const std::vector<Tensor>& in) { return layer_norm2d(in[0], in[1], in[2], 1e-5); },
        {x, w, b});
    require_cuda_matches_cpu(
        [](const std::vector<Tensor>& in) { return layer_norm2d(strided(in[0]), Tensor(), in[1], 1e-6); },
        {x, b});
  }
}
