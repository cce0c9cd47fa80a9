// Mixed precision (autocast). Inside an AutocastGuard, the GEMM-shaped ops on CUDA tensors —
// conv2d (dense, grouped and 1x1; not depthwise), conv_transpose2d, linear and matmul — read
// their f32 operands as f16 or bf16 and run on the tensor cores with f32 accumulation; their
// outputs stay f32. Everything else (norms, softmax, linear attention, losses, pointwise) keeps
// computing in f32 as the reference keeps linear attention (its division is ill-conditioned in 16 bits), and no op ever sees mixed dtypes.
//
// The decision is taken in the forward pass and captured by the op's backward, so gradients
// use the same precision whether or not backward() runs inside the guard. CPU tensors are not
// affected: the CPU kernels compute in f32/f64 only.
//
// Training in f16 needs a loss scaler (optim/grad_scaler.h); bf16 has f32's range and does not.
#pragma once
#include <optional>

#include "core/tensor.h"

namespace evit {

class AutocastGuard {
 public:
  // dtype: f16 or bf16. enabled = false makes a scope that turns autocast off.
  explicit AutocastGuard(DType dtype = DType::f16, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_enabled_;
  DType prev_dtype_;
};

// The 16-bit dtype a GEMM-shaped op on `device` computes in now; nullopt when autocast is off
// (for this thread) or the device is not CUDA.
std::optional<DType> autocast_dtype(const Device& device);

// x in the autocast compute dtype (a differentiable cast), or x itself when `dtype` is nullopt.
Tensor autocast_operand(const Tensor& x, std::optional<DType> dtype);

}  // namespace evit
