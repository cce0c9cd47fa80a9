// CUDA kernel slots: how an op's .cpp reaches its CUDA twin without a central switch and
// without #ifdefs.
//
// The op's internal header declares a slot with the kernel's signature:
//
//   EVIT_CUDA_KERNEL(batch_norm_forward_cuda, void(const Tensor& x, ..., Tensor& y));
//
// the op's .cpp calls it for CUDA tensors (`batch_norm_forward_cuda(x, ..., y)`), and the twin
// `.cu` file, compiled only when the CUDA backend is built, fills it at static initialisation:
//
//   EVIT_REGISTER_CUDA_KERNEL(batch_norm_forward_cuda, launch_batch_norm_forward);
//
// In a CPU-only build the slot stays empty and calling it throws an error naming the kernel.
// Every slot is listed in `cuda_kernel_slots()`, so a test of a CUDA build can check that no op
// lacks its kernel (that test needs no GPU).
//
// Because every CUDA kernel, copy and cuBLAS call of evit passes through a slot, the slots are
// also where the kernel profile (core/kernel_profile.h) times them; while it is off, a call costs
// one relaxed atomic load more.
#pragma once
#include <atomic>
#include <utility>
#include <vector>

#include "core/error.h"

namespace evit {

class CudaKernelSlotBase {
 public:
  explicit CudaKernelSlotBase(const char* name);
  const char* name() const { return name_; }
  virtual bool filled() const = 0;

 protected:
  ~CudaKernelSlotBase() = default;
  [[noreturn]] void throw_missing() const;

 private:
  const char* name_;
};

// Every slot declared in the program (in declaration order of initialisation).
const std::vector<const CudaKernelSlotBase*>& cuda_kernel_slots();

namespace detail {
// On while a kernel profile records (core/kernel_profile.h).
inline std::atomic<bool> kernel_profile_on{false};

// Times the outermost slot call of this thread: synchronizes the device before and after it so
// the time is the call's own GPU work (plus its launch), not the queue's.
class ProfiledSlotCall {
 public:
  explicit ProfiledSlotCall(const char* slot);
  ~ProfiledSlotCall();
  ProfiledSlotCall(const ProfiledSlotCall&) = delete;
  ProfiledSlotCall& operator=(const ProfiledSlotCall&) = delete;

 private:
  const char* slot_;
  bool outermost_;
  double start_ms_ = 0;
};
}  // namespace detail

template <class Sig> class CudaKernelSlot;

template <class R, class... A>
class CudaKernelSlot<R(A...)> final : public CudaKernelSlotBase {
 public:
  using Fn = R (*)(A...);
  explicit CudaKernelSlot(const char* name) : CudaKernelSlotBase(name) {}
  void fill(Fn fn) { fn_ = fn; }
  bool filled() const override { return fn_ != nullptr; }
  R operator()(A... args) const {
    if (!fn_) throw_missing();
    if (detail::kernel_profile_on.load(std::memory_order_relaxed)) {
      detail::ProfiledSlotCall timed(name());
      return fn_(std::forward<A>(args)...);
    }
    return fn_(std::forward<A>(args)...);
  }

 private:
  Fn fn_ = nullptr;
};

}  // namespace evit

// Declares a slot in a header (an inline variable: one object in the whole program).
#define EVIT_CUDA_KERNEL(slot, signature) inline ::evit::CudaKernelSlot<signature> slot{#slot}

// Fills a slot from a .cu file.
#define EVIT_CUDA_CONCAT_INNER(a, b) a##b
#define EVIT_CUDA_CONCAT(a, b) EVIT_CUDA_CONCAT_INNER(a, b)
#define EVIT_REGISTER_CUDA_KERNEL(slot, fn)                                                 \
  [[maybe_unused]] static const bool EVIT_CUDA_CONCAT(evit_cuda_registered_, __COUNTER__) = \
      ((slot).fill(fn), true)
