// conv2d and conv_transpose2d on CUDA against the CPU kernels ([cuda], hidden: run by
// tools/gpu_check.sh): every path (1×1 GEMM, im2col + GEMM with groups/stride/dilation, the
// depthwise direct kernels, the adjoint), in f32 (TF32 off) and f64, and under autocast.
// Also, runnable anywhere: autocast leaves CPU convolutions and linear layers bitwise unchanged.
#include "core/cuda.h"
#include "ops/autocast.h"
#include "ops/ops.h"
#include "tests/support/cuda_compare.h"

using namespace evit;
using evit::test::CudaCompareOptions;
using evit::test::random_f32;
using evit::test::require_cuda_matches_cpu;

namespace {

struct ConvCase {
  const char* name;
  Shape x, w;
  bool bias;
  Pair2 stride, padding, dilation;
  int64_t groups;
};

void check_conv(const ConvCase& c) {
  INFO(c.name);
  std::vector<Tensor> in = {random_f32(c.x), random_f32(c.w, true, -0.5, 0.5, 6)};
  if (c.bias) in.push_back(random_f32({c.w[0]}, true, -1, 1, 7));
  auto fn = [c](const std::vector<Tensor>& t) {
    return conv2d(t[0], t[1], c.bias ? t[2] : Tensor(), c.stride, c.padding, c.dilation, c.groups);
  };
  test::require_cuda_matches_cpu_f32_f64(fn, in);
}

struct TransposeCase {
  const char* name;
  Shape x, w;
  bool bias;
  Pair2 stride, padding, output_padding;
  int64_t groups;
  Pair2 dilation;
};

void check_transpose(const TransposeCase& c) {
  INFO(c.name);
  std::vector<Tensor> in = {random_f32(c.x), random_f32(c.w, true, -0.5, 0.5, 6)};
  if (c.bias) in.push_back(random_f32({c.w[1] * c.groups}, true, -1, 1, 7));
  auto fn = [c](const std::vector<Tensor>& t) {
    return conv_transpose2d(t[0], t[1], c.bias ? t[2] : Tensor(), c.stride, c.padding,
                            c.output_padding, c.groups, c.dilation);
  };
  test::require_cuda_matches_cpu_f32_f64(fn, in);
}

}  // namespace

TEST_CASE("CUDA conv2d 1x1 and im2col paths match the CPU", "[.][cuda][cuda_conv]") {
  EVIT_REQUIRE_GPU();
  cuda::set_allow_tf32(false);
  const std::vector<ConvCase> cases = {
      {"1x1 EfficientViT [2,64,28,28] -> 96, bias", {2, 64, 28, 28}, {96, 64, 1, 1}, true, 1, 0, 1, 1},
      {"1x1 grouped, odd plane", {2, 12, 7, 9}, {18, 4, 1, 1}, false, 1, 0, 1, 3},
      {"1x1 stride 2 (im2col path)", {2, 8, 11, 9}, {5, 8, 1, 1}, true, 2, 0, 1, 1},
      {"3x3 stride 1 pad 1, odd sizes", {2, 16, 13, 11}, {24, 16, 3, 3}, true, 1, 1, 1, 1},
      {"3x3 stride 1 EfficientViT [2,64,28,28]", {2, 64, 28, 28}, {32, 64, 3, 3}, false, 1, 1, 1, 1},
      {"3x3 stride 2 pad 1", {2, 8, 15, 17}, {12, 8, 3, 3}, false, 2, 1, 1, 1},
      {"stem 3x3 stride 2 [2,3,32,32] -> 16", {2, 3, 32, 32}, {16, 3, 3, 3}, true, 2, 1, 1, 1},
      {"grouped 3x3", {2, 12, 9, 10}, {18, 4, 3, 3}, true, 1, 1, 1, 3},
      {"channel multiplier (groups == C, O = 2C: GEMM path)", {2, 6, 9, 8}, {12, 1, 3, 3}, true, 1, 1, 1, 6},
      {"dilated 3x3", {1, 6, 14, 13}, {8, 6, 3, 3}, false, 1, 2, 2, 1},
      {"asymmetric stride/padding/dilation, 2x3 kernel", {2, 5, 12, 11}, {7, 5, 2, 3}, true, {2, 1}, {0, 1}, {1, 2}, 1},
      {"no padding, stride 3", {3, 4, 10, 10}, {6, 4, 3, 3}, false, 3, 0, 1, 1},
  };
  for (const ConvCase& c : cases) check_conv(c);
}

