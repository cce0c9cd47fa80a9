// The kernel profile: where a CUDA step spends its time, by kernel slot (core/cuda_kernel.h).
//
//   kernel_profile::start();
//   ... one training step ...
//   for (auto& e : kernel_profile::stop()) print(e.slot, e.calls, e.total_ms);
//
// While it records, every outermost slot call is bracketed by device synchronizations, so each
// entry is the GPU time of that call's kernels plus its launch; work queued earlier is not
// charged to it. The synchronizations slow the step down, so the profile is for finding where
// the time goes (shares), never for the step time itself. Calls made from any thread count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace evit::kernel_profile {

struct Entry {
  std::string slot;  // the slot's name, e.g. "batch_norm_forward_cuda"
  int64_t calls = 0;
  double total_ms = 0;
};

// Clears earlier entries and starts recording.
void start();
// Stops recording; the entries, largest total time first.
std::vector<Entry> stop();

}  // namespace evit::kernel_profile
