// conv2d / conv_transpose2d: gradchecks for every kernel path, PyTorch goldens, f32 vs f64,
// error messages and 1-vs-2-thread bitwise determinism.
#include <cmath>

#include "autograd/grad_mode.h"
#include "core/parallel.h"
#include "ops/conv.h"
#include "ops/conv/kernels.h"
#include "ops/linalg/gemm.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {

// conv2d over {x, w[, b]} with fixed hyper-parameters.
GradcheckFn conv_fn(Pair2 stride, Pair2 padding, Pair2 dilation, int64_t groups) {
  return [=](const std::vector<Tensor>& in) {
    return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), stride, padding, dilation, groups);
  };
}

GradcheckFn convT_fn(Pair2 stride, Pair2 padding, Pair2 out_pad, int64_t groups, Pair2 dilation) {
  return [=](const std::vector<Tensor>& in) {
    return conv_transpose2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), stride, padding,
                            out_pad, groups, dilation);
  };
}

// Full f64 gradcheck (a function: braced input lists do not fit through the macro).
void gc(const GradcheckFn& fn, const std::vector<Tensor>& inputs) {
  EVIT_REQUIRE_GRADCHECK(fn, inputs);
}

Tensor L(const Shape& s, uint64_t seed) { return test::random_leaf(s, -1, 1, seed); }

}  // namespace

TEST_CASE("conv2d gradcheck: 1x1 paths (GEMM per image / per group)", "[conv]") {
  gc(conv_fn(1, 0, 1, 1), {L({2, 4, 5, 5}, 1), L({3, 4, 1, 1}, 2), L({3}, 3)});  // small images: one product
  gc(conv_fn(1, 0, 1, 1), {L({2, 2, 10, 11}, 9), L({3, 2, 1, 1}, 10)});         // 110 positions: per image
  gc(conv_fn(1, 0, 1, 2), {L({2, 4, 4, 4}, 4), L({6, 2, 1, 1}, 5)});
  // strided 1x1 goes through im2col
  gc(conv_fn(2, 0, 1, 1), {L({1, 3, 5, 5}, 6), L({2, 3, 1, 1}, 7), L({2}, 8)});
}

// A batch's 1×1 products run side by side (one image per task) when one product is too small to
// split: each image must still get exactly the bits it gets alone, and the weight gradient the
// images' own weight gradients summed in order.
TEST_CASE("a batch's 1x1 convolution equals its images convolved one by one", "[conv]") {
  struct Case {
    Shape x, w;
    int64_t groups;
  };
  const std::vector<Case> cases = {{{6, 64, 14, 14}, {256, 64, 1, 1}, 1},   // B0's 64->256 at 14x14
                                   {{3, 32, 28, 28}, {128, 32, 1, 1}, 1},
                                   {{4, 48, 14, 14}, {48, 16, 1, 1}, 3}};   // grouped
  for (const auto& c : cases) {
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " groups " << c.groups);
    conv::Geom g;
    g.N = c.x[0], g.C = c.x[1], g.H = g.OH = c.x[2], g.W = g.OW = c.x[3], g.O = c.w[0], g.groups = c.groups;
    REQUIRE(conv::products_side_by_side(g, g.Og(), g.H * g.W, g.Cg()));  // the path under test
    Tensor x = randn(c.x), w = randn(c.w), b = randn({c.w[0]});
    auto run = [&](const Tensor& xs) {
      Tensor xl = xs.detach().requires_grad_(), wl = w.detach().requires_grad_();
      Tensor y = conv2d(xl, wl, b, 1, 0, 1, c.groups);
      sum(mul(y, y)).backward();
      return std::vector<Tensor>{y, xl.grad(), wl.grad()};
    };
    const std::vector<Tensor> all = run(x);
    std::vector<double> dw_sum(static_cast<size_t>(w.numel()), 0.0);
    for (int64_t n = 0; n < c.x[0]; ++n) {
      const std::vector<Tensor> one = run(slice(x, 0, n, n + 1).contiguous());
      REQUIRE(test::bitwise_equal(slice(all[0], 0, n, n + 1).contiguous(), one[0]));
      REQUIRE(test::bitwise_equal(slice(all[1], 0, n, n + 1).contiguous(), one[1]));
      const std::vector<float> dw_n = one[2].to_vector<float>();
      for (size_t i = 0; i < dw_sum.size(); ++i) dw_sum[i] += dw_n[i];
    }
    const std::vector<float> dw_all = all[2].to_vector<float>();
    for (size_t i = 0; i < dw_sum.size(); ++i) REQUIRE(dw_all[i] == static_cast<float>(dw_sum[i]));
  }
}

