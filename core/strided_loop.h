// The strided loop every elementwise kernel runs on.
//
// Given an iteration shape and, per operand, strides in elements (0 where an operand is
// broadcast), it coalesces dimensions that are contiguous for every operand, splits the
// flattened index range into fixed chunks with parallel_for, and calls
//   row(offsets, n, inner_strides)
// for runs of `n` elements along the innermost dimension, where offsets[k] is the element offset
// of operand k at the start of the run. Kernels specialise the inner loop when every inner
// stride is 1 (vectorizable) and fall back to strided access otherwise.
#pragma once
#include <array>
#include <cstdint>

#include "core/parallel.h"
#include "core/shape.h"

namespace evit {

template <size_t N>
struct StridedIter {
  Shape sizes;
  std::array<Shape, N> strides;

  // Merges dimension i into i+1 when, for every operand, stride[i] == stride[i+1] * size[i+1],
  // and drops size-1 dimensions. Fewer dims means longer inner runs.
  void coalesce() {
    Shape s;
    std::array<Shape, N> st;
    for (size_t d = 0; d < sizes.size(); ++d) {
      if (sizes[d] == 1) continue;
      if (!s.empty()) {
        bool mergeable = true;
        for (size_t k = 0; k < N; ++k)
          if (st[k].back() != strides[k][d] * sizes[d]) mergeable = false;
        if (mergeable) {
          s.back() *= sizes[d];
          for (size_t k = 0; k < N; ++k) st[k].back() = strides[k][d];
          continue;
        }
      }
      s.push_back(sizes[d]);
      for (size_t k = 0; k < N; ++k) st[k].push_back(strides[k][d]);
    }
    if (s.empty()) {
      s.push_back(1);
      for (size_t k = 0; k < N; ++k) st[k].push_back(1);
    }
    sizes = std::move(s);
    strides = std::move(st);
  }

  template <class Row>
  void run(int64_t grain, const Row& row) {
    coalesce();
    const int64_t total = shape_numel(sizes);
    const int64_t nd = static_cast<int64_t>(sizes.size());
    const int64_t inner = sizes[nd - 1];
    std::array<int64_t, N> inner_st;
    for (size_t k = 0; k < N; ++k) inner_st[k] = strides[k][nd - 1];
    parallel_for(0, total, grain, [&](int64_t b, int64_t e) {
      // Multi-index of element b.
      Shape idx(nd);
      int64_t rem = b;
      for (int64_t d = nd - 1; d >= 0; --d) {
        idx[d] = rem % sizes[d];
        rem /= sizes[d];
      }
      std::array<int64_t, N> off{};
      for (size_t k = 0; k < N; ++k)
        for (int64_t d = 0; d < nd; ++d) off[k] += idx[d] * strides[k][d];
      int64_t pos = b;
      while (pos < e) {
        int64_t n = std::min(inner - idx[nd - 1], e - pos);
        row(off, n, inner_st);
        pos += n;
        // Advance the multi-index by n (carry into outer dims).
        idx[nd - 1] += n;
        for (size_t k = 0; k < N; ++k) off[k] += n * inner_st[k];
        for (int64_t d = nd - 1; d > 0 && idx[d] == sizes[d]; --d) {
          idx[d] = 0;
          idx[d - 1] += 1;
          for (size_t k = 0; k < N; ++k)
            off[k] += strides[k][d - 1] - sizes[d] * strides[k][d];
        }
      }
    });
  }
};

// Strides of `strides`/`sizes` broadcast to `out_sizes` (right-aligned; 0 on broadcast dims).
inline Shape broadcast_strides(const Shape& sizes, const Shape& strides, const Shape& out_sizes) {
  Shape r(out_sizes.size(), 0);
  size_t off = out_sizes.size() - sizes.size();
  for (size_t i = 0; i < sizes.size(); ++i) r[off + i] = sizes[i] == 1 ? 0 : strides[i];
  return r;
}

}  // namespace evit
