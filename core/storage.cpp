#include "core/storage.h"

#include <cstdlib>
#include <new>

#include "core/error.h"
#include "core/cpu_cache.h"

namespace evit {
namespace {

// 64-byte alignment: a cache line, and what AVX-512 loads like.
void* aligned_or_throw(size_t bytes, size_t requested) {
  void* p = std::aligned_alloc(64, bytes);
  if (!p) EVIT_THROW("cpu allocator: out of memory allocating ", requested, " bytes");
  return p;
}

std::shared_ptr<void> cpu_allocate(size_t nbytes, int) {
  size_t rounded = (nbytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  if (rounded < CpuBlockCache::kMinCached) {
    return std::shared_ptr<void>(aligned_or_throw(rounded, nbytes), [](void* q) { std::free(q); });
  }
  // Large blocks come from the cache: glibc returns them to the OS on free, and touching fresh
  // pages again costs a page fault per 4 KiB, which dominated op timings.
  size_t cls = CpuBlockCache::size_class(rounded);
  void* p = CpuBlockCache::instance().take(cls);
  if (!p) p = aligned_or_throw(cls, nbytes);
  return std::shared_ptr<void>(p, [cls](void* q) { CpuBlockCache::instance().give_back(q, cls); });
}

AllocatorFn& allocator_slot(DeviceType t) {
  static AllocatorFn table[kNumDeviceTypes] = {cpu_allocate, nullptr};
  return table[static_cast<int>(t)];
}

}  // namespace

void register_allocator(DeviceType type, AllocatorFn fn) { allocator_slot(type) = fn; }

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  AllocatorFn fn = allocator_slot(device.type);
  EVIT_CHECK(fn != nullptr, "cannot allocate on ", device.str(),
             ": this build of evit has no backend for it (build with EVIT_CUDA=ON)");
  auto owner = fn(nbytes, device.index);
  void* data = owner.get();
  return std::make_shared<Storage>(data, nbytes, device, std::move(owner));
}

}  // namespace evit
