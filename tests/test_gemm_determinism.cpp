// The GEMM contract: every GEMM-backed op (matmul, linear, conv2d on its GEMM paths,
// conv_transpose2d) gives bitwise identical outputs and gradients on 1, 2 and 3 threads, at
// shapes that exercise every way ops/linalg/gemm.cpp splits a product (one call, many tiles,
// K chunks), with transposed and batched operands. Also: the tiled driver computes the right
// product for every transpose combination, leading dimension and beta.
#include <catch2/catch.hpp>

#include <functional>
#include <tuple>

#include "core/generator.h"
#include "core/parallel.h"
#include "ops/conv.h"
#include "ops/linalg.h"
#include "ops/linalg/gemm.h"
#include "ops/ops.h"
#include "support/test_util.h"

using namespace evit;

namespace {

// Runs `fn` (which returns its outputs and gradients) on 1, 2 and 3 threads and requires every
// result to be bitwise equal to the 1-thread one.
void require_thread_invariant(const std::string& what, const std::function<std::vector<Tensor>()>& fn) {
  const int saved = get_num_threads();
  std::vector<std::vector<Tensor>> runs;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    runs.push_back(fn());
  }
  set_num_threads(saved);
  for (size_t t = 1; t < runs.size(); ++t)
    for (size_t i = 0; i < runs[0].size(); ++i) {
      INFO(what << ": tensor " << i << ", " << t + 1 << " threads against 1");
      REQUIRE(test::bitwise_equal(runs[0][i], runs[t][i]));
    }
}

// Leaves of fresh copies, a loss that weights every output element differently, and the grads.
std::vector<Tensor> grads_of(const std::vector<Tensor>& inputs, const std::function<Tensor(std::vector<Tensor>&)>& f) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs) leaves.push_back(t.detach().requires_grad_());
  Tensor y = f(leaves);
  sum(mul(y, y)).backward();
  std::vector<Tensor> out{y};
  for (const Tensor& l : leaves) out.push_back(l.grad());
  return out;
}

}  // namespace

TEST_CASE("gemm_split depends on the shape only and covers the product", "[linalg][parallel]") {
  using detail::gemm_split;
  REQUIRE(gemm_split(8, 8, 8).tasks() == 1);             // small: one call
  auto wide = gemm_split(512, 8192, 128);                 // many tiles, no K chunks
  REQUIRE(wide.tiles_m * wide.tile_m >= 512);
  REQUIRE(wide.tiles_n * wide.tile_n >= 8192);
  REQUIRE(wide.k_chunks == 1);
  REQUIRE(wide.tasks() >= 4);
  REQUIRE(wide.tiles_m * wide.tiles_n == wide.tasks());
  auto deep = gemm_split(16, 24, 20000);                  // weight-gradient shape: K chunks
  REQUIRE(deep.k_chunks > 1);
  REQUIRE(deep.k_chunks * deep.k_chunk >= 20000);
  REQUIRE((deep.k_chunks - 1) * deep.k_chunk < 20000);
  const int saved = get_num_threads();
  set_num_threads(3);
  auto again = gemm_split(16, 24, 20000);
  set_num_threads(saved);
  REQUIRE(again.k_chunk == deep.k_chunk);
  REQUIRE(again.tile_n == deep.tile_n);
}

TEST_CASE("a few tiles come in an even number and still cover the product", "[linalg][parallel]") {
  using detail::gemm_split;
  // 256x49x512 (EfficientViT-B1's 7x7 projection at batch 1) would be 3 tiles of rows, and
  // 64x784x256 7 tiles of columns: one thread would idle through the last tile of each.
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{256, 49, 512}, {64, 784, 256}, {128, 3136, 32}}) {
    const auto s = gemm_split(M, N, K);
    INFO("M=" << M << " N=" << N << " K=" << K << " tiles " << s.tiles_m << "x" << s.tiles_n);
    REQUIRE((s.tiles_m * s.tiles_n) % 2 == 0);
    REQUIRE(s.tiles_m * s.tile_m >= M);
    REQUIRE((s.tiles_m - 1) * s.tile_m < M);
    REQUIRE(s.tiles_n * s.tile_n >= N);
    REQUIRE((s.tiles_n - 1) * s.tile_n < N);
  }
}

