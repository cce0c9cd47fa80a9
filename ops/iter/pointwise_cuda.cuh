// CUDA side of the generic pointwise ops (ops/iter/pointwise.h): kernels built from the same
// functors as the CPU path, and one-line registration per functor:
//
//   EVIT_CUDA_UNARY(ReluOp);      // forward + backward
//   EVIT_CUDA_BINARY(MulOp);      // forward + grad_a/grad_b
//   EVIT_CUDA_BINARY_FORWARD(AddOp);  // forward only (add, sub, comparisons, in-place updates)
//
// Include only from .cu files.
#pragma once
#include "core/cuda/elementwise.cuh"
#include "ops/iter/pointwise.h"

namespace evit::cuda {

template <class Op, class T>
struct UnaryForwardFn {
  Op op;
  __device__ T operator()(T x) const { return op.template forward<T>(x); }
};
template <class Op, class T>
struct UnaryBackwardFn {
  Op op;
  __device__ T operator()(T x, T y, T g) const { return op.template backward<T>(x, y, g); }
};
template <class Op, class T, class Out>
struct BinaryForwardFn {
  Op op;
  __device__ Out operator()(T a, T b) const { return op.template forward<T>(a, b); }
};
template <class Op, class T>
struct BinaryGradFn {
  Op op;
  int which;
  __device__ T operator()(T a, T b, T y, T g) const {
    return which == 0 ? op.template grad_a<T>(a, b, y, g) : op.template grad_b<T>(a, b, y, g);
  }
};

template <class Op>
void unary_forward(const Tensor& y, const Tensor& x, const Op& op) {
  dispatch_floating(x.dtype(), Op::name, [&](auto tag) {
    using T = decltype(tag);
    cuda_map<T, T>(y, UnaryForwardFn<Op, T>{op}, x);
  });
}

template <class Op>
void unary_backward(const Tensor& gx, const Tensor& x, const Tensor& y, const Tensor& g, const Op& op) {
  dispatch_floating(g.dtype(), Op::backward_name, [&](auto tag) {
    using T = decltype(tag);
    cuda_map<T, T, T, T>(gx, UnaryBackwardFn<Op, T>{op}, x, y, g);
  });
}

template <class Op>
void binary_forward(const Tensor& y, const Tensor& a, const Tensor& b, const Op& op) {
  if constexpr (is_comparison_op<Op>) {
    dispatch_all(a.dtype(), Op::name, [&](auto tag) {
      using T = decltype(tag);
      cuda_map<bool, T, T>(y, BinaryForwardFn<Op, T, bool>{op}, a, b);
    });
  } else {
    dispatch_numeric(a.dtype(), Op::name, [&](auto tag) {
      using T = decltype(tag);
      cuda_map<T, T, T>(y, BinaryForwardFn<Op, T, T>{op}, a, b);
    });
  }
}

template <class Op>
void binary_backward(const Tensor& out, int which, const Tensor& a, const Tensor& b,
                     const Tensor& y, const Tensor& g, const Op& op) {
  dispatch_floating(g.dtype(), Op::backward_name, [&](auto tag) {
    using T = decltype(tag);
    cuda_map<T, T, T, T, T>(out, BinaryGradFn<Op, T>{op, which}, a, b, y, g);
  });
}

}  // namespace evit::cuda

#define EVIT_CUDA_UNARY(Op)                                                             \
  EVIT_REGISTER_CUDA_KERNEL(::evit::cuda_unary_forward<Op>(), ::evit::cuda::unary_forward<Op>); \
  EVIT_REGISTER_CUDA_KERNEL(::evit::cuda_unary_backward<Op>(), ::evit::cuda::unary_backward<Op>)
#define EVIT_CUDA_BINARY_FORWARD(Op) \
  EVIT_REGISTER_CUDA_KERNEL(::evit::cuda_binary_forward<Op>(), ::evit::cuda::binary_forward<Op>)
#define EVIT_CUDA_BINARY(Op)        \
  EVIT_CUDA_BINARY_FORWARD(Op);     \
  EVIT_REGISTER_CUDA_KERNEL(::evit::cuda_binary_backward<Op>(), ::evit::cuda::binary_backward<Op>)
