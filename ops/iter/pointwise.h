// Building blocks for pointwise ops. A pointwise op is a small functor with the math (usable on
// host and device) and one line that turns it into a differentiable op:
//
//   struct HardswishOp {
//     static constexpr const char* name = "hardswish";
//     static constexpr const char* backward_name = "HardswishBackward";
//     static constexpr bool uses_input = true, uses_output = false;  // what backward reads
//     template <class T> EVIT_HD T forward(T x) const { ... }
//     // x = input, y = output, g = gradient of the output
//     template <class T> EVIT_HD T backward(T x, T y, T g) const { ... }
//   };
//   Tensor hardswish(const Tensor& x) { return unary_op(x, HardswishOp{}); }
//
// Binary ops provide forward(a, b) and grad_a(a, b, y, g) / grad_b(a, b, y, g); broadcasting
// (and the reduction of broadcast gradients) is handled here and in the engine.
//
// Functors live in ops/pointwise/functors.h (a named namespace, so the CPU .cpp and the CUDA
// .cu files instantiate the same types). On CUDA tensors the generic ops call the kernel slots
// below, which ops/pointwise/pointwise.cu fills for each functor with one line.
#pragma once
#include "autograd/node.h"
#include "core/cuda_kernel.h"
#include "ops/iter/map.h"
#include "ops/pointwise/listed.h"

