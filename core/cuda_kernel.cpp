#include "core/cuda_kernel.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>

#include "core/cuda.h"
#include "core/kernel_profile.h"

namespace evit {
namespace {
std::vector<const CudaKernelSlotBase*>& slot_list() {
  static std::vector<const CudaKernelSlotBase*> slots;
  return slots;
}
}  // namespace

CudaKernelSlotBase::CudaKernelSlotBase(const char* name) : name_(name) { slot_list().push_back(this); }

const std::vector<const CudaKernelSlotBase*>& cuda_kernel_slots() { return slot_list(); }

void CudaKernelSlotBase::throw_missing() const {
  EVIT_THROW(name_, ": this build of evit has no CUDA backend (configure with EVIT_CUDA=ON on a "
             "machine with the CUDA toolkit)");
}

namespace {
struct ProfileTable {
  std::mutex mutex;
  std::map<const char*, kernel_profile::Entry> entries;  // slot names are unique static strings
};
ProfileTable& profile_table() {
  static ProfileTable t;
  return t;
}
thread_local int profiled_depth = 0;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Waits for the device; a slot call of its own, which the depth count keeps out of the profile.
void wait_for_device() {
  if (cuda::cuda_synchronize_impl.filled()) cuda::cuda_synchronize_impl(-1);
}
}  // namespace

namespace detail {
ProfiledSlotCall::ProfiledSlotCall(const char* slot) : slot_(slot), outermost_(profiled_depth++ == 0) {
  if (!outermost_) return;
  wait_for_device();
  start_ms_ = now_ms();
}

ProfiledSlotCall::~ProfiledSlotCall() {
  if (outermost_) {
    try {
      wait_for_device();
    } catch (...) {  // a failed kernel is reported by the call's own error path
    }
    const double ms = now_ms() - start_ms_;
    ProfileTable& t = profile_table();
    std::lock_guard lock(t.mutex);
    kernel_profile::Entry& e = t.entries[slot_];
    e.slot = slot_;
    ++e.calls;
    e.total_ms += ms;
  }
  --profiled_depth;
}
}  // namespace detail

namespace kernel_profile {
void start() {
  {
    std::lock_guard lock(profile_table().mutex);
    profile_table().entries.clear();
  }
  detail::kernel_profile_on.store(true);
}

std::vector<Entry> stop() {
  detail::kernel_profile_on.store(false);
  std::vector<Entry> out;
  std::lock_guard lock(profile_table().mutex);
  for (auto& [name, e] : profile_table().entries) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.total_ms > b.total_ms; });
  return out;
}
}  // namespace kernel_profile

}  // namespace evit
