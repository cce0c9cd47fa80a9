// linear: y = x · wᵀ + b as one GEMM over the flattened rows of x.
//
// The bias is written into y first and the GEMM accumulates onto it (beta = 1): no extra pass.
// w goes to BLAS with a transpose flag (a transposed w view is used as is). Backward:
// dx = dy · w, dw = dyᵀ · x (GEMMs), db = column sums of dy in a fixed row order.
// On CUDA the GEMMs go to cuBLAS (ops/linalg/cuda_slots.h) with the same layouts; under autocast
// they read f16/bf16 copies of x, w and dy and write f32 (decided in the forward, captured by
// the backward).
#include "autograd/node.h"
#include "core/copy.h"
#include "core/parallel.h"
#include "ops/linalg.h"
#include "ops/linalg/common.h"
#include "ops/linalg/cuda_slots.h"
#include "ops/linalg/gemm.h"
#include "ops/pointwise.h"
#include "ops/shape.h"

namespace evit {
namespace {

// CPU forward: y [R, out] = x [R, in] · wᵀ + bias, the bias written first and the GEMM adding onto
// it (beta = 1); with no input features every row is the bias (zeros without one).
template <class T>
void linear_forward_cpu(const Tensor& x, const Tensor& w, const Tensor& bias_t, const Tensor& y,
                        int64_t R, int64_t in, int64_t out) {
  const T* bias = bias_t.data_ptr_or_null<T>();
  T* py = y.data_ptr<T>();
  if (in == 0) {
    for (int64_t r = 0; r < R; ++r)
      for (int64_t o = 0; o < out; ++o) py[r * out + o] = bias ? bias[o] : T(0);
    return;
  }
  // op(B) = wᵀ: a [in, out] matrix with strides (w.stride(1), w.stride(0)).
  detail::BlasMatrix mb = detail::blas_matrix(in, out, w.stride(1), w.stride(0));
  EVIT_INTERNAL_ASSERT(mb.ok);
  if (bias) {
    parallel_for(0, R, std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(out, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t r = b; r < e; ++r)
                     for (int64_t o = 0; o < out; ++o) py[r * out + o] = bias[o];
                 });
  }
  detail::gemm(false, mb.trans, R, out, in, T(1), x.data_ptr<T>(), in, w.data_ptr<T>(), mb.ld,
               bias ? T(1) : T(0), py, out);
}

// Column sums of g [R, out] (accumulated in double, rows in order): the bias gradient.
template <class T>
void column_sums(const T* g, T* db, int64_t R, int64_t out) {
  constexpr int64_t kCols = 64;
  parallel_for(0, out, kCols, [&](int64_t b, int64_t e) {
    double acc[kCols] = {};
    for (int64_t r = 0; r < R; ++r)
      for (int64_t o = b; o < e; ++o) acc[o - b] += g[r * out + o];
    for (int64_t o = b; o < e; ++o) db[o] = static_cast<T>(acc[o - b]);
  });
}

// y [R, out] (bias already written when beta = 1) += x [R, in] · wᵀ on CUDA.
void linear_forward_cuda(const Tensor& x, const Tensor& w, const Tensor& y, int64_t R, int64_t in,
                         int64_t out, double beta) {
  detail::BlasMatrix mb = detail::blas_matrix(in, out, w.stride(1), w.stride(0));
  EVIT_INTERNAL_ASSERT(mb.ok);
  linalg_gemm_cuda(DeviceGemm::single(false, mb.trans, R, out, in, in, mb.ld, out, beta), x, w, y);
}

// CUDA backward: dx = g·w and dw = gᵀ·x as cuBLAS GEMMs (16-bit operands under autocast, as the
// forward chose), db as column sums of g.
std::vector<Tensor> linear_backward_cuda(const Tensor& g, const Tensor& x, const Tensor& w, std::optional<DType> ac,
                                         int64_t R, int64_t in, int64_t out, bool need_x, bool need_w, bool need_b) {
  Tensor gx, gw, gb;
  const Tensor gc = detail::gemm_operand(g, ac);
  if (need_x) {
    gx = empty(x.sizes(), {x.dtype(), x.device()});
    // dx[R, in] = g[R, out] · w[out, in] (out == 0: the GEMM writes zeros)
    const Tensor wc = detail::gemm_operand(w, ac);
    detail::BlasMatrix mw = detail::blas_matrix(out, in, wc.stride(0), wc.stride(1));
    EVIT_INTERNAL_ASSERT(mw.ok);
    linalg_gemm_cuda(DeviceGemm::single(false, mw.trans, R, in, out, out, mw.ld, in), gc, wc, gx);
  }
  if (need_w) {
    gw = empty({out, in}, {x.dtype(), x.device()});
    // dw[out, in] = gᵀ[out, R] · x[R, in] (R == 0: zeros)
    linalg_gemm_cuda(DeviceGemm::single(true, false, out, in, R, out, in, in), gc,
                     detail::gemm_operand(x, ac), gw);
  }
  if (need_b) {
    gb = empty({out}, {x.dtype(), x.device()});
    linalg_column_sums_cuda(reshape(g, {R, out}), gb);
  }
  return {gx, gw, gb};
}

// CPU backward: dx = g·w and dw = gᵀ·x through the deterministic GEMM driver, db as column sums
// of g in a fixed row order.
template <class T>
std::vector<Tensor> linear_backward_cpu(const Tensor& g, const Tensor& x, const Tensor& w, int64_t R, int64_t in,
                                        int64_t out, bool need_x, bool need_w, bool need_b) {
  Tensor gx, gw, gb;
  if (need_x) {
    gx = empty(x.sizes(), {x.dtype(), x.device()});
    // dx[R, in] = g[R, out] · w[out, in]
    detail::BlasMatrix mw = detail::blas_matrix(out, in, w.stride(0), w.stride(1));
    if (out == 0) fill_(gx, 0.0);
    else detail::gemm(false, mw.trans, R, in, out, T(1), g.data_ptr<T>(), out,
                 w.data_ptr<T>(), mw.ld, T(0), gx.data_ptr<T>(), in);
  }
  if (need_w) {
    gw = empty({out, in}, {x.dtype(), x.device()});
    // dw[out, in] = gᵀ[out, R] · x[R, in]
    if (R == 0) {
      fill_(gw, 0.0);
    } else {
      detail::gemm(true, false, out, in, R, T(1), g.data_ptr<T>(), out, x.data_ptr<T>(),
                   in, T(0), gw.data_ptr<T>(), in);
    }
  }
  if (need_b) {
    gb = empty({out}, {x.dtype(), x.device()});
    column_sums<T>(g.data_ptr<T>(), gb.data_ptr<T>(), R, out);
  }
  return {gx, gw, gb};
}

}  // namespace