TEST_CASE("CUDA conv2d row-chunked im2col (one image over the column budget) matches the CPU", "[.][cuda][cuda_conv]") {
  EVIT_REQUIRE_GPU();
  cuda::set_allow_tf32(false);
  // 64·9·176·176 = 17.8M column elements > the 16M budget: bands of output rows.
  std::vector<Tensor> in = {random_f32({1, 64, 176, 176}), random_f32({4, 64, 3, 3}, true, -0.2, 0.2, 6)};
  auto fn = [](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], Tensor(), 1, 1); };
  // f32 only (the f64 CPU reference is slow at this size); the weight gradient sums 31k
  // products per element.
  require_cuda_matches_cpu(fn, in, CudaCompareOptions{1e-4, 1e-4, 1e-4, 1e-3});
}

TEST_CASE("CUDA depthwise conv2d matches the CPU", "[.][cuda][cuda_conv]") {
  EVIT_REQUIRE_GPU();
  const std::vector<ConvCase> cases = {
      {"dw 3x3 s1 EfficientViT [2,64,28,28]", {2, 64, 28, 28}, {64, 1, 3, 3}, true, 1, 1, 1, 64},
      {"dw 3x3 s2 odd", {3, 7, 11, 9}, {7, 1, 3, 3}, false, 2, 1, 1, 7},
      {"dw 5x5 s1 odd", {2, 10, 15, 13}, {10, 1, 5, 5}, true, 1, 2, 1, 10},
      {"dw 5x5 s2 odd", {2, 10, 15, 13}, {10, 1, 5, 5}, true, 2, 2, 1, 10},
      {"dw 3x3 dilated, asymmetric", {2, 4, 12, 9}, {4, 1, 3, 3}, false, {1, 2}, {2, 1}, {2, 1}, 4},
      {"dw 7x7 s2 pad 3", {1, 3, 17, 14}, {3, 1, 7, 7}, true, 2, 3, 1, 3},
  };
  for (const ConvCase& c : cases) check_conv(c);
}

TEST_CASE("CUDA conv2d takes non-contiguous inputs", "[.][cuda][cuda_conv]") {
  EVIT_REQUIRE_GPU();
  cuda::set_allow_tf32(false);
  auto fn = [](const std::vector<Tensor>& t) {
    return conv2d(permute(t[0], {0, 3, 1, 2}), t[1], t[2], 1, 1);  // NHWC storage viewed as NCHW
  };
  test::require_cuda_matches_cpu_f32_f64(fn, {random_f32({2, 9, 7, 6}), random_f32({5, 6, 3, 3}, true, -0.5, 0.5, 6),
                         random_f32({5}, true, -1, 1, 7)});
  auto dw = [](const std::vector<Tensor>& t) {
    return conv2d(permute(t[0], {0, 3, 1, 2}), t[1], Tensor(), 1, 1, 1, 6);
  };
  test::require_cuda_matches_cpu_f32_f64(dw, {random_f32({2, 9, 7, 6}), random_f32({6, 1, 3, 3}, true, -0.5, 0.5, 6)});
}

TEST_CASE("CUDA conv_transpose2d matches the CPU", "[.][cuda][cuda_conv]") {
  EVIT_REQUIRE_GPU();
  cuda::set_allow_tf32(false);
  const std::vector<TransposeCase> cases = {
      {"3x3 s2 p1 op1, bias", {2, 8, 7, 9}, {8, 6, 3, 3}, true, 2, 1, 1, 1, 1},
      {"grouped 4x4 s2 p1", {2, 6, 5, 5}, {6, 2, 4, 4}, false, 2, 1, 0, 3, 1},
      {"1x1", {2, 16, 7, 5}, {16, 8, 1, 1}, true, 1, 0, 0, 1, 1},
      {"dilated 3x3 s1", {1, 4, 6, 7}, {4, 5, 3, 3}, true, 1, 2, 0, 1, 2},
      {"2x2 s2 upsampling [2,32,14,14] -> 16", {2, 32, 14, 14}, {32, 16, 2, 2}, true, 2, 0, 0, 1, 1},
      {"asymmetric", {2, 3, 5, 6}, {3, 4, 3, 2}, false, {2, 1}, {1, 0}, {1, 0}, 1, {1, 2}},
  };
  for (const TransposeCase& c : cases) check_transpose(c);
}

