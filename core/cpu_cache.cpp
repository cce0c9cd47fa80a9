#include "core/cpu_cache.h"

#include <cstdlib>

namespace evit {

CpuBlockCache::CpuBlockCache() {
  size_t mb = 4096;
  if (const char* e = std::getenv("EVIT_CPU_CACHE_MB")) mb = static_cast<size_t>(std::atoll(e));
  limit_ = mb << 20;
}

CpuBlockCache& CpuBlockCache::instance() {
  static CpuBlockCache* c = new CpuBlockCache();  // never destroyed: blocks may be freed late
  return *c;
}

size_t CpuBlockCache::size_class(size_t bytes) {
  size_t pow2 = 1;
  while (pow2 < bytes) pow2 <<= 1;
  size_t step = pow2 / 8;  // classes at 5/8, 6/8, 7/8 and 8/8 of the power of two
  return (bytes + step - 1) / step * step;
}

void* CpuBlockCache::take(size_t cls) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = free_.find(cls);
  if (it == free_.end() || it->second.empty()) {
    ++stats_.misses;
    return nullptr;
  }
  void* p = it->second.back();
  it->second.pop_back();
  stats_.cached_bytes -= cls;
  ++stats_.hits;
  return p;
}

void CpuBlockCache::give_back(void* p, size_t cls) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stats_.cached_bytes + cls <= limit_) {
      free_[cls].push_back(p);
      stats_.cached_bytes += cls;
      return;
    }
  }
  std::free(p);
}

void CpuBlockCache::release_all() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [cls, blocks] : free_)
    for (void* p : blocks) std::free(p);
  free_.clear();
  stats_.cached_bytes = 0;
}

CpuCacheStats CpuBlockCache::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void empty_cpu_cache() { CpuBlockCache::instance().release_all(); }
CpuCacheStats cpu_cache_stats() { return CpuBlockCache::instance().stats(); }

}  // namespace evit
