// The CPU block cache: keeps freed large blocks (>= 256 KiB) for reuse instead of returning them
// to the OS. Sizes are rounded to classes of 4 steps per power of two (at most 25% slack), so a
// training step that allocates the same shapes every iteration reuses the same blocks. The cache
// holds at most EVIT_CPU_CACHE_MB (default 4096) MiB of free blocks; empty_cpu_cache() releases all.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

namespace evit {

struct CpuCacheStats {
  size_t cached_bytes = 0;  // free blocks held
  size_t hits = 0, misses = 0;
};

class CpuBlockCache {
 public:
  static constexpr size_t kMinCached = 256 * 1024;
  static CpuBlockCache& instance();
  // The class (allocation size) for a request of `bytes` >= kMinCached.
  static size_t size_class(size_t bytes);

  void* take(size_t cls);  // a cached block of that class, or nullptr
  void give_back(void* p, size_t cls);
  void release_all();
  CpuCacheStats stats();

 private:
  CpuBlockCache();
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  size_t limit_;
  CpuCacheStats stats_;
};

// Returns every cached free block to the OS.
void empty_cpu_cache();
CpuCacheStats cpu_cache_stats();

}  // namespace evit
