// sum, mean and sum_to.
//
// Kernel: the input is laid out as [outer, inner] rows (reduced dims last). With many rows each
// row is summed sequentially by one task; with few long rows every row is cut into fixed
// 16K-element pieces whose partial sums are added in order. Both orders depend only on the
// shape, so results are bitwise identical for any thread count. f32 accumulates in f64.
#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/pointwise.h"
#include "ops/reduce.h"
#include "ops/reduce/cuda_slots.h"
#include "ops/shape.h"

namespace evit {
namespace {

constexpr int64_t kPiece = 16384;

// Sum of row[0..n) in f64 with 8 interleaved accumulators (vectorizable) combined in a fixed
// order: the result depends on n only.
template <class T>
double sum_run(const T* row, int64_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l) lane[l] += static_cast<double>(row[j + l]);
  double acc = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; j < n; ++j) acc += static_cast<double>(row[j]);
  return acc;
}

template <class T>
void sum_rows(const T* in, T* out, int64_t outer, int64_t inner, double scale) {
  using Acc = double;
  if (inner <= kPiece) {  // the choice depends on the shape only, never on threads
    int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(inner, 1));
    parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        out[o] = static_cast<T>(sum_run(in + o * inner, inner) * scale);
      }
    });
    return;
  }
  const int64_t pieces = num_chunks(0, inner, kPiece);
  std::vector<Acc> partial(outer * pieces);
  parallel_for(0, outer * pieces, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t o = t / pieces, p = t % pieces;
      const T* row = in + o * inner;
      int64_t j0 = p * kPiece, j1 = std::min(inner, j0 + kPiece);
      partial[t] = sum_run(row + j0, j1 - j0);
    }
  });
  for (int64_t o = 0; o < outer; ++o) {
    Acc acc = 0;
    for (int64_t p = 0; p < pieces; ++p) acc += partial[o * pieces + p];
    out[o] = static_cast<T>(acc * scale);
  }
}

Tensor sum_impl(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool average,
                const char* name) {
  std::vector<bool> mask = reduction_mask(x, dims, name);
  Shape out_shape = reduced_shape(x.sizes(), mask, keepdim);
  ReductionRows rows = reduction_rows(x, mask);
  EVIT_CHECK(!average || rows.inner > 0, name, ": mean of an empty selection of ", x.desc());
  Tensor y = empty(out_shape, {x.dtype(), x.device()});
  double scale = average ? 1.0 / static_cast<double>(rows.inner) : 1.0;
  if (x.device().is_cuda()) {
    sum_rows_cuda(rows.data, y, rows.outer, rows.inner, average);
  } else {
    dispatch_numeric(x.dtype(), name, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_floating_point_v<T>) {
        sum_rows<T>(rows.data.data_ptr<T>(), y.data_ptr<T>(), rows.outer, rows.inner, scale);
      } else {
        const T* in = rows.data.data_ptr<T>();
        T* out = y.data_ptr<T>();
        for (int64_t o = 0; o < rows.outer; ++o) {
          int64_t acc = 0;
          for (int64_t j = 0; j < rows.inner; ++j) acc += in[o * rows.inner + j];
          out[o] = static_cast<T>(average ? acc / std::max<int64_t>(rows.inner, 1) : acc);
        }
      }
    });
  }
  Shape in_shape = x.sizes();
  Shape kept_shape = reduced_shape(x.sizes(), mask, true);
  autograd::record(average ? "MeanBackward" : "SumBackward", {x}, {y}, {},
                   [in_shape, kept_shape, scale](const BackwardContext& ctx) -> std::vector<Tensor> {
                     Tensor g = reshape(ctx.grad_output(0), kept_shape);
                     if (scale != 1.0) g = mul(g, scale);
                     return {expand(g, in_shape).contiguous()};
                   });
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(x, dims, keepdim, false, "sum");
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(x, dims, keepdim, true, "mean");
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.sizes() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  EVIT_CHECK(lead >= 0, "sum_to: cannot reduce ", x.desc(), " to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i < lead) {
      dims.push_back(i);
      continue;
    }
    int64_t want = shape[i - lead];
    if (want == 1 && x.sizes()[i] != 1) {
      dims.push_back(i);
    } else {
      EVIT_CHECK(want == x.sizes()[i], "sum_to: cannot reduce ", x.desc(), " to ",
                 shape_str(shape), " (dim ", i, ")");
    }
  }
  Tensor s = dims.empty() ? x : sum(x, dims, true);
  return reshape(s, shape);
}

}  // namespace evit