TEST_CASE("conv2d gradcheck: dense and grouped kxk (im2col + GEMM)", "[conv]") {
  gc(conv_fn(1, 1, 1, 1), {L({2, 4, 5, 5}, 9), L({3, 4, 3, 3}, 10)});
  gc(conv_fn(2, 1, 1, 1), {L({2, 3, 5, 6}, 11), L({2, 3, 3, 3}, 12), L({2}, 13)});
  gc(conv_fn(1, 2, 2, 1), {L({1, 4, 6, 6}, 14), L({2, 4, 3, 3}, 15)});
  gc(conv_fn(1, 1, 1, 2), {L({1, 4, 5, 5}, 16), L({4, 2, 3, 3}, 17), L({4}, 18)});
  // asymmetric stride / padding / kernel
  gc(conv_fn({2, 1}, {0, 1}, {1, 2}, 1), {L({1, 2, 6, 5}, 19), L({2, 2, 3, 2}, 20)});
  // few input channels (the stem's direct forward): a group of 8 output channels and 2 single ones
  gc(conv_fn(2, 1, 1, 1), {L({1, 3, 7, 9}, 59), L({10, 3, 3, 3}, 60), L({10}, 61)});
  // depthwise with channel multiplier 2 is a grouped conv (not the depthwise kernel)
  gc(conv_fn(1, 1, 1, 2), {L({1, 2, 4, 4}, 21), L({4, 1, 3, 3}, 22)});
}

TEST_CASE("conv2d gradcheck: depthwise direct kernel", "[conv]") {
  gc(conv_fn(1, 1, 1, 4), {L({2, 4, 5, 5}, 23), L({4, 1, 3, 3}, 24), L({4}, 25)});
  gc(conv_fn(2, 1, 1, 4), {L({2, 4, 5, 5}, 26), L({4, 1, 3, 3}, 27)});
  gc(conv_fn(1, 2, 1, 3), {L({1, 3, 6, 7}, 28), L({3, 1, 5, 5}, 29)});
  gc(conv_fn(2, 2, 1, 3), {L({1, 3, 7, 6}, 30), L({3, 1, 5, 5}, 31), L({3}, 32)});
  // dilation 2, asymmetric padding, a runtime-size kernel, padding beyond the kernel reach
  gc(conv_fn(1, {2, 1}, 2, 2), {L({1, 2, 6, 6}, 33), L({2, 1, 3, 3}, 34)});
  gc(conv_fn({1, 2}, {1, 0}, 1, 2), {L({1, 2, 5, 6}, 35), L({2, 1, 2, 3}, 36)});
  gc(conv_fn(1, 3, 1, 2), {L({1, 2, 4, 4}, 37), L({2, 1, 3, 3}, 38)});
  gc(conv_fn(3, 1, 1, 2), {L({1, 2, 7, 8}, 39), L({2, 1, 3, 3}, 40)});
  // rows wider than one vector block (f64 blocks are 16 wide)
  gc(conv_fn(1, 2, 1, 1), {L({1, 1, 3, 21}, 41), L({1, 1, 5, 5}, 42)});
  gc(conv_fn(2, 1, 1, 1), {L({1, 1, 3, 37}, 43), L({1, 1, 3, 3}, 44)});
}