TEST_CASE("CUDA conv2d / conv_transpose2d under autocast: f32 outputs and gradients close to the CPU", "[.][cuda][cuda_conv]") {
  EVIT_REQUIRE_GPU();
  cuda::set_allow_tf32(false);
  for (DType dt : {DType::f16, DType::bf16}) {
    INFO(dtype_name(dt));
    const CudaCompareOptions opt = test::autocast_options(dt);
    auto conv = [dt](const std::vector<Tensor>& t) {
      AutocastGuard ac(dt);
      return conv2d(t[0], t[1], t[2], 2, 1, 1, 1);
    };
    require_cuda_matches_cpu(conv, {random_f32({2, 8, 11, 10}), random_f32({12, 8, 3, 3}, true, -0.5, 0.5, 6),
                                    random_f32({12}, true, -1, 1, 7)}, opt);
    auto pw = [dt](const std::vector<Tensor>& t) {
      AutocastGuard ac(dt);
      return conv2d(t[0], t[1], t[2]);
    };
    require_cuda_matches_cpu(pw, {random_f32({2, 32, 7, 7}), random_f32({24, 32, 1, 1}, true, -0.5, 0.5, 6),
                                  random_f32({24}, true, -1, 1, 7)}, opt);
    auto dw = [dt](const std::vector<Tensor>& t) {  // depthwise stays f32 under autocast
      AutocastGuard ac(dt);
      return conv2d(t[0], t[1], t[2], 1, 1, 1, 8);
    };
    require_cuda_matches_cpu(dw, {random_f32({2, 8, 9, 9}), random_f32({8, 1, 3, 3}, true, -0.5, 0.5, 6),
                                  random_f32({8}, true, -1, 1, 7)});
    auto tr = [dt](const std::vector<Tensor>& t) {
      AutocastGuard ac(dt);
      return conv_transpose2d(t[0], t[1], t[2], 2, 1, 1);
    };
    require_cuda_matches_cpu(tr, {random_f32({2, 8, 5, 6}), random_f32({8, 6, 3, 3}, true, -0.5, 0.5, 6),
                                  random_f32({6}, true, -1, 1, 7)}, opt);
  }
}

TEST_CASE("autocast leaves CPU conv2d, conv_transpose2d, linear and matmul bitwise unchanged", "[autocast]") {
  auto run = [](bool autocast, DType dt) {
    std::vector<Tensor> in = {random_f32({2, 8, 9, 7}), random_f32({6, 8, 3, 3}, true, -0.5, 0.5, 6),
                              random_f32({6}, true, -1, 1, 7), random_f32({5, 12}, true, -1, 1, 8),
                              random_f32({4, 12}, true, -1, 1, 9), random_f32({8, 3, 3, 3}, true, -0.5, 0.5, 10)};
    std::vector<Tensor> outs;
    {
      AutocastGuard ac(dt, autocast);
      outs.push_back(conv2d(in[0], in[1], in[2], 2, 1));
      outs.push_back(conv_transpose2d(in[0], in[5], Tensor(), 2, 1, 1));
      outs.push_back(linear(in[3], in[4], Tensor()));
      outs.push_back(matmul(in[3], transpose(in[4], 0, 1)));
      Tensor loss = add(add(evit::sum(outs[0]), evit::sum(outs[1])),
                        add(evit::sum(outs[2]), evit::sum(outs[3])));
      loss.backward();
    }
    for (const Tensor& t : in) outs.push_back(t.grad());
    return outs;
  };
  const std::vector<Tensor> ref = run(false, DType::f16);
  for (DType dt : {DType::f16, DType::bf16}) {
    INFO(dtype_name(dt));
    const std::vector<Tensor> got = run(true, dt);
    REQUIRE(got.size() == ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      INFO("result " << i);
      REQUIRE(got[i].dtype() == DType::f32);
      REQUIRE(test::bitwise_equal(got[i], ref[i]));
    }
  }
}
