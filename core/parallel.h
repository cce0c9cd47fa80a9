// The deterministic CPU thread pool.
//
// parallel_for(begin, end, grain, fn) splits [begin, end) into chunks of `grain` elements (the
// last one shorter) and runs fn(chunk_begin, chunk_end) for each, on the pool. Chunk boundaries
// depend only on the range and the grain, never on the number of threads, so a kernel that
// combines per-chunk partial results in chunk order gives bitwise identical results on 1 or 64
// threads. Ranges of a single chunk run inline on the caller; nested calls run inline too.
//
// OpenBLAS is kept single-threaded (set when the pool starts); products are split over this pool
// by ops/linalg/gemm.cpp.
#pragma once
#include <cstdint>
#include <functional>

namespace evit {

// The number of threads (EVIT_NUM_THREADS, else the hardware concurrency).
int get_num_threads();
// Changes the pool size. n >= 1.
void set_num_threads(int n);
// True inside a parallel_for body.
bool in_parallel_region();

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// Number of chunks parallel_for would use: for kernels that keep per-chunk partial results.
inline int64_t num_chunks(int64_t begin, int64_t end, int64_t grain) {
  if (end <= begin) return 0;
  if (grain < 1) grain = 1;
  return (end - begin + grain - 1) / grain;
}

// Grain sizes tuned for this pool: elementwise work below this many elements runs inline.
inline constexpr int64_t kPointwiseGrain = 32768;

}  // namespace evit
