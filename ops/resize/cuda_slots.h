// CUDA slots of interpolate (filled by ops/resize/interpolate.cu). interpolate.cpp computes the
// per-axis taps on the host with the CPU code (so both devices use identical indices and
// weights), uploads them, and adds the inverse map the backward gather needs.
#pragma once
#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit {

// The taps of one axis on the device: output o reads inputs idx[o*K + k] with weights
// w[o*K + k] (dtype of the image). inv_off/inv invert that map: the taps that read input i are
// inv[inv_off[i] .. inv_off[i+1]), each stored as o*K + k, in increasing (o, k) order (the order
// in which the CPU backward scatters into input i).
struct InterpAxisCuda {
  Tensor idx, w, inv_off, inv;
  int K = 1;
  int64_t in = 0, out = 0;
};

// x contiguous [P, in_y, in_x] planes -> y [P, out_y, out_x]. nearest: a plain gather (K == 1).
EVIT_CUDA_KERNEL(interpolate_forward_cuda,
                 void(const Tensor& x, const Tensor& y, const InterpAxisCuda& ty,
                      const InterpAxisCuda& tx, bool nearest));
// gy contiguous [P, out_y, out_x] -> gx [P, in_y, in_x] (every element written).
EVIT_CUDA_KERNEL(interpolate_backward_cuda,
                 void(const Tensor& gy, const Tensor& gx, const InterpAxisCuda& ty,
                      const InterpAxisCuda& tx, bool nearest));

}  // namespace evit

namespace evit {

// point_sample (ops/resize/point_sample.cpp): x contiguous [N, C, H, W], coords contiguous
// [N, P, 2] -> y [N, C, P]; the backward adds into the zeroed gx [N, C, H, W] plane by plane,
// the points of a plane in order (deterministic, no atomics).
EVIT_CUDA_KERNEL(point_sample_forward_cuda, void(const Tensor& x, const Tensor& coords, const Tensor& y));
EVIT_CUDA_KERNEL(point_sample_backward_cuda, void(const Tensor& gy, const Tensor& coords, const Tensor& gx));

}  // namespace evit