TEST_CASE("depthwise padding gives the bits of the same convolution over explicit zero padding", "[conv]") {
  // The kernel's padding is zeros in its padded plane buffer; padding the input with zeros first
  // (and convolving without padding) must give the same sums bit for bit, activation and all,
  // wherever the vector blocks fall.
  struct Case {
    Shape x;
    int64_t k, pad;
  };
  const Case cases[] = {{{2, 3, 9, 40}, 3, 1}, {{1, 4, 12, 67}, 5, 2}, {{1, 2, 8, 53}, 7, 3}, {{1, 2, 6, 45}, 3, 2}};
  for (const Case& c : cases)
    for (DType dt : {DType::f32, DType::f64})
      for (ActivationKind act : {ActivationKind::none, ActivationKind::hardswish}) {
        INFO(shape_str(c.x) << " k " << c.k << " pad " << c.pad << " " << dtype_name(dt) << " act "
                            << static_cast<int>(act));
        const int64_t C = c.x[1];
        const Tensor x = randn(c.x, dt), w = randn({C, 1, c.k, c.k}, dt), b = randn({C}, dt);
        const Tensor padded = pad(x, {c.pad, c.pad, c.pad, c.pad});
        NoGradGuard no_grad;
        const Tensor in_place = conv2d_act(x, w, b, 1, c.pad, 1, C, act);
        const Tensor explicit_zeros = conv2d_act(padded, w, b, 1, 0, 1, C, act);
        REQUIRE(in_place.sizes() == explicit_zeros.sizes());
        REQUIRE(test::bitwise_equal(in_place, explicit_zeros));
      }
}

TEST_CASE("conv2d gradcheck: non-contiguous input and weight", "[conv]") {
  Tensor x = permute(L({2, 5, 5, 4}, 45), {0, 3, 1, 2}).detach().requires_grad_();
  Tensor w = permute(L({3, 3, 4, 3}, 46), {3, 2, 0, 1}).detach().requires_grad_();  // [3,4,3,3]
  REQUIRE_FALSE(x.is_contiguous());
  gc(conv_fn(1, 1, 1, 1), {x, w});
  Tensor xd = slice(L({1, 4, 5, 10}, 47), 3, 0, 10, 2).detach().requires_grad_();
  gc(conv_fn(1, 1, 1, 4), {xd, L({4, 1, 3, 3}, 48)});
  gc(conv_fn(1, 0, 1, 1), {xd, L({2, 4, 1, 1}, 49)});
}

TEST_CASE("conv_transpose2d gradcheck", "[conv]") {
  gc(convT_fn(2, 0, 0, 1, 1), {L({2, 3, 3, 3}, 50), L({3, 2, 2, 2}, 51), L({2}, 52)});
  gc(convT_fn(2, 1, 1, 2, 1), {L({1, 4, 3, 3}, 53), L({4, 1, 3, 3}, 54)});
  gc(convT_fn(1, 1, 0, 1, 2), {L({1, 2, 3, 4}, 55), L({2, 2, 3, 2}, 56)});
  Tensor xt = permute(L({1, 3, 3, 2}, 57), {0, 3, 1, 2}).detach().requires_grad_();
  gc(convT_fn(1, 0, 0, 1, 1), {xt, L({2, 2, 1, 1}, 58)});
}

TEST_CASE("conv goldens match PyTorch for every path", "[conv]") {
  test::check_golden_case("conv", "pointwise", conv_fn(1, 0, 1, 1));
  test::check_golden_case("conv", "pointwise_grouped", conv_fn(1, 0, 1, 2));
  test::check_golden_case("conv", "dw3_s1", conv_fn(1, 1, 1, 4));
  test::check_golden_case("conv", "dw5_s2", conv_fn(2, 2, 1, 4));
  test::check_golden_case("conv", "dw_k2x3_d2", conv_fn(1, {1, 2}, 2, 3));
  test::check_golden_case("conv", "dense3_s2", conv_fn(2, 1, 1, 1));
  test::check_golden_case("conv", "grouped3_d2", conv_fn(1, 2, 2, 2));
  test::check_golden_case("conv", "pointwise_s2", conv_fn(2, 0, 1, 1));
  test::check_golden_case("conv", "convT_k2s2", convT_fn(2, 0, 0, 1, 1));
  test::check_golden_case("conv", "convT_general", convT_fn(2, 1, 1, 2, 1));
  test::check_golden_case("conv", "convT_dil", convT_fn(1, 1, 0, 1, 2));
}