Tensor linear(const Tensor& x_in, const Tensor& w_in, const Tensor& b) {
  EVIT_CHECK(x_in.dim() >= 1, "linear: input must have at least 1 dim, got ", x_in.desc());
  EVIT_CHECK(w_in.dim() == 2, "linear: weight must be 2-D [out, in], got ", w_in.desc());
  EVIT_CHECK(x_in.dtype() == w_in.dtype(), "linear: dtypes differ: input ", x_in.desc(),
             ", weight ", w_in.desc());
  EVIT_CHECK(is_floating(x_in.dtype()), "linear: expected a floating dtype (f32 or f64), got ",
             x_in.desc());
  EVIT_CHECK(x_in.device() == w_in.device() && (!b.defined() || b.device() == x_in.device()),
             "linear: tensors on different devices: input ", x_in.device().str(), ", weight ",
             w_in.device().str(), b.defined() ? ", bias " + b.device().str() : std::string());
  EVIT_CHECK(x_in.device().is_cpu() || x_in.device().is_cuda(), "linear: no ",
             x_in.device().str(), " kernel in this build");
  const int64_t in = w_in.size(1), out = w_in.size(0);
  EVIT_CHECK(x_in.size(-1) == in, "linear: input ", x_in.desc(), " has ", x_in.size(-1),
             " features, weight ", w_in.desc(), " expects ", in);
  if (b.defined()) {
    EVIT_CHECK(b.dim() == 1 && b.size(0) == out, "linear: bias must be [", out, "], got ",
               b.desc());
    EVIT_CHECK(b.dtype() == x_in.dtype(), "linear: bias dtype differs: ", b.desc());
  }
  Tensor x = x_in.contiguous();
  Tensor w = w_in;
  if (!detail::blas_matrix(in, out, w.stride(1), w.stride(0)).ok) {
    w = w.contiguous();
    detail::count_operand_copy();
  }
  Tensor bias = b.defined() ? b.contiguous() : Tensor();
  // Rows: the product of the leading dims (numel / in fails for in == 0).
  const int64_t R = shape_numel(Shape(x.sizes().begin(), x.sizes().end() - 1));
  Shape out_shape = x.sizes();
  out_shape.back() = out;
  Tensor y = empty(out_shape, {x.dtype(), x.device()});
  const std::optional<DType> ac = detail::gemm_autocast(x);
  if (x.device().is_cuda()) {
    if (bias.defined()) copy_elements(y, bias);  // broadcast over the rows; the GEMM adds onto it
    // in == 0: the GEMM only scales y by beta (0 without a bias: zeros).
    linear_forward_cuda(detail::gemm_operand(x, ac), detail::gemm_operand(w, ac), y, R, in, out,
                        bias.defined() ? 1.0 : 0.0);
  } else {
    dispatch_floating(x.dtype(), "linear", [&](auto tag) {
      linear_forward_cpu<decltype(tag)>(x, w, bias, y, R, in, out);
    });
  }
  autograd::record(
      "LinearBackward", {x_in, w_in, b}, {y}, {x, w},
      [R, in, out, ac](const BackwardContext& ctx) -> std::vector<Tensor> {
        Tensor g = ctx.grad_output(0).contiguous();
        const Tensor& x = ctx.saved(0);
        const Tensor& w = ctx.saved(1);
        const bool need_x = ctx.needs_input_grad(0), need_w = ctx.needs_input_grad(1), need_b = ctx.needs_input_grad(2);
        if (g.device().is_cuda()) return linear_backward_cuda(g, x, w, ac, R, in, out, need_x, need_w, need_b);
        std::vector<Tensor> grads;
        dispatch_floating(g.dtype(), "linear", [&](auto tag) {
          grads = linear_backward_cpu<decltype(tag)>(g, x, w, R, in, out, need_x, need_w, need_b);
        });
        return grads;
      });
  return y;
}

}  // namespace evit