namespace evit {

// ---- CUDA slots per functor (see core/cuda_kernel.h). Function-local statics: created when
// first used, by the .cu registrar or by the first CUDA call.
template <class Op>
CudaKernelSlot<void(const Tensor& y, const Tensor& x, const Op& op)>& cuda_unary_forward() {
  static CudaKernelSlot<void(const Tensor&, const Tensor&, const Op&)> slot{Op::name};
  return slot;
}
template <class Op>
CudaKernelSlot<void(const Tensor& gx, const Tensor& x, const Tensor& y, const Tensor& g,
                    const Op& op)>&
cuda_unary_backward() {
  static CudaKernelSlot<void(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Op&)>
      slot{Op::backward_name};
  return slot;
}
template <class Op>
CudaKernelSlot<void(const Tensor& y, const Tensor& a, const Tensor& b, const Op& op)>&
cuda_binary_forward() {
  static CudaKernelSlot<void(const Tensor&, const Tensor&, const Tensor&, const Op&)> slot{Op::name};
  return slot;
}
// `which` = 0 for grad_a, 1 for grad_b.
template <class Op>
CudaKernelSlot<void(const Tensor& gout, int which, const Tensor& a, const Tensor& b,
                    const Tensor& y, const Tensor& g, const Op& op)>&
cuda_binary_backward() {
  static CudaKernelSlot<void(const Tensor&, int, const Tensor&, const Tensor&, const Tensor&,
                             const Tensor&, const Op&)>
      slot{Op::backward_name};
  return slot;
}

template <class Op> inline constexpr bool is_comparison_op = requires { Op::is_comparison; };

// y = op.forward(a, b) elementwise with broadcasting, on the operands' device, no autograd.
// Numeric dtypes give y of the same dtype; comparison functors take any dtype and give bool.
template <class Op>
void binary_forward_into(const Tensor& y, const Tensor& a, const Tensor& b, const Op& op) {
  static_assert(pointwise::listed_binary<Op> || pointwise::listed_forward_binary<Op>,
                "list the functor in ops/pointwise/list.h: its CUDA kernels are registered from there");
  if (y.device().is_cuda()) return cuda_binary_forward<Op>()(y, a, b, op);
  if constexpr (is_comparison_op<Op>) {
    dispatch_all(a.dtype(), Op::name, [&](auto tag) {
      using T = decltype(tag);
      cpu_map<bool, T, T>(y, [op](T u, T v) { return op.forward(u, v); }, a, b);
    });
  } else {
    dispatch_numeric(a.dtype(), Op::name, [&](auto tag) {
      using T = decltype(tag);
      cpu_map<T, T, T>(y, [op](T u, T v) { return op.forward(u, v); }, a, b);
    });
  }
}

// Unary: floating inputs only (activations and math functions).
template <class Op>
Tensor unary_op(const Tensor& x, Op op = Op{}) {
  static_assert(pointwise::listed_unary<Op>, "list the functor in ops/pointwise/list.h: its CUDA kernels are registered from there");
  Tensor y = empty(x.sizes(), {x.dtype(), x.device()});
  if (x.device().is_cuda()) {
    cuda_unary_forward<Op>()(y, x, op);
  } else {
    dispatch_floating(x.dtype(), Op::name, [&](auto tag) {
      using T = decltype(tag);
      cpu_map<T, T>(y, [op](T v) { return op.forward(v); }, x);
    });
  }
  // Only what backward reads is saved (keeps activations alive no longer than needed); the
  // gradient stands in for an unsaved operand so the kernel signature stays the same.
  autograd::record(Op::backward_name, {x}, {y},
                   {Op::uses_input ? x : Tensor(), Op::uses_output ? y : Tensor()},
                   [op](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     const Tensor& xs = Op::uses_input ? ctx.saved(0) : g;
                     const Tensor& ys = Op::uses_output ? ctx.saved(1) : g;
                     Tensor gx = empty(xs.sizes(), {xs.dtype(), xs.device()});
                     if (gx.device().is_cuda()) {
                       cuda_unary_backward<Op>()(gx, xs, ys, g, op);
                       return {gx};
                     }
                     dispatch_floating(xs.dtype(), Op::name, [&](auto tag) {
                       using T = decltype(tag);
                       cpu_map<T, T, T, T>(
                           gx, [op](T a, T b, T c) { return op.backward(a, b, c); }, xs, ys, g);
                     });
                     return {gx};
                   });
  return y;
}

// Checks that two operands can meet in a binary op: same device and same dtype.
void check_binary_operands(const Tensor& a, const Tensor& b, const char* op);

// Binary with broadcasting. Numeric dtypes for forward; gradients for floating dtypes.
template <class Op>
Tensor binary_op(const Tensor& a, const Tensor& b, Op op = Op{}) {
  static_assert(pointwise::listed_binary<Op>, "list the functor (with its gradients) in ops/pointwise/list.h");
  check_binary_operands(a, b, Op::name);
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), Op::name);
  Tensor y = empty(shape, {a.dtype(), a.device()});
  binary_forward_into(y, a, b, op);
  autograd::record(
      Op::backward_name, {a, b}, {y}, {a, b, Op::uses_output ? y : Tensor()},
      [op](const BackwardContext& ctx) -> std::vector<Tensor> {
        const Tensor& g = ctx.grad_output(0);
        const Tensor &as = ctx.saved(0), &bs = ctx.saved(1);
        const Tensor& ys = Op::uses_output ? ctx.saved(2) : g;
        Tensor ga, gb;
        EVIT_CHECK(g.sizes() == (ys.sizes()), Op::backward_name, ": bad gradient shape");
        for (int which = 0; which < 2; ++which) {
          if (!ctx.needs_input_grad(which)) continue;
          Tensor out = empty(g.sizes(), {g.dtype(), g.device()});
          if (out.device().is_cuda()) {
            cuda_binary_backward<Op>()(out, which, as, bs, ys, g, op);
          } else {
            dispatch_floating(g.dtype(), Op::name, [&](auto tag) {
              using T = decltype(tag);
              if (which == 0)
                cpu_map<T, T, T, T, T>(
                    out, [op](T u, T v, T w, T d) { return op.grad_a(u, v, w, d); }, as, bs, ys, g);
              else
                cpu_map<T, T, T, T, T>(
                    out, [op](T u, T v, T w, T d) { return op.grad_b(u, v, w, d); }, as, bs, ys, g);
            });
          }
          (which == 0 ? ga : gb) = out;
        }
        return {ga, gb};  // the engine sums broadcast dims back to each input's shape
      });
  return y;
}

// A 0-D tensor holding `v` in t's dtype and device: how scalars enter binary ops.
Tensor scalar_like(const Tensor& t, double v);

}  // namespace evit