TEST_CASE("conv2d f32 kernels agree with f64 (forward and backward)", "[conv]") {
  struct Case {
    Shape x, w;
    Pair2 s, p;
    int64_t groups;
  };
  const std::vector<Case> cases = {
      {{2, 8, 13, 70}, {8, 1, 5, 5}, 1, 2, 8},   // depthwise 5x5, several vector blocks
      {{2, 8, 13, 70}, {8, 1, 5, 5}, 2, 2, 8},   // depthwise 5x5 stride 2
      {{1, 6, 9, 33}, {6, 1, 3, 3}, 1, 1, 6},    // depthwise 3x3 (rows run as one flat run)
      {{2, 16, 7, 7}, {16, 1, 5, 5}, 1, 2, 16},  // depthwise 5x5 on a 7x7 plane (flat run)
      {{1, 4, 3, 64}, {4, 1, 3, 3}, 1, 1, 4},    // whole-block rows: row by row
      {{1, 6, 9, 33}, {6, 1, 3, 3}, 2, 1, 6},
      {{2, 6, 9, 11}, {10, 6, 1, 1}, 1, 0, 1},   // 1x1
      {{2, 6, 9, 11}, {10, 3, 3, 3}, 1, 1, 2},   // grouped 3x3
      // few input channels (the RGB stem's direct kernel): channel groups of 8 and single
      // channels, several strips of output rows, the bottom padding after a full strip
      {{1, 3, 200, 160}, {16, 3, 3, 3}, 2, 1, 1},
      {{2, 3, 13, 70}, {13, 3, 3, 3}, 2, 1, 1},
      {{1, 3, 120, 70}, {8, 3, 3, 3}, 1, 1, 1},
      {{1, 2, 11, 37}, {5, 2, 5, 5}, 1, 2, 1},
  };
  for (const auto& c : cases) {
    Tensor x64 = randn(c.x, DType::f64), w64 = randn(c.w, DType::f64), b64 = randn({c.w[0]}, DType::f64);
    std::vector<Tensor> ins64 = {x64, w64, b64}, ins32;
    for (auto& t : ins64) {
      t.requires_grad_();
      ins32.push_back(t.detach().to(DType::f32).requires_grad_());
    }
    Tensor y64 = conv2d(ins64[0], ins64[1], ins64[2], c.s, c.p, 1, c.groups);
    Tensor y32 = conv2d(ins32[0], ins32[1], ins32[2], c.s, c.p, 1, c.groups);
    Tensor gy = randn(y64.sizes(), DType::f64);
    sum(mul(y64, gy)).backward();
    sum(mul(y32, gy.to(DType::f32))).backward();
    EVIT_REQUIRE_CLOSE(y32.to(DType::f64), y64, 1e-4, 1e-4);
    for (int i = 0; i < 3; ++i) EVIT_REQUIRE_CLOSE(ins32[i].grad().to(DType::f64), ins64[i].grad(), 1e-4, 1e-3);
  }
}

