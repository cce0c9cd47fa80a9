// The fused linear attention on CUDA against the CPU kernels ([cuda], hidden: run by
// tools/gpu_check.sh on a machine with a GPU): forward and backward, f32 and f64, odd N,
// dv != d, N <= d (the CPU's quadratic form), strided inputs, a long sequence, determinism.
#include "core/cuda.h"
#include "core/generator.h"
#include "ops/attention.h"
#include "ops/ops.h"
#include "tests/support/cuda_compare.h"

using namespace evit;
using evit::test::cuda0;
using evit::test::CudaCompareOptions;
using evit::test::random_f32;
using evit::test::require_cuda_matches_cpu;

namespace {

Tensor la(const std::vector<Tensor>& in) { return linear_attention(in[0], in[1], in[2]); }

struct Case {
  int64_t B, H, d, dv, N;
};

// f32: both sides accumulate in f32 but in different orders (CPU vector lanes, GPU chunks of
// 256 positions), so sums over N differ by a few ulps; the defaults (rtol 1e-4, atol 1e-5)
// leave room for that. f64 is compared tightly: any index error shows at once.
CudaCompareOptions f64_options() {
  CudaCompareOptions o;
  o.rtol = o.grad_rtol = 1e-10;
  o.atol = o.grad_atol = 1e-12;
  return o;
}

}  // namespace

TEST_CASE("CUDA linear_attention matches the CPU (forward and backward, f32 and f64)", "[.][cuda][cuda_attention]") {
  EVIT_REQUIRE_GPU();
  const Case cases[] = {
      {2, 3, 16, 16, 1024},  // EfficientViT-like head dim 16
      {1, 4, 32, 32, 777},   // head dim 32, odd N
      {2, 2, 16, 24, 777},   // dv != d
      {1, 2, 8, 8, 333},     // small head dim
      {3, 1, 32, 32, 9},     // N <= d: the CPU's quadratic form, the same function
      {1, 2, 16, 16, 1},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    INFO("B " << c.B << " H " << c.H << " d " << c.d << " dv " << c.dv << " N " << c.N);
    Tensor q = random_f32({c.B, c.H, c.d, c.N}, true, -1, 1, seed++);
    Tensor k = random_f32({c.B, c.H, c.d, c.N}, true, -1, 1, seed++);
    Tensor v = random_f32({c.B, c.H, c.dv, c.N}, true, -1, 1, seed++);
    {
      INFO("f32");
      require_cuda_matches_cpu(la, {q, k, v});
    }
    {
      INFO("f64");
      Tensor qd = q.detach().to(DType::f64).requires_grad_();
      Tensor kd = k.detach().to(DType::f64).requires_grad_();
      Tensor vd = v.detach().to(DType::f64).requires_grad_();
      require_cuda_matches_cpu(la, {qd, kd, vd}, f64_options());
    }
  }
}

TEST_CASE("CUDA linear_attention with strided inputs matches the CPU", "[.][cuda][cuda_attention]") {
  EVIT_REQUIRE_GPU();
  const int64_t B = 2, H = 3, d = 16, N = 777;
  for (DType t : {DType::f32, DType::f64}) {
    INFO(dtype_name(t));
    CudaCompareOptions o = t == DType::f64 ? f64_options() : CudaCompareOptions{};
    // q, k, v as slices of one qkv tensor [B, H, 3d, N] (the model's layout: no copy).
    Tensor qkv = random_f32({B, H, 3 * d, N}, false, -1, 1, 21).to(t).requires_grad_();
    require_cuda_matches_cpu(
        [d](const std::vector<Tensor>& in) {
          return linear_attention(slice(in[0], 2, 0, d), slice(in[0], 2, d, 2 * d),
                                  slice(in[0], 2, 2 * d, 3 * d));
        },
        {qkv}, o);
    // batch and head strides swapped (permuted [H, B, d, N] storage: no copy either).
    Tensor hb = random_f32({H, B, 3 * d, N}, false, -1, 1, 22).to(t).requires_grad_();
    require_cuda_matches_cpu(
        [d](const std::vector<Tensor>& in) {
          Tensor x = permute(in[0], {1, 0, 2, 3});
          return linear_attention(slice(x, 2, 0, d), slice(x, 2, d, 2 * d), slice(x, 2, 2 * d, 3 * d));
        },
        {hb}, o);
    // N not the innermost dimension: the op makes a contiguous copy.
    Tensor nd = random_f32({B, H, N, d}, false, -1, 1, 23).to(t).requires_grad_();
    Tensor nv = random_f32({B, H, N, d}, false, -1, 1, 24).to(t).requires_grad_();
    require_cuda_matches_cpu(
        [](const std::vector<Tensor>& in) {
          Tensor x = transpose(in[0], 2, 3), y = transpose(in[1], 2, 3);
          return linear_attention(x, y, x);
        },
        {nd, nv}, o);
  }
}

TEST_CASE("CUDA linear_attention on a long sequence (N = 65536) matches the CPU and is deterministic",
          "[.][cuda][cuda_attention]") {
  EVIT_REQUIRE_GPU();
  const int64_t B = 1, H = 2, d = 16, N = 65536;
  Tensor q = random_f32({B, H, d, N}, false, -1, 1, 31);
  Tensor k = random_f32({B, H, d, N}, false, -1, 1, 32);
  Tensor v = random_f32({B, H, d, N}, false, -1, 1, 33);
  // Sums over 65536 positions in different orders: outputs (~5e-3) agree to ~1e-8 absolute.
  CudaCompareOptions o;
  o.rtol = 1e-4;
  o.atol = 1e-6;
  require_cuda_matches_cpu(la, {q, k, v}, o);
  Tensor qd = q.to(cuda0()), kd = k.to(cuda0()), vd = v.to(cuda0());
  Tensor a = linear_attention(qd, kd, vd).to(kCPU);
  Tensor b = linear_attention(qd, kd, vd).to(kCPU);
  REQUIRE(test::bitwise_equal(a, b));
  // the f64 run agrees tightly
  require_cuda_matches_cpu(la, {q.to(DType::f64), k.to(DType::f64), v.to(DType::f64)}, f64_options());
}

TEST_CASE("CUDA linear_attention: operands on different devices are an error", "[.][cuda][cuda_attention]") {
  EVIT_REQUIRE_GPU();
  Tensor q = random_f32({1, 1, 4, 8}, false).to(cuda0());
  Tensor k = random_f32({1, 1, 4, 8}, false);
  REQUIRE_THROWS_WITH(linear_attention(q, k, q), Catch::Contains("one device"));
}
