// matmul and linear on CUDA (cuBLAS) against the CPU kernels ([cuda], hidden: run by
// tools/gpu_check.sh), in f32 (TF32 off) and f64, plus autocast (f16/bf16 GEMMs, f32 results).
#include "core/cuda.h"
#include "ops/autocast.h"
#include "ops/ops.h"
#include "tests/support/cuda_compare.h"

using namespace evit;
using evit::test::CudaCompareOptions;
using evit::test::random_f32;
using evit::test::require_cuda_matches_cpu;

namespace {

Tensor mm(const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }

}  // namespace

TEST_CASE("CUDA matmul matches the CPU: 2-D, batched, broadcast, vectors, views", "[.][cuda][cuda_linalg]") {
  EVIT_REQUIRE_GPU();
  cuda::set_allow_tf32(false);
  SECTION("2-D, odd sizes") { test::require_cuda_matches_cpu_f32_f64(mm, {random_f32({37, 53}), random_f32({53, 29}, true, -1, 1, 6)}); }
  SECTION("batched") {
    test::require_cuda_matches_cpu_f32_f64(mm, {random_f32({3, 17, 33}), random_f32({3, 33, 19}, true, -1, 1, 6)});
  }
  SECTION("attention-like [2, 8, 196, 16] x [2, 8, 16, 196]") {
    test::require_cuda_matches_cpu_f32_f64(mm, {random_f32({2, 8, 196, 16}), random_f32({2, 8, 16, 196}, true, -1, 1, 6)});
  }
  SECTION("broadcast batch dims that do not collapse to one stride") {
    // batch [2, 4]: a broadcast over dim 1, b over dim 0 -> a loop of strided-batched GEMMs
    test::require_cuda_matches_cpu_f32_f64(mm, {random_f32({2, 1, 9, 13}), random_f32({4, 13, 7}, true, -1, 1, 6)});
  }
  SECTION("batched x 2-D (folded into one GEMM) and 2-D x batched (broadcast a)") {
    test::require_cuda_matches_cpu_f32_f64(mm, {random_f32({5, 12, 20}), random_f32({20, 9}, true, -1, 1, 6)});
    test::require_cuda_matches_cpu_f32_f64(mm, {random_f32({12, 20}), random_f32({3, 20, 9}, true, -1, 1, 6)});
  }
  SECTION("vectors") {
    test::require_cuda_matches_cpu_f32_f64(mm, {random_f32({41}), random_f32({41}, true, -1, 1, 6)});
    test::require_cuda_matches_cpu_f32_f64(mm, {random_f32({13}), random_f32({2, 13, 5}, true, -1, 1, 6)});
    test::require_cuda_matches_cpu_f32_f64(mm, {random_f32({2, 6, 13}), random_f32({13}, true, -1, 1, 6)});
  }
  SECTION("transposed views (passed as transpose flags) and permuted batches") {
    auto fn = [](const std::vector<Tensor>& in) {
      return matmul(transpose(in[0], -1, -2), transpose(in[1], -1, -2));
    };
    test::require_cuda_matches_cpu_f32_f64(fn, {random_f32({3, 21, 10}), random_f32({3, 15, 21}, true, -1, 1, 6)});
    auto perm = [](const std::vector<Tensor>& in) {
      // batch strides [M·K, 3·M·K]: not one stride -> looped
      return matmul(transpose(in[0], 0, 1), in[1]);
    };
    test::require_cuda_matches_cpu_f32_f64(perm, {random_f32({4, 3, 7, 11}), random_f32({3, 4, 11, 6}, true, -1, 1, 6)});
    auto strided = [](const std::vector<Tensor>& in) {
      return matmul(slice(in[0], 1, 0, 14, 2), in[1]);  // rows with stride 2·K: a BLAS view
    };
    test::require_cuda_matches_cpu_f32_f64(strided, {random_f32({2, 14, 9}), random_f32({9, 5}, true, -1, 1, 6)});
  }
  SECTION("empty K gives zeros") {
    require_cuda_matches_cpu(mm, {random_f32({3, 0}, false), random_f32({0, 4}, false)});
  }
}