TEST_CASE("the few-input-channel direct kernels equal the GEMM path", "[conv]") {
  // kMaxFewChannels zero channels appended to x and w leave the convolution's value unchanged
  // but take it onto the im2col + GEMM path: an independent reference.
  struct Case {
    Shape x, w;
    Pair2 s, p, d;
  };
  const std::vector<Case> cases = {
      {{1, 3, 200, 160}, {16, 3, 3, 3}, 2, 1, 1},  // the stem: 4 strips of output rows
      {{2, 3, 13, 70}, {13, 3, 3, 3}, 2, 1, 1},    // a group of 8 channels and 5 single ones
      {{1, 3, 120, 70}, {8, 3, 3, 3}, 1, 1, 1},    // stride 1: 2 strips, the second at the bottom
      {{1, 2, 11, 37}, {5, 2, 5, 5}, 1, 2, 1},
      {{1, 1, 30, 41}, {9, 1, 3, 2}, {2, 1}, {0, 2}, {1, 2}},  // asymmetric stride, padding, dilation
  };
  REQUIRE(conv::few_channels(conv::Geom{.C = 3, .O = 16, .KH = 3, .KW = 3}));
  for (const auto& c : cases)
    for (DType dt : {DType::f32, DType::f64}) {
      INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " " << dtype_name(dt));
      const Tensor x = randn(c.x, dt), b = randn({c.w[0]}, dt);
      const Tensor w = randn(c.w, dt).requires_grad_();
      const int64_t z = conv::kMaxFewChannels;
      const Tensor xz = cat({x, zeros({c.x[0], z, c.x[2], c.x[3]}, dt)}, 1);
      const Tensor wz = cat({w.detach(), zeros({c.w[0], z, c.w[2], c.w[3]}, dt)}, 1).requires_grad_();
      REQUIRE_FALSE(conv::few_channels(conv::Geom{.C = xz.size(1), .O = c.w[0], .KH = c.w[2], .KW = c.w[3]}));
      const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
      const Tensor y = conv2d(x, w, b, c.s, c.p, c.d), yz = conv2d(xz, wz, b, c.s, c.p, c.d);
      EVIT_REQUIRE_CLOSE(y, yz, tol, tol);
      // The weight gradient: the direct kernel's against the GEMM path's first C input channels.
      const Tensor gy = randn(y.sizes(), dt);
      sum(mul(y, gy)).backward();
      sum(mul(yz, gy)).backward();
      const double gtol = dt == DType::f32 ? 1e-4 : 1e-11;
      EVIT_REQUIRE_CLOSE(w.grad(), slice(wz.grad(), 1, 0, c.w[1], 1), gtol, gtol);
    }
}

TEST_CASE("inverted_bottleneck equals its three convolutions", "[conv]") {
  struct Case {
    const char* name;
    Shape x;
    int64_t mid, out, k, stride;
    ActivationKind a1, a2, a3;
    bool biases;
  };
  using A = ActivationKind;
  const Case cases[] = {
      // wide rows: strips of 4 rows, 3 bands, expanded rows kept from strip to strip
      {"3x3 stride 1, 3 bands", {1, 16, 40, 300}, 64, 24, 3, 1, A::hardswish, A::hardswish, A::none, true},
      {"3x3 stride 2, odd sizes", {2, 8, 37, 517}, 32, 16, 3, 2, A::relu6, A::relu6, A::none, true},
      {"5x5, other activations", {1, 4, 21, 1000}, 16, 8, 5, 1, A::gelu_tanh, A::silu, A::relu, false},
      {"one strip", {1, 6, 9, 11}, 12, 6, 3, 2, A::hardswish, A::hardswish, A::none, true},
      // no expansion (mid 0: a depthwise-separable block), several strips
      {"separable", {2, 16, 45, 700}, 0, 24, 3, 1, A::none, A::hardswish, A::none, true},
      {"separable stride 2", {1, 8, 44, 301}, 0, 8, 3, 2, A::none, A::relu, A::relu6, false},
  };
  const auto scaled = [](const Shape& s, DType dt) {  // weights of a unit-gain layer
    return mul(randn(s, dt), 1.0 / std::sqrt(static_cast<double>(s[1] * s[2] * s[3])));
  };
  NoGradGuard no_grad;
  for (const Case& c : cases)
    for (DType dt : {DType::f64, DType::f32}) {
      INFO(c.name << ", " << dtype_name(dt));
      const int64_t C = c.x[1], mid = c.mid > 0 ? c.mid : C;
      const Tensor x = randn(c.x, dt);
      const ConvStage e = c.mid > 0 ? ConvStage{scaled({mid, C, 1, 1}, dt), c.biases ? randn({mid}, dt) : Tensor(), c.a1}
                                    : ConvStage{};
      const ConvStage d{scaled({mid, 1, c.k, c.k}, dt), c.biases ? randn({mid}, dt) : Tensor(), c.a2};
      const ConvStage p{scaled({c.out, mid, 1, 1}, dt), c.biases ? randn({c.out}, dt) : Tensor(), c.a3};
      Tensor want = c.mid > 0 ? apply_activation(conv2d(x, e.w, e.b), e.act) : x;
      want = apply_activation(conv2d(want, d.w, d.b, c.stride, c.k / 2, 1, mid), d.act);
      want = apply_activation(conv2d(want, p.w, p.b), p.act);
      const Tensor got = inverted_bottleneck(x, e, d, c.stride, p);
      const double tol = dt == DType::f64 ? 1e-11 : 2e-5;
      EVIT_REQUIRE_CLOSE(got, want, tol, tol);
      // A residual is added in the projection's epilogue, bit for bit as a separate add.
      const Tensor residual = randn(got.sizes(), dt);
      REQUIRE(test::bitwise_equal(inverted_bottleneck(x, e, d, c.stride, p, residual), add(got, residual)));
      const int saved = get_num_threads();
      set_num_threads(1);
      const Tensor one = inverted_bottleneck(x, e, d, c.stride, p);
      set_num_threads(saved);
      REQUIRE(test::bitwise_equal(one, got));
    }
}