TEST_CASE("the tiled GEMM equals a plain triple loop for every transpose, ld and beta", "[linalg]") {
  // Shapes that take each path: one call, tiles in both dims, K chunks.
  struct S {
    int64_t M, N, K;
  };
  for (S s : {S{5, 7, 3}, S{300, 700, 40}, S{16, 24, 20000}, S{530, 20, 2100}, S{1100, 900, 40}}) {
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const int64_t pad = 3;  // leading dims larger than the rows they hold
        const int64_t a_rows = ta ? s.K : s.M, a_cols = ta ? s.M : s.K;
        const int64_t b_rows = tb ? s.N : s.K, b_cols = tb ? s.K : s.N;
        Tensor A = randn({a_rows, a_cols + pad}, DType::f64), B = randn({b_rows, b_cols + pad}, DType::f64);
        Tensor C = randn({s.M, s.N + pad}, DType::f64);
        std::vector<double> c0 = C.to_vector<double>();
        const double alpha = 0.75, beta = -0.5;
        detail::gemm(ta, tb, s.M, s.N, s.K, alpha, A.data_ptr<double>(), a_cols + pad, B.data_ptr<double>(),
                     b_cols + pad, beta, C.data_ptr<double>(), s.N + pad);
        const double* a = A.data_ptr<double>();
        const double* b = B.data_ptr<double>();
        const double* c = C.data_ptr<double>();
        double worst = 0;
        for (int64_t m = 0; m < s.M; ++m)
          for (int64_t n = 0; n < s.N; ++n) {
            double acc = 0;
            for (int64_t k = 0; k < s.K; ++k)
              acc += (ta ? a[k * (a_cols + pad) + m] : a[m * (a_cols + pad) + k]) *
                     (tb ? b[n * (b_cols + pad) + k] : b[k * (b_cols + pad) + n]);
            const double want = alpha * acc + beta * c0[m * (s.N + pad) + n];
            worst = std::max(worst, std::abs(c[m * (s.N + pad) + n] - want));
          }
        INFO("M " << s.M << " N " << s.N << " K " << s.K << " ta " << ta << " tb " << tb);
        REQUIRE(worst < 1e-9 * static_cast<double>(s.K));
        // The padding columns of C are never written.
        for (int64_t m = 0; m < s.M; ++m)
          for (int64_t n = s.N; n < s.N + pad; ++n) REQUIRE(c[m * (s.N + pad) + n] == c0[m * (s.N + pad) + n]);
      }
  }
}

TEST_CASE("matmul and linear are bitwise identical on 1, 2 and 3 threads at every split", "[linalg][parallel]") {
  Generator g(7);
  auto fixed = [&](const Shape& s, DType dt) -> Tensor { return randn(s, dt, &g); };
  for (DType dt : {DType::f32, DType::f64}) {
    const std::string d = dtype_name(dt);
    Tensor tall_a = fixed({1500, 96}, dt), tall_b = fixed({96, 300}, dt);
    require_thread_invariant("matmul tall " + d, [&] { return grads_of({tall_a, tall_b}, [](auto& v) { return matmul(v[0], v[1]); }); });
    Tensor wide_a = fixed({40, 300}, dt), wide_b = fixed({300, 2600}, dt);
    require_thread_invariant("matmul wide " + d, [&] { return grads_of({wide_a, wide_b}, [](auto& v) { return matmul(v[0], v[1]); }); });
    Tensor deep_a = fixed({16, 30000}, dt), deep_b = fixed({30000, 24}, dt);
    require_thread_invariant("matmul K >> 256 " + d, [&] { return grads_of({deep_a, deep_b}, [](auto& v) { return matmul(v[0], v[1]); }); });
    Tensor ba = fixed({6, 1, 70, 300}, dt), bb = fixed({4, 300, 90}, dt);
    require_thread_invariant("matmul batched broadcast " + d,
                             [&] { return grads_of({ba, bb}, [](auto& v) { return matmul(v[0], v[1]); }); });
    Tensor ta = fixed({700, 400}, dt), tb = fixed({300, 700}, dt);
    require_thread_invariant("matmul transposed operands " + d, [&] {
      return grads_of({ta, tb}, [](auto& v) { return matmul(transpose(v[0], 0, 1), transpose(v[1], 0, 1)); });
    });
    Tensor lx = fixed({3, 700, 300}, dt), lw = fixed({260, 300}, dt), lb = fixed({260}, dt);
    require_thread_invariant("linear " + d, [&] { return grads_of({lx, lw, lb}, [](auto& v) { return linear(v[0], v[1], v[2]); }); });
    Tensor lwt = fixed({300, 260}, dt);
    require_thread_invariant("linear with a transposed weight view " + d,
                             [&] { return grads_of({lx, lwt}, [](auto& v) { return linear(v[0], transpose(v[1], 0, 1)); }); });
  }
}

