// The reduction family on CUDA vs the CPU ([cuda], hidden: run by tools/gpu_check.sh): sum,
// mean, var over inner / outer / several dims with and without keepdim, short rows, long rows
// (the per-piece path) and multi-million-element full reductions, sum_to through the backward of
// broadcasting ops, max/min/argmax with ties and NaN (indices must equal the CPU's exactly).
#include <cmath>

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

// Values on a coarse grid so that max/min see many ties (first occurrence must win).
Tensor tied_f32(const Shape& shape, uint64_t seed, bool requires_grad = true) {
  Generator g(seed);
  Tensor t = randint(-4, 5, shape, DType::i64, &g).to(DType::f32);
  if (requires_grad) t.requires_grad_();
  return t;
}

// The order of additions differs from the CPU's (threads and pieces vs 8 CPU lanes), so f32
// results agree to accumulated rounding only; both accumulate in f64, so 1e-5 is ample.
CudaCompareOptions reduce_tol() {
  CudaCompareOptions o;
  o.rtol = o.grad_rtol = 1e-5;
  o.atol = o.grad_atol = 1e-6;
  return o;
}

}  // namespace

TEST_CASE("CUDA sum and mean match the CPU over any dims, with keepdim", "[.][cuda][reduce_cuda]") {
  EVIT_REQUIRE_GPU();
  const std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {3}, {-1}, {1, 2}, {0, 3}, {0, 1, 2}};
  for (const Shape& shape : {Shape{3, 7, 9, 5}, Shape{2, 65, 3, 70}, Shape{8, 64, 14, 14}}) {
    Tensor x = random_f32(shape, true, -1, 1, 3);
    for (const auto& dims : dim_sets)
      for (bool keep : {false, true}) {
        INFO("shape " << shape_str(shape) << " dims " << shape_str(dims) << " keepdim " << keep);
        require_cuda_matches_cpu(
            [dims, keep](const std::vector<Tensor>& in) { return sum(in[0], dims, keep); }, {x},
            reduce_tol());
        require_cuda_matches_cpu(
            [dims, keep](const std::vector<Tensor>& in) { return mean(in[0], dims, keep); }, {x},
            reduce_tol());
      }
  }
  // a non-contiguous input (permuted view) and long rows (several 16K pieces per row)
  Tensor base = random_f32({5, 6, 7}, true, -1, 1, 4);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return sum(permute(in[0], {2, 0, 1}), {1}, true); },
      {base}, reduce_tol());
  Tensor longrows = random_f32({3, 40001}, true, -1, 1, 6);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return sum(in[0], {1}); },
                           {longrows}, reduce_tol());
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return mean(in[0], {0}); },
                           {longrows}, reduce_tol());
  // f64 agrees to f64 rounding
  Tensor x64 = random_f32({4, 33, 17}, false, -1, 1, 8).to(DType::f64).requires_grad_();
  CudaCompareOptions tight;
  tight.rtol = tight.grad_rtol = 1e-12;
  tight.atol = tight.grad_atol = 1e-13;
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return sum(in[0], {0, 2}); }, {x64},
                           tight);
  // integers sum exactly; integer mean truncates like the CPU
  Generator gi(17);
  Tensor xi = randint(-50, 50, {6, 70, 3}, DType::i64, &gi);
  for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{{}, {1}, {0, 2}}) {
    Tensor hs = sum(xi, dims), ds = sum(xi.to(cuda0()), dims).to(kCPU);
    REQUIRE(test::bitwise_equal(ds, hs));
    REQUIRE(test::bitwise_equal(mean(xi.to(cuda0()), dims).to(kCPU), mean(xi, dims)));
  }
  REQUIRE(test::bitwise_equal(sum(xi.to(DType::i32).to(cuda0())).to(kCPU), sum(xi.to(DType::i32))));
}

TEST_CASE("CUDA full reductions of millions of elements match the CPU", "[.][cuda][reduce_cuda]") {
  EVIT_REQUIRE_GPU();
  // 3M elements: ~184 pieces combined in a different order than the CPU's; rtol 1e-4 covers
  // the f32 rounding of inputs summed in f64 in another order (the final value is rounded once).
  CudaCompareOptions o;
  o.rtol = o.grad_rtol = 1e-4;
  o.atol = o.grad_atol = 1e-5;
  Tensor x = random_f32({3, 1000, 1000}, true, -1, 2, 12);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return sum(in[0]); }, {x}, o);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return mean(in[0]); }, {x}, o);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return var(in[0]); }, {x}, o);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return sum(in[0], {1, 2}); }, {x}, o);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return evit::max(in[0]); }, {x}, o);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return evit::min(in[0]); }, {x}, o);
  Tensor xd = x.detach().to(cuda0());
  REQUIRE(test::bitwise_equal(argmax(reshape(xd, {-1}), 0).to(kCPU),
                              argmax(reshape(x.detach(), {-1}), 0)));
}

