// CUDA slots of the softmax family (filled by softmax.cu and sdpa.cu).
#pragma once
#include "core/cuda_kernel.h"
#include "core/tensor.h"

namespace evit {

// x, y: contiguous, seen as [outer, D, inner] (D = the softmax dim). log: log_softmax.
EVIT_CUDA_KERNEL(softmax_forward_cuda, void(const Tensor& x, int64_t outer, int64_t D,
                                            int64_t inner, bool log, const Tensor& y));
// y: the forward output, g: contiguous incoming gradient, gx: allocated.
EVIT_CUDA_KERNEL(softmax_backward_cuda, void(const Tensor& y, const Tensor& g, int64_t outer,
                                             int64_t D, int64_t inner, bool log,
                                             const Tensor& gx));

// q [BH, Nq, d], k [BH, Nk, d], v [BH, Nk, dv], all contiguous (any 4-D view of those).
// Writes the probabilities P [BH, Nq, Nk] and out [BH, Nq, dv].
EVIT_CUDA_KERNEL(sdpa_forward_cuda, void(const Tensor& q, const Tensor& k, const Tensor& v,
                                         int64_t BH, int64_t Nq, int64_t Nk, int64_t d,
                                         int64_t dv, double scale, const Tensor& P,
                                         const Tensor& out));
// g: contiguous [BH, Nq, dv]. dq, dk, dv_out: allocated where needed, else undefined.
EVIT_CUDA_KERNEL(sdpa_backward_cuda, void(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const Tensor& P, const Tensor& g, int64_t BH,
                                          int64_t Nq, int64_t Nk, int64_t d, int64_t dv,
                                          double scale, const Tensor& dq, const Tensor& dk,
                                          const Tensor& dv_out));

}  // namespace evit
