#include "core/storage.h"

#include <cstdlib>
#include <new>

#include "core/error.h"

namespace evit {
namespace {

// 64-byte alignment: a cache line, and what AVX-512 loads like.
std::shared_ptr<void> cpu_allocate(size_t nbytes, int) {
  size_t rounded = (nbytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) EVIT_THROW("cpu allocator: out of memory allocating ", nbytes, " bytes");
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
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