TEST_CASE("inverted_bottleneck errors", "[conv]") {
  const Tensor x = zeros({1, 4, 8, 8});
  const ConvStage e{zeros({16, 4, 1, 1}), Tensor(), ActivationKind::relu};
  const ConvStage d{zeros({16, 1, 3, 3}), Tensor(), ActivationKind::relu};
  const ConvStage p{zeros({8, 16, 1, 1}), Tensor(), ActivationKind::none};
  {
    NoGradGuard no_grad;
    REQUIRE(inverted_bottleneck(x, e, d, 2, p).sizes() == Shape{1, 8, 4, 4});
    REQUIRE_THROWS_WITH(inverted_bottleneck(x, ConvStage{zeros({16, 3, 1, 1}), Tensor(), ActivationKind::none}, d, 1, p),
                        Catch::Contains("expand weight f32 [16,3,1,1] must be [M, 4, 1, 1]"));
    REQUIRE_THROWS_WITH(inverted_bottleneck(x, e, ConvStage{zeros({16, 1, 2, 2}), Tensor(), ActivationKind::none}, 1, p),
                        Catch::Contains("with odd k"));
    REQUIRE_THROWS_WITH(inverted_bottleneck(x, e, d, 1, ConvStage{zeros({8, 16, 1, 1}), zeros({7}), ActivationKind::none}),
                        Catch::Contains("does not fit weight"));
    REQUIRE_THROWS_WITH(inverted_bottleneck(x, e, d, 2, p, zeros({1, 8, 8, 8})),
                        Catch::Contains("inverted_bottleneck: residual f32 [1,8,8,8] must match the output f32 [1,8,4,4]"));
  }
  const ConvStage trainable{zeros({16, 4, 1, 1}).requires_grad_(), Tensor(), ActivationKind::relu};
  REQUIRE_THROWS_WITH(inverted_bottleneck(x, trainable, d, 1, p), Catch::Contains("has no gradient"));
}

TEST_CASE("conv2d and conv_transpose2d errors", "[conv]") {
  REQUIRE_THROWS_WITH(conv2d(zeros({4, 5, 5}), zeros({3, 4, 3, 3})),
                      Catch::Contains("conv2d: input must be 4-D [N,C,H,W], got f32 [4,5,5]"));
  REQUIRE_THROWS_WITH(conv2d(zeros({1, 4, 5, 5}), zeros({3, 4, 3})), Catch::Contains("conv2d: weight must be 4-D"));
  REQUIRE_THROWS_WITH(conv2d(zeros({1, 4, 5, 5}), zeros({2, 3, 3, 3})),
                      Catch::Contains("conv2d: weight expects 3 input channels (with groups=1), input has 4"));
  REQUIRE_THROWS_WITH(conv2d(zeros({1, 4, 5, 5}), zeros({3, 2, 3, 3}), Tensor(), 1, 1, 1, 2),
                      Catch::Contains("conv2d: output channels 3 not divisible by groups 2"));
  REQUIRE_THROWS_WITH(conv2d(zeros({1, 4, 5, 5}), zeros({2, 4, 3, 3}), zeros({3})),
                      Catch::Contains("conv2d: bias must be [2]"));
  REQUIRE_THROWS_WITH(conv2d(zeros({1, 4, 2, 2}), zeros({2, 4, 3, 3})), Catch::Contains("smaller than the dilated kernel"));
  REQUIRE_THROWS_WITH(conv2d(zeros({1, 4, 5, 5}), zeros({2, 4, 3, 3}, DType::f64)), Catch::Contains("conv2d: dtypes differ"));
  REQUIRE_THROWS_WITH(conv2d(zeros({1, 4, 5, 5}), zeros({2, 4, 3, 3}), Tensor(), 0), Catch::Contains("conv2d: stride must be >= 1"));
  REQUIRE_THROWS_WITH(conv_transpose2d(zeros({1, 4, 5, 5}), zeros({3, 2, 2, 2}), Tensor(), 2),
                      Catch::Contains("conv_transpose2d: weight f32 [3,2,2,2] expects 3 input channels, input has 4"));
  REQUIRE_THROWS_WITH(conv_transpose2d(zeros({1, 4, 5, 5}), zeros({4, 2, 2, 2}), Tensor(), 2, 0, 2),
                      Catch::Contains("conv_transpose2d: output_padding (2,2)"));
}

