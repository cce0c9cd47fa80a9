// gradcheck: compares the analytic gradients of a function (from the autograd engine) with
// central finite differences. Public, because whoever adds an op needs it as much as our tests.
//
//   auto r = gradcheck([](const std::vector<Tensor>& in) { return conv2d(in[0], in[1]); },
//                      {x, w});          // x, w: f64 leaves, requires_grad on those to check
//   if (!r) std::cerr << r.message;
//
// Full mode builds the whole Jacobian (one backward per output element, two forwards per input
// element): for small f64 inputs. Fast mode compares one random projection v^T J u per
// repetition: cheap enough for larger shapes and f32 paths (raise eps and tolerances there).
// Inputs may be non-contiguous leaves (permuted or sliced, then detached); the perturbation is
// applied through their strides. Move inputs off kinks (relu at 0, clamp bounds, max ties) first.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace evit {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  bool fast = false;       // random-projection mode
  int fast_repeats = 2;    // projections to check in fast mode
  uint64_t seed = 1234;    // for the random projections
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // the first mismatches, naming input, element and both values
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace evit