TEST_CASE("GEMM convolutions are bitwise identical on 1, 2 and 3 threads", "[conv][parallel]") {
  Generator g(11);
  struct Case {
    const char* what;
    Shape x, w;
    int64_t stride, pad, groups;
    bool transposed;
  };
  const std::vector<Case> cases = {
      {"1x1 wide", {2, 64, 40, 80}, {300, 64, 1, 1}, 1, 0, 1, false},
      {"1x1 long K (weight gradient over many pixels)", {2, 16, 192, 192}, {24, 16, 1, 1}, 1, 0, 1, false},
      {"3x3 dense (im2col, K = 288)", {2, 32, 30, 30}, {48, 32, 3, 3}, 1, 1, 1, false},
      {"3x3 stride 2 stem", {2, 3, 64, 64}, {16, 3, 3, 3}, 2, 1, 1, false},
      {"grouped 1x1", {1, 96, 40, 40}, {96, 24, 1, 1}, 1, 0, 4, false},
      {"conv_transpose2d 2x2", {2, 40, 24, 24}, {40, 16, 2, 2}, 2, 0, 1, true},
  };
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Case& c : cases) {
      Tensor x = randn(c.x, dt, &g), w = randn(c.w, dt, &g);
      Tensor b = randn({c.transposed ? c.w[1] * c.groups : c.w[0]}, dt, &g);
      require_thread_invariant(std::string(c.what) + " " + dtype_name(dt), [&] {
        return grads_of({x, w, b}, [&](auto& v) {
          return c.transposed ? conv_transpose2d(v[0], v[1], v[2], c.stride, c.pad)
                              : conv2d(v[0], v[1], v[2], c.stride, c.pad, 1, c.groups);
        });
      });
    }
  }
}

TEST_CASE("f32 products whose B rows are 4 KiB apart are right and thread-invariant", "[linalg][parallel]") {
  // On processors without AVX-512 oneDNN gets such pieces with B's panel copied to shorter-strided
  // rows first (ops/linalg/gemm.cpp): the copied and the direct pieces, and a product whose tiles
  // mix them, must give the product and the same bits on any thread count.
  INFO("GEMM: " << detail::gemm_backend());
  Generator g(11);
  for (int64_t n : {1024, 2048, 1040}) {  // 4 KiB and 8 KiB rows, and rows that are not a multiple
    Tensor a = randn({300, 64}, DType::f32, &g), b = randn({64, n}, DType::f32, &g);
    Tensor want = matmul(a.to(DType::f64), b.to(DType::f64));
    EVIT_REQUIRE_CLOSE(matmul(a, b).to(DType::f64), want, 1e-5, 1e-4);
    require_thread_invariant("matmul with B rows of " + std::to_string(n) + " floats",
                             [&] { return grads_of({a, b}, [](auto& v) { return matmul(v[0], v[1]); }); });
  }
}
