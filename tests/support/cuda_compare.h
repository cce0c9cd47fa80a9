// Support for the [cuda] tests: each CUDA kernel is checked against the CPU kernel on the same
// inputs. These tests carry the hidden tag "[.]" so CPU-only runs skip them; tools/gpu_check.sh
// runs them with `evit_tests "[cuda]"` on a machine with a GPU.
#pragma once
#include "core/cuda.h"
#include "tests/support/test_util.h"

namespace evit::test {

// Fails (rather than skips) when there is no GPU: a [cuda] test only runs when asked for.
#define EVIT_REQUIRE_GPU()                                                                 \
  do {                                                                                     \
    if (!::evit::cuda::is_available())                                                    \
      FAIL("no CUDA GPU is visible: [cuda] tests need one (tools/gpu_check.sh runs them)"); \
  } while (0)

inline Device cuda0() { return Device(DeviceType::cuda, 0); }

struct CudaCompareOptions {
  double rtol = 1e-4, atol = 1e-5;            // outputs
  double grad_rtol = 1e-4, grad_atol = 1e-5;  // gradients (looser where reduction order differs)
  bool check_grads = true;
  uint64_t seed = 11;  // for the random output weights w of the gradient check
};

// Runs fn on `inputs` (CPU tensors; those requiring grad are leaves) and on CUDA copies of
// them. Requires equal dtypes and shapes, outputs within tolerance, and — when some input
// requires grad — the gradients of sum(out * w) for a random w within tolerance.
void require_cuda_matches_cpu(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                              const CudaCompareOptions& options = {});

// Tolerances for an op run under autocast against the f32 CPU result: 16-bit operands carry
// ~1e-3 (f16) / ~4e-3 (bf16) relative error each, accumulated in f32; values near zero need an
// absolute margin that grows like sqrt(reduction length).
inline CudaCompareOptions autocast_options(DType dt) {
  const double atol = dt == DType::f16 ? 2e-2 : 1e-1;
  return {2e-2, atol, 2e-2, atol};
}

// require_cuda_matches_cpu twice: in f32 at rtol 1e-4 with `atol` (CUDA sums in another order
// than the CPU; atol covers values near zero, whose absolute error grows with the reduction
// length), then on f64 copies of the inputs at 1e-10 (the index math must be exact).
void require_cuda_matches_cpu_f32_f64(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                                      double atol = 1e-4);

// Random f32 CPU tensor in [lo, hi), optionally a leaf requiring grad.
Tensor random_f32(const Shape& shape, bool requires_grad = true, double lo = -1.0, double hi = 1.0,
                  uint64_t seed = 5);

}  // namespace evit::test
