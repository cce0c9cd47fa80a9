// Storage: a refcounted block of bytes on one device. The owner (an allocator, a memory-mapped
// file, a user buffer) is kept alive by `owner_`; views of a tensor share one Storage.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "core/device.h"

namespace evit {

class Storage {
 public:
  Storage(void* data, size_t nbytes, Device device, std::shared_ptr<void> owner)
      : data_(data), nbytes_(nbytes), device_(device), owner_(std::move(owner)) {}

  // Allocates `nbytes` uninitialized bytes on `device` through that device's allocator.
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  std::shared_ptr<void> owner_;
};

// Device allocators are plugged in per device type; the CUDA backend registers its own.
using AllocatorFn = std::shared_ptr<void> (*)(size_t nbytes, int device_index);
void register_allocator(DeviceType type, AllocatorFn fn);

}  // namespace evit
