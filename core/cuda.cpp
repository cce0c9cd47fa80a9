#include "core/cuda.h"

#include <atomic>

namespace evit::cuda {
namespace {
std::atomic<bool> g_allow_tf32{false};
}

bool is_built() { return cuda_device_count_impl.filled(); }

int device_count() { return is_built() ? cuda_device_count_impl() : 0; }

bool is_available() { return device_count() > 0; }

void synchronize(int device) {
  if (is_available()) cuda_synchronize_impl(device);
}

AllocatorStats memory_stats(int device) { return cuda_memory_stats_impl(device); }
void reset_peak_memory_stats(int device) { cuda_reset_peak_impl(device); }
void empty_cache(int device) { cuda_empty_cache_impl(device); }

void set_allow_tf32(bool on) { g_allow_tf32 = on; }
bool allow_tf32() { return g_allow_tf32; }

Tensor pin_memory(const Tensor& t) {
  EVIT_CHECK(t.device().is_cpu(), "pin_memory: expected a cpu tensor, got ", t.desc());
  if (!is_available()) return t.contiguous();
  return cuda_pin_memory_impl(t);
}

}  // namespace evit::cuda
