// Internal helpers of the loss family: deterministic chunked sums and reduction handling.
#pragma once
#include <vector>

#include "core/parallel.h"
#include "ops/loss.h"

namespace evit::loss_detail {

// Fixed chunk length for partial sums: the summation order depends only on n.
inline constexpr int64_t kSumChunk = 16384;

// sum_{i < n} f(i) in f64: fixed chunks summed in parallel, partials added in chunk order.
template <class F>
double chunked_sum(int64_t n, const F& f) {
  const int64_t chunks = num_chunks(0, n, kSumChunk);
  std::vector<double> part(chunks, 0.0);
  parallel_for(0, n, kSumChunk, [&](int64_t b, int64_t e) {
    double acc = 0;
    for (int64_t i = b; i < e; ++i) acc += f(i);
    part[b / kSumChunk] = acc;
  });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

}  // namespace evit::loss_detail
