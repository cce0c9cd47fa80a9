// Installs autograd into core (core/autograd_meta.h): copies record their backward, and
// Tensor::backward runs the engine. Runs at start-up; the library is linked whole, so this
// registrar is always present when autograd is.
#include "autograd/node.h"

namespace evit {
namespace {

void record_copy(const char* name, const Tensor& in, const Tensor& out) {
  if (!is_floating(in.dtype()) || !is_floating(out.dtype())) return;
  const DType dtype = in.dtype();
  const Device device = in.device();
  autograd::record(name, {in}, {out}, {}, [dtype, device](const BackwardContext& ctx) -> std::vector<Tensor> {
    return {ctx.grad_output(0).to(dtype).to(device)};
  });
}

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  autograd::backward({root}, {grad}, retain_graph);
}

const bool installed = [] {
  set_autograd_hooks({record_copy, run_backward});
  return true;
}();

}  // namespace
}  // namespace evit