TEST_CASE("conv2d forward and backward are bitwise identical on 1 and 2 threads", "[conv]") {
  const int saved = get_num_threads();
  struct Case {
    Shape x, w;
    Pair2 s, p;
    int64_t groups;
    DType dtype;
  };
  const std::vector<Case> cases = {
      {{2, 32, 16, 40}, {32, 1, 5, 5}, 1, 2, 32, DType::f32},  // depthwise 5x5
      {{2, 32, 16, 40}, {32, 1, 5, 5}, 2, 2, 32, DType::f32},  // depthwise 5x5 stride 2
      {{2, 16, 20, 20}, {24, 16, 3, 3}, 1, 1, 1, DType::f32},  // dense 3x3 (GEMM K > 256)
      {{2, 16, 20, 20}, {24, 16, 3, 3}, 1, 1, 1, DType::f64},
      {{2, 64, 24, 24}, {48, 64, 1, 1}, 1, 0, 1, DType::f32},  // 1x1
      {{8, 64, 14, 14}, {256, 64, 1, 1}, 1, 0, 1, DType::f32}, // 1x1, images side by side
      {{4, 48, 14, 14}, {48, 16, 1, 1}, 1, 0, 3, DType::f64},  // grouped 1x1 side by side
      {{2, 64, 112, 112}, {32, 64, 1, 1}, 1, 0, 1, DType::f32}, // 1x1, each product split
      {{1, 3, 200, 160}, {16, 3, 3, 3}, 2, 1, 1, DType::f32},  // few input channels: 4 strips
  };
  for (const auto& c : cases) {
    Tensor x = randn(c.x, c.dtype), w = randn(c.w, c.dtype), b = randn({c.w[0]}, c.dtype);
    auto go = [&](int threads) {
      set_num_threads(threads);
      Tensor xl = x.detach().requires_grad_(), wl = w.detach().requires_grad_(), bl = b.detach().requires_grad_();
      Tensor y = conv2d(xl, wl, bl, c.s, c.p, 1, c.groups);
      sum(mul(y, y)).backward();
      return std::vector<Tensor>{y, xl.grad(), wl.grad(), bl.grad()};
    };
    auto r1 = go(1), r2 = go(2);
    set_num_threads(saved);
    for (size_t i = 0; i < r1.size(); ++i) {
      INFO("case " << shape_str(c.x) << " x " << shape_str(c.w) << " stride " << c.s.h << ", tensor " << i);
      REQUIRE(test::bitwise_equal(r1[i], r2[i]));
    }
  }
}