TEST_CASE("CUDA sum_to reduces the gradients of broadcasting ops like the CPU", "[.][cuda][reduce_cuda]") {
  EVIT_REQUIRE_GPU();
  // add/mul backward reduce the broadcast dims through sum_to
  Tensor a = random_f32({4, 1, 6}, true, -1, 1, 1);
  Tensor b = random_f32({5, 6}, true, -1, 1, 2);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b},
                           reduce_tol());
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b},
                           reduce_tol());
  // a per-channel bias of an EfficientViT-like activation
  Tensor x = random_f32({8, 64, 14, 14}, true, -1, 1, 3);
  Tensor bias = random_f32({64, 1, 1}, true, -1, 1, 4);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return add(in[0], in[1]); },
                           {x, bias}, reduce_tol());
  // sum_to directly, including leading dims and size-1 dims
  Tensor y = random_f32({3, 5, 7, 9}, true, -1, 1, 5);
  for (const Shape& target : {Shape{7, 9}, Shape{1, 9}, Shape{5, 1, 1}, Shape{1, 5, 7, 1}, Shape{}}) {
    INFO("target " << shape_str(target));
    require_cuda_matches_cpu(
        [target](const std::vector<Tensor>& in) { return sum_to(in[0], target); }, {y},
        reduce_tol());
  }
}

TEST_CASE("CUDA var matches the CPU (biased/unbiased, dims, keepdim)", "[.][cuda][reduce_cuda]") {
  EVIT_REQUIRE_GPU();
  // Offset data (mean 3) checks that the two-pass form does not cancel.
  Tensor x = random_f32({6, 13, 5, 9}, true, 2.0, 4.0, 7);
  for (const std::vector<int64_t>& dims :
       std::vector<std::vector<int64_t>>{{}, {0}, {3}, {1, 2}, {0, 2, 3}})
    for (bool unbiased : {false, true})
      for (bool keep : {false, true}) {
        INFO("dims " << shape_str(dims) << " unbiased " << unbiased << " keepdim " << keep);
        require_cuda_matches_cpu(
            [dims, unbiased, keep](const std::vector<Tensor>& in) {
              return var(in[0], dims, unbiased, keep);
            },
            {x}, reduce_tol());
      }
  Tensor longrows = random_f32({2, 50000}, true, -1, 1, 9);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return var(in[0], {1}); },
                           {longrows}, reduce_tol());
  // one element per row: unbiased variance is NaN (0/0) on both devices
  Tensor one = random_f32({4, 1}, false);
  Tensor vd = var(one.to(cuda0()), {1}).to(kCPU);
  for (float v : vd.to_vector<float>()) REQUIRE(std::isnan(v));
}

TEST_CASE("CUDA max/min/argmax match the CPU, first occurrence on ties", "[.][cuda][reduce_cuda]") {
  EVIT_REQUIRE_GPU();
  CudaCompareOptions exact;  // selections are exact copies
  exact.rtol = exact.grad_rtol = 0;
  exact.atol = exact.grad_atol = 0;
  // shapes: reduced dim outer/middle/inner; short (<= 64) and long innermost runs, with ties
  const std::vector<Shape> shapes = {{5, 7, 9}, {3, 200, 11}, {4, 300}, {2, 40000}, {8, 1000}};
  for (size_t s = 0; s < shapes.size(); ++s) {
    Tensor x = tied_f32(shapes[s], 20 + s);
    for (int64_t dim = 0; dim < x.dim(); ++dim)
      for (bool keep : {false, true}) {
        INFO("shape " << shape_str(shapes[s]) << " dim " << dim << " keepdim " << keep);
        require_cuda_matches_cpu(
            [dim, keep](const std::vector<Tensor>& in) { return evit::max(in[0], dim, keep).first; },
            {x}, exact);
        require_cuda_matches_cpu(
            [dim, keep](const std::vector<Tensor>& in) { return evit::min(in[0], dim, keep).first; },
            {x}, exact);
        Tensor xd = x.detach().to(cuda0());
        REQUIRE(test::bitwise_equal(evit::max(xd, dim, keep).second.to(kCPU),
                                    evit::max(x.detach(), dim, keep).second));
        REQUIRE(test::bitwise_equal(evit::min(xd, dim, keep).second.to(kCPU),
                                    evit::min(x.detach(), dim, keep).second));
        REQUIRE(test::bitwise_equal(argmax(xd, dim, keep).to(kCPU), argmax(x.detach(), dim, keep)));
      }
    // global max/min with their gradient going to the first occurrence
    require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return evit::max(in[0]); }, {x},
                             exact);
    require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return evit::min(in[0]); }, {x},
                             exact);
  }
  // a non-contiguous input
  Tensor base = tied_f32({6, 5, 4}, 31);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return evit::max(transpose(in[0], 0, 2), 1).first; },
      {base}, exact);
  // NaN wins and propagates, at its first position
  std::vector<float> v(3000, 1.0f);
  v[1234] = std::nanf("");
  v[2000] = std::nanf("");
  Tensor xn = from_vector<float>(v, {3, 1000});
  for (int64_t dim : {0, 1}) {
    REQUIRE(test::bitwise_equal(evit::max(xn.to(cuda0()), dim).second.to(kCPU), evit::max(xn, dim).second));
    REQUIRE(test::bitwise_equal(evit::min(xn.to(cuda0()), dim).second.to(kCPU), evit::min(xn, dim).second));
  }
  REQUIRE(std::isnan(evit::max(xn.to(cuda0())).item<float>()));
  // integer dtypes
  Generator gi(19);
  Tensor xi = randint(-5, 5, {7, 130}, DType::i64, &gi);
  REQUIRE(test::bitwise_equal(argmax(xi.to(cuda0()), 1).to(kCPU), argmax(xi, 1)));
  REQUIRE(test::bitwise_equal(evit::max(xi.to(cuda0())).to(kCPU), evit::max(xi)));
}