TEST_CASE("CUDA linear matches the CPU with and without bias", "[.][cuda][cuda_linalg]") {
  EVIT_REQUIRE_GPU();
  cuda::set_allow_tf32(false);
  auto lin = [](const std::vector<Tensor>& in) {
    return linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
  };
  SECTION("EfficientViT token MLP [2, 49, 64] -> 96, bias") {
    test::require_cuda_matches_cpu_f32_f64(lin, {random_f32({2, 49, 64}), random_f32({96, 64}, true, -1, 1, 6),
                            random_f32({96}, true, -1, 1, 7)});
  }
  SECTION("odd sizes, no bias, 1-D input") {
    test::require_cuda_matches_cpu_f32_f64(lin, {random_f32({37, 53}), random_f32({29, 53}, true, -1, 1, 6)});
    test::require_cuda_matches_cpu_f32_f64(lin, {random_f32({53}), random_f32({29, 53}, true, -1, 1, 6),
                            random_f32({29}, true, -1, 1, 7)});
  }
  SECTION("classifier head [4, 1600] -> 1000 (long K)") {
    test::require_cuda_matches_cpu_f32_f64(lin, {random_f32({4, 1600}), random_f32({1000, 1600}, true, -0.1, 0.1, 6),
                            random_f32({1000}, true, -1, 1, 7)});
  }
  SECTION("transposed weight view and non-contiguous input") {
    auto fn = [](const std::vector<Tensor>& in) {
      return linear(transpose(in[0], 0, 1), transpose(in[1], 0, 1), in[2]);
    };
    test::require_cuda_matches_cpu_f32_f64(fn, {random_f32({23, 6}), random_f32({23, 17}, true, -1, 1, 6),
                           random_f32({17}, true, -1, 1, 7)});
  }
}

TEST_CASE("CUDA matmul/linear with TF32 on stay close to the CPU", "[.][cuda][cuda_linalg]") {
  EVIT_REQUIRE_GPU();
  cuda::set_allow_tf32(true);
  // TF32 keeps 10 mantissa bits: about 1e-3 relative per product.
  CudaCompareOptions loose{5e-3, 5e-3, 5e-3, 5e-3};
  require_cuda_matches_cpu(mm, {random_f32({2, 33, 40}), random_f32({2, 40, 27}, true, -1, 1, 6)}, loose);
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
      {random_f32({9, 40}), random_f32({31, 40}, true, -1, 1, 6), random_f32({31}, true, -1, 1, 7)},
      loose);
  cuda::set_allow_tf32(false);
}

TEST_CASE("CUDA matmul/linear under autocast: f16/bf16 GEMMs, f32 outputs and gradients", "[.][cuda][cuda_linalg]") {
  EVIT_REQUIRE_GPU();
  cuda::set_allow_tf32(false);
  for (DType dt : {DType::f16, DType::bf16}) {
    INFO(dtype_name(dt));
    const CudaCompareOptions opt = test::autocast_options(dt);
    auto lin = [dt](const std::vector<Tensor>& in) {
      AutocastGuard ac(dt);
      return linear(in[0], in[1], in[2]);
    };
    require_cuda_matches_cpu(lin, {random_f32({2, 7, 64}), random_f32({48, 64}, true, -1, 1, 6),
                                   random_f32({48}, true, -1, 1, 7)}, opt);
    auto bmm = [dt](const std::vector<Tensor>& in) {
      AutocastGuard ac(dt);
      return matmul(in[0], transpose(in[1], -1, -2));
    };
    require_cuda_matches_cpu(bmm, {random_f32({2, 3, 10, 32}), random_f32({3, 12, 32}, true, -1, 1, 6)}, opt);

    // The outputs and gradients stay f32 and the backward (run outside the guard) reaches the
    // leaves.
    Tensor x = random_f32({5, 32}).to(test::cuda0()).detach().requires_grad_();
    Tensor w = random_f32({8, 32}, true, -1, 1, 6).to(test::cuda0()).detach().requires_grad_();
    Tensor y;
    {
      AutocastGuard ac(dt);
      y = matmul(x, transpose(w, 0, 1));
    }
    REQUIRE(y.dtype() == DType::f32);
    y.backward(ones(y.sizes(), {DType::f32, test::cuda0()}));
    REQUIRE(x.grad().defined());
    REQUIRE(w.grad().defined());
    REQUIRE(x.grad().dtype() == DType::f32);
    REQUIRE(w.grad().dtype() == DType::f32);
  }
}