TEST_CASE("conv2d_act gives the activation of conv2d, plus a residual, bit for bit on every path", "[conv]") {
  struct Case {
    const char* name;
    Shape x, w;
    int64_t stride, padding, groups;
  };
  const Case cases[] = {
      {"1x1 (one product)", {1, 8, 5, 7}, {6, 8, 1, 1}, 1, 0, 1},
      {"1x1 (tiles)", {2, 64, 32, 40}, {96, 64, 1, 1}, 1, 0, 1},
      {"1x1 (chunks of a long K)", {1, 16384, 4, 8}, {16, 16384, 1, 1}, 1, 0, 1},
      {"3x3 im2col", {2, 12, 33, 29}, {40, 12, 3, 3}, 1, 1, 1},
      {"3x3 stride 2", {1, 3, 65, 64}, {16, 3, 3, 3}, 2, 1, 1},
      {"grouped 1x1", {1, 24, 16, 16}, {48, 6, 1, 1}, 1, 0, 4},
      {"depthwise 3x3", {2, 16, 17, 19}, {16, 1, 3, 3}, 1, 1, 16},
      {"depthwise 5x5 stride 2", {1, 8, 23, 21}, {8, 1, 5, 5}, 2, 2, 8},
      {"1x1 batch as one product", {4, 32, 7, 7}, {24, 32, 1, 1}, 1, 0, 1},
  };
  // The product splits the cases above exercise (the epilogue runs per tile, and after the sum
  // of the K chunks).
  REQUIRE(detail::gemm_split(96, 32 * 40, 64).tasks() > 1);
  REQUIRE(detail::gemm_split(16, 4 * 8, 16384).k_chunks > 1);
  const ActivationKind acts[] = {ActivationKind::none, ActivationKind::relu,  ActivationKind::relu6,
                                 ActivationKind::hardswish, ActivationKind::silu, ActivationKind::gelu,
                                 ActivationKind::gelu_tanh};
  for (const Case& c : cases)
    for (DType dt : {DType::f32, DType::f64}) {
      const Tensor x = mul(randn(c.x, dt), 3.0);  // values past hardswish's ±3 and relu6's 6
      const Tensor w = mul(randn(c.w, dt), 1.0 / std::sqrt(static_cast<double>(c.w[1] * c.w[2] * c.w[3])));
      const Tensor b = randn({c.w[0]}, dt);
      for (const Tensor& bias : {b, Tensor()})
        for (ActivationKind act : acts) {
          INFO(c.name << ", " << dtype_name(dt) << (bias.defined() ? ", bias" : "") << ", activation "
                      << static_cast<int>(act));
          const Tensor want = apply_activation(conv2d(x, w, bias, c.stride, c.padding, 1, c.groups), act);
          const Tensor residual = randn(want.sizes(), dt);
          const Tensor want_plus = add(want, residual);
          NoGradGuard no_grad;
          const Tensor got = conv2d_act(x, w, bias, c.stride, c.padding, 1, c.groups, act);
          REQUIRE(test::bitwise_equal(got, want));
          // The residual joins the epilogue after the activation (a pass after, on the direct paths).
          const Tensor got_plus = conv2d_act(x, w, bias, c.stride, c.padding, 1, c.groups, act, residual);
          REQUIRE(test::bitwise_equal(got_plus, want_plus));
        }
    }
  {
    NoGradGuard no_grad;
    REQUIRE_THROWS_WITH(conv2d_act(zeros({1, 4, 6, 6}), zeros({5, 4, 1, 1}), Tensor(), 1, 0, 1, 1,
                                   ActivationKind::none, zeros({1, 4, 6, 6})),
                        Catch::Contains("conv2d_act: residual f32 [1,4,6,6] must match the output f32 [1,5,6,6]"));
  }
  {  // With a residual that needs a gradient, the ops in sequence: the gradient reaches it.
    Tensor r = test::random_leaf({1, 5, 6, 6}, -1.0, 1.0, 5);
    sum(conv2d_act(zeros({1, 4, 6, 6}, DType::f64), zeros({5, 4, 3, 3}, DType::f64), Tensor(), 1, 1, 1, 1,
                   ActivationKind::relu, r))
        .backward();
    REQUIRE(r.grad().defined());
    REQUIRE(sum(r.grad()).item<double>() == 5 * 36);
  }
  // With gradients to record it is the two ops: the activation's gradient reaches x.
  Tensor x = test::random_leaf({1, 4, 6, 6}, -2.0, 2.0, 3);
  Tensor w = test::random_leaf({5, 4, 3, 3}, -0.5, 0.5, 4);
  sum(conv2d_act(x, w, Tensor(), 1, 1, 1, 1, ActivationKind::relu)).backward();
  REQUIRE(x.grad().defined());
}
