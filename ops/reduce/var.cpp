// var: variance over dims, biased (divide by n) or unbiased (divide by n - 1).
//
// Kernel: the input is laid out as [outer, inner] rows (reduced dims last, reduction_rows()).
// Each row is reduced with two passes in double (eight interleaved accumulators per pass): the
// mean, then the sum of squared deviations from it (more accurate than sum(x^2) - n mean^2,
// which cancels catastrophically). As in sum, short rows are handled one row per task and long
// rows are cut into fixed 16K-element pieces whose partial sums are added in piece order, so the
// result depends only on the shape and is bitwise identical for any thread count.
//
// Backward: d var / d x = 2 (x - mean) / divisor, times the incoming gradient broadcast over the
// reduced dims. It is written with differentiable pointwise ops (the mean is recomputed from the
// saved input), so the formula is the same as PyTorch's and second derivatives come for free.
#include <cmath>
#include <limits>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/pointwise.h"
#include "ops/reduce.h"
#include "ops/reduce/cuda_slots.h"
#include "ops/shape.h"

namespace evit {
namespace {

constexpr int64_t kPiece = 16384;

// Eight independent accumulators (lane k takes elements k, k+8, ...) combined in a fixed order:
// the order depends only on the length, and the lanes let the compiler vectorize the loop
// (a single running sum is a serial chain of dependent adds).
constexpr int kLanes = 8;

template <class T>
double row_sum(const T* p, int64_t n) {
  double acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += static_cast<double>(p[j + k]);
  for (int k = 0; j < n; ++j, ++k) acc[k] += static_cast<double>(p[j]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <class T>
double row_sqdev(const T* p, int64_t n, double mean) {
  double acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const double d = static_cast<double>(p[j + k]) - mean;
      acc[k] += d * d;
    }
  for (int k = 0; j < n; ++j, ++k) {
    const double d = static_cast<double>(p[j]) - mean;
    acc[k] += d * d;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// out[o] = sum_j (in[o, j] - mean_o)^2 / divisor.
template <class T>
void var_rows(const T* in, T* out, int64_t outer, int64_t inner, double divisor) {
  const double inv_n = inner > 0 ? 1.0 / static_cast<double>(inner)
                                 : std::numeric_limits<double>::quiet_NaN();
  if (inner <= kPiece) {  // depends on the shape only, never on the thread count
    int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(2 * inner, 1));
    parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* row = in + o * inner;
        double m = row_sum(row, inner) * inv_n;
        out[o] = static_cast<T>(row_sqdev(row, inner, m) / divisor);
      }
    });
    return;
  }
  // Few long rows: fixed pieces, partial sums combined in piece order.
  const int64_t pieces = num_chunks(0, inner, kPiece);
  std::vector<double> partial(outer * pieces);
  std::vector<double> means(outer);
  auto piece_range = [&](int64_t p) {
    int64_t j0 = p * kPiece;
    return std::pair<int64_t, int64_t>(j0, std::min(inner, j0 + kPiece));
  };
  parallel_for(0, outer * pieces, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      auto [j0, j1] = piece_range(t % pieces);
      partial[t] = row_sum(in + (t / pieces) * inner + j0, j1 - j0);
    }
  });
  for (int64_t o = 0; o < outer; ++o) {
    double acc = 0;
    for (int64_t p = 0; p < pieces; ++p) acc += partial[o * pieces + p];
    means[o] = acc * inv_n;
  }
  parallel_for(0, outer * pieces, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      auto [j0, j1] = piece_range(t % pieces);
      partial[t] = row_sqdev(in + (t / pieces) * inner + j0, j1 - j0, means[t / pieces]);
    }
  });
  for (int64_t o = 0; o < outer; ++o) {
    double acc = 0;
    for (int64_t p = 0; p < pieces; ++p) acc += partial[o * pieces + p];
    out[o] = static_cast<T>(acc / divisor);
  }
}

}  // namespace

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool unbiased, bool keepdim) {
  EVIT_CHECK(is_floating(x.dtype()), "var: expected a floating dtype (f32 or f64), got ",
             x.desc());
  std::vector<bool> mask = reduction_mask(x, dims, "var");
  Shape out_shape = reduced_shape(x.sizes(), mask, keepdim);
  ReductionRows rows = reduction_rows(x, mask);
  // As PyTorch: n - 1 <= 0 gives a NaN (0/0) or inf result rather than an error.
  const double divisor =
      static_cast<double>(std::max<int64_t>(rows.inner - (unbiased ? 1 : 0), 0));
  Tensor y = empty(out_shape, {x.dtype(), x.device()});
  if (x.device().is_cuda()) {
    var_rows_cuda(rows.data, y, rows.outer, rows.inner, divisor);
  } else {
    dispatch_floating(x.dtype(), "var", [&](auto tag) {
      using T = decltype(tag);
      var_rows<T>(rows.data.data_ptr<T>(), y.data_ptr<T>(), rows.outer, rows.inner, divisor);
    });
  }
  std::vector<int64_t> red_dims;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (mask[i]) red_dims.push_back(i);
  Shape kept_shape = reduced_shape(x.sizes(), mask, true);
  autograd::record(
      "VarBackward", {x}, {y}, {x},
      [red_dims, kept_shape, divisor](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor& xs = ctx.saved(0);
        // mean() of no dims would mean "all dims"; a 0-D input has nothing to reduce.
        Tensor m = red_dims.empty() ? xs : mean(xs, red_dims, true);
        Tensor g = mul(reshape(ctx.grad_output(0), kept_shape), 2.0 / divisor);
        return {mul(sub(xs, m), g)};
      });
  return y;
}

}  // namespace evit
