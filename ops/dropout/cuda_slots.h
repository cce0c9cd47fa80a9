// CUDA slots of dropout / dropout2d / drop_path (filled by ops/dropout/dropout.cu).
#pragma once
#include <cstdint>

#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit {

// mask (u8 [groups], on the device) from Philox(seed, base + i / 4) word i % 4, exactly as the
// CPU's make_mask: unit i is kept when its 24-bit uniform is below `keep`.
EVIT_CUDA_KERNEL(dropout_mask_cuda, void(const Tensor& mask, uint64_t seed, uint64_t base,
                                         double keep));
// y[i] = mask[i / unit] ? x[i] * scale : 0 over contiguous x, y.
EVIT_CUDA_KERNEL(dropout_apply_cuda, void(const Tensor& x, const Tensor& mask, const Tensor& y,
                                          int64_t unit, double scale));

}  // namespace evit
