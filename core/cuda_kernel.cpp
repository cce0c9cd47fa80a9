#include "core/cuda_kernel.h"

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

}  // namespace evit
