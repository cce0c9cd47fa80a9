// conv2d and conv_transpose2d: argument checks, path choice, autograd.
//
// conv_transpose2d is the adjoint of conv2d with the same weight layout read as
// [O = C_in, C_out/groups, kH, kW]: its forward is conv2d's input-gradient kernel (GEMM +
// col2im), its input gradient is conv2d's forward, and its weight gradient is conv2d's weight
// gradient with the roles of input and output swapped.
//
// CUDA tensors take the twins in ops/conv/cuda_slots.h (same paths). Under autocast the GEMM
// paths (not depthwise) read f16/bf16 copies of their operands and write f32; the choice is made
// in the forward and captured by the backward.
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/conv.h"
#include "ops/conv/cuda_slots.h"
#include "ops/conv/kernels.h"
#include "ops/linalg/common.h"
#include "ops/pointwise.h"

namespace evit {
namespace {

void check_common(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias,
                  const Pair2& stride, const Pair2& padding, const Pair2& dilation,
                  int64_t groups) {
  EVIT_CHECK(x.dim() == 4, op, ": input must be 4-D [N,C,H,W], got ", x.desc());
  EVIT_CHECK(w.dim() == 4, op, ": weight must be 4-D, got ", w.desc());
  EVIT_CHECK(is_floating(x.dtype()), op, ": expected a floating dtype (f32 or f64), got ",
             x.desc());
  EVIT_CHECK(x.dtype() == w.dtype(), op, ": dtypes differ: input ", x.desc(), ", weight ",
             w.desc());
  EVIT_CHECK(x.device() == w.device(), op, ": input and weight on different devices: ",
             x.device().str(), " and ", w.device().str());
  EVIT_CHECK(x.device().is_cpu() || x.device().is_cuda(), op, ": no ", x.device().str(),
             " kernel in this build");
  EVIT_CHECK(groups >= 1, op, ": groups must be >= 1, got ", groups);
  EVIT_CHECK(stride.h >= 1 && stride.w >= 1, op, ": stride must be >= 1, got (", stride.h, ",",
             stride.w, ")");
  EVIT_CHECK(dilation.h >= 1 && dilation.w >= 1, op, ": dilation must be >= 1, got (",
             dilation.h, ",", dilation.w, ")");
  EVIT_CHECK(padding.h >= 0 && padding.w >= 0, op, ": padding must be >= 0, got (", padding.h,
             ",", padding.w, ")");
  if (bias.defined()) {
    EVIT_CHECK(bias.dtype() == x.dtype(), op, ": bias dtype differs: ", bias.desc(), " vs input ",
               x.desc());
    EVIT_CHECK(bias.device() == x.device(), op, ": bias on ", bias.device().str(), ", input on ",
               x.device().str());
  }
}

template <class F>
void dispatch(DType t, const char* op, F&& f) {
  dispatch_floating(t, op, std::forward<F>(f));
}

// The checked geometry of conv2d(x_in, w_in, bias_in, ...).
conv::Geom conv2d_geom(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, Pair2 stride, Pair2 padding,
                       Pair2 dilation, int64_t groups) {
  check_common("conv2d", x_in, w_in, bias_in, stride, padding, dilation, groups);
  conv::Geom g;
  g.N = x_in.size(0);
  g.C = x_in.size(1);
  g.H = x_in.size(2);
  g.W = x_in.size(3);
  g.O = w_in.size(0);
  g.set_window(w_in.size(2), w_in.size(3), stride.h, stride.w, padding.h, padding.w, dilation.h, dilation.w, groups);
  EVIT_CHECK(g.C % groups == 0, "conv2d: input channels ", g.C, " not divisible by groups ",
             groups, " (input ", x_in.desc(), ")");
  EVIT_CHECK(g.O % groups == 0, "conv2d: output channels ", g.O, " not divisible by groups ",
             groups, " (weight ", w_in.desc(), ")");
  EVIT_CHECK(w_in.size(1) * groups == g.C, "conv2d: weight expects ", w_in.size(1) * groups,
             " input channels (with groups=", groups, "), input has ", g.C, " (input ",
             x_in.desc(), ", weight ", w_in.desc(), ")");
  EVIT_CHECK(g.KH >= 1 && g.KW >= 1, "conv2d: empty kernel ", w_in.desc());
  if (bias_in.defined())
    EVIT_CHECK(bias_in.dim() == 1 && bias_in.size(0) == g.O, "conv2d: bias must be [", g.O,
               "], got ", bias_in.desc());
  const int64_t eff_h = g.H + 2 * g.ph - g.dh * (g.KH - 1);
  const int64_t eff_w = g.W + 2 * g.pw - g.dw * (g.KW - 1);
  EVIT_CHECK(eff_h >= 1 && eff_w >= 1, "conv2d: input ", x_in.desc(), " (padded by (", g.ph, ",",
             g.pw, ")) is smaller than the dilated kernel ", w_in.desc());
  g.OH = (eff_h - 1) / g.sh + 1;
  g.OW = (eff_w - 1) / g.sw + 1;
  return g;
}

// y = act(conv2d) [+ residual] on the CPU, by the path the geometry takes; x, w, bias and the
// residual (undefined, or y's shape) contiguous. The GEMM path adds the residual in its
// epilogue; the direct kernels (no residual block in the model zoo ends in one) in a pass after.
void cpu_forward(const conv::Geom& g, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y,
                 ActivationKind act, const Tensor& residual = Tensor()) {
  dispatch(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    const T *xp = x.data_ptr<T>(), *wp = w.data_ptr<T>(), *bp = bias.data_ptr_or_null<T>();
    T* yp = y.data_ptr<T>();
    if (!g.depthwise() && !conv::few_channels(g))
      return conv::gemm_forward<T>(g, xp, wp, bp, yp, act, residual.data_ptr_or_null<T>());
    if (g.depthwise())
      conv::depthwise_forward<T>(g, xp, wp, bp, yp, act);
    else
      conv::few_channels_forward<T>(g, xp, wp, bp, yp, act);
    if (residual.defined()) add_(y, residual);
  });
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, Pair2 stride,
              Pair2 padding, Pair2 dilation, int64_t groups) {
  const conv::Geom g = conv2d_geom(x_in, w_in, bias_in, stride, padding, dilation, groups);
  Tensor x = x_in.contiguous(), w = w_in.contiguous();
  Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  Tensor y = empty({g.N, g.O, g.OH, g.OW}, {x.dtype(), x.device()});
  const bool dwise = g.depthwise();
  const std::optional<DType> ac = dwise ? std::nullopt : detail::gemm_autocast(x);
  if (x.device().is_cuda()) {
    if (dwise)
      conv_depthwise_forward_cuda(g, x, w, bias, y);
    else
      conv_gemm_forward_cuda(g, detail::gemm_operand(x, ac), detail::gemm_operand(w, ac), bias, y);
  } else cpu_forward(g, x, w, bias, y, ActivationKind::none);
  autograd::record(
      dwise ? "DepthwiseConv2dBackward" : "Conv2dBackward", {x_in, w_in, bias_in}, {y}, {x, w},
      [g, dwise, ac](const BackwardContext& ctx) -> std::vector<Tensor> {
        Tensor gy = ctx.grad_output(0).contiguous();
        const Tensor& x = ctx.saved(0);
        const Tensor& w = ctx.saved(1);
        Tensor gx, gw, gb;
        if (ctx.needs_input_grad(0)) gx = empty(x.sizes(), {x.dtype(), x.device()});
        if (ctx.needs_input_grad(1)) gw = empty(w.sizes(), {w.dtype(), w.device()});
        if (ctx.needs_input_grad(2)) gb = empty({g.O}, {gy.dtype(), gy.device()});
        if (gy.device().is_cuda()) {
          if (dwise) {
            if (gx.defined() || gw.defined()) conv_depthwise_backward_cuda(g, x, w, gy, gx, gw);
          } else {
            const Tensor gyc = detail::gemm_operand(gy, ac);
            if (gx.defined()) conv_gemm_backward_input_cuda(g, gyc, detail::gemm_operand(w, ac), gx);
            if (gw.defined()) conv_gemm_backward_weight_cuda(g, detail::gemm_operand(x, ac), gyc, gw);
          }
          if (gb.defined()) conv_bias_backward_cuda(g.N, g.O, g.OH * g.OW, gy, gb);
          return {gx, gw, gb};
        }
        dispatch(gy.dtype(), "conv2d", [&](auto tag) {
          using T = decltype(tag);
          if (dwise) {
            if (gx.defined() || gw.defined())
              conv::depthwise_backward<T>(g, x.data_ptr<T>(), w.data_ptr<T>(), gy.data_ptr<T>(),
                                          gx.data_ptr_or_null<T>(), gw.data_ptr_or_null<T>());
          } else if (conv::few_channels(g)) {
            if (gx.defined()) conv::gemm_backward_input<T>(g, gy.data_ptr<T>(), w.data_ptr<T>(), gx.data_ptr<T>());
            if (gw.defined())
              conv::few_channels_backward_weight<T>(g, x.data_ptr<T>(), gy.data_ptr<T>(), gw.data_ptr<T>());
          } else {
            conv::gemm_backward<T>(g, x.data_ptr<T>(), gy.data_ptr<T>(), w.data_ptr<T>(), gx.data_ptr_or_null<T>(),
                                   gw.data_ptr_or_null<T>());
          }
          if (gb.defined())
            conv::bias_backward<T>(g.N, g.O, g.OH * g.OW, gy.data_ptr<T>(), gb.data_ptr<T>());
        });
        return {gx, gw, gb};
      });
  return y;
}

Tensor conv2d_act(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, Pair2 stride, Pair2 padding,
                  Pair2 dilation, int64_t groups, ActivationKind act, const Tensor& residual) {
  const bool has_residual = residual.defined();
  const bool records = GradMode::is_enabled() &&
                       (x_in.requires_grad() || w_in.requires_grad() || (bias_in.defined() && bias_in.requires_grad()) ||
                        (has_residual && residual.requires_grad()));
  if ((act == ActivationKind::none && !has_residual) || records || !x_in.device().is_cpu()) {
    Tensor y = apply_activation(conv2d(x_in, w_in, bias_in, stride, padding, dilation, groups), act);
    return has_residual ? add(y, residual) : y;
  }
  const conv::Geom g = conv2d_geom(x_in, w_in, bias_in, stride, padding, dilation, groups);
  const Shape out{g.N, g.O, g.OH, g.OW};
  if (has_residual)
    EVIT_CHECK(residual.sizes() == out && residual.dtype() == x_in.dtype() && residual.device() == x_in.device(),
               "conv2d_act: residual ", residual.desc(), " must match the output ", dtype_name(x_in.dtype()), " ",
               shape_str(out));
  const Tensor x = x_in.contiguous(), w = w_in.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  const Tensor r = has_residual ? residual.contiguous() : Tensor();
  Tensor y = empty(out, {x.dtype(), x.device()});
  cpu_forward(g, x, w, bias, y, act, r);
  return y;
}

Tensor conv_transpose2d(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in,
                        Pair2 stride, Pair2 padding, Pair2 output_padding, int64_t groups,
                        Pair2 dilation) {
  const char* op = "conv_transpose2d";
  check_common(op, x_in, w_in, bias_in, stride, padding, dilation, groups);
  EVIT_CHECK(output_padding.h >= 0 && output_padding.w >= 0 &&
                 output_padding.h < std::max(stride.h, dilation.h) &&
                 output_padding.w < std::max(stride.w, dilation.w),
             op, ": output_padding (", output_padding.h, ",", output_padding.w,
             ") must be >= 0 and smaller than stride or dilation");
  const int64_t cin = x_in.size(1);
  EVIT_CHECK(w_in.size(0) == cin, op, ": weight ", w_in.desc(), " expects ", w_in.size(0),
             " input channels, input has ", cin, " (input ", x_in.desc(), ")");
  EVIT_CHECK(cin % groups == 0, op, ": input channels ", cin, " not divisible by groups ", groups);
  // The convolution whose adjoint this is: its input is our output and vice versa.
  conv::Geom g;
  g.N = x_in.size(0);
  g.O = cin;
  g.OH = x_in.size(2);
  g.OW = x_in.size(3);
  g.C = w_in.size(1) * groups;
  g.set_window(w_in.size(2), w_in.size(3), stride.h, stride.w, padding.h, padding.w, dilation.h, dilation.w, groups);
  g.H = (g.OH - 1) * g.sh - 2 * g.ph + g.dh * (g.KH - 1) + output_padding.h + 1;
  g.W = (g.OW - 1) * g.sw - 2 * g.pw + g.dw * (g.KW - 1) + output_padding.w + 1;
  EVIT_CHECK(g.H >= 1 && g.W >= 1, op, ": output size (", g.H, ",", g.W,
             ") is not positive for input ", x_in.desc(), " and weight ", w_in.desc());
  if (bias_in.defined())
    EVIT_CHECK(bias_in.dim() == 1 && bias_in.size(0) == g.C, op, ": bias must be [", g.C,
               "], got ", bias_in.desc());

  Tensor x = x_in.contiguous(), w = w_in.contiguous();
  Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  Tensor y = empty({g.N, g.C, g.H, g.W}, {x.dtype(), x.device()});
  const std::optional<DType> ac = detail::gemm_autocast(x);
  if (x.device().is_cuda()) {
    conv_gemm_backward_input_cuda(g, detail::gemm_operand(x, ac), detail::gemm_operand(w, ac), y);
    if (bias.defined()) conv_add_bias_cuda(g.N, g.C, g.H * g.W, bias, y);
  } else dispatch(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    conv::gemm_backward_input<T>(g, x.data_ptr<T>(), w.data_ptr<T>(), y.data_ptr<T>());
    if (bias.defined()) conv::add_bias<T>(g.N, g.C, g.H * g.W, bias.data_ptr<T>(), y.data_ptr<T>());
  });
  autograd::record(
      "ConvTranspose2dBackward", {x_in, w_in, bias_in}, {y}, {x, w},
      [g, ac](const BackwardContext& ctx) -> std::vector<Tensor> {
        Tensor gy = ctx.grad_output(0).contiguous();
        const Tensor& x = ctx.saved(0);
        const Tensor& w = ctx.saved(1);
        Tensor gx, gw, gb;
        if (gy.device().is_cuda()) {
          const Tensor gyc = detail::gemm_operand(gy, ac);
          if (ctx.needs_input_grad(0)) {
            gx = empty(x.sizes(), {x.dtype(), x.device()});
            conv_gemm_forward_cuda(g, gyc, detail::gemm_operand(w, ac), Tensor(), gx);
          }
          if (ctx.needs_input_grad(1)) {
            gw = empty(w.sizes(), {w.dtype(), w.device()});
            conv_gemm_backward_weight_cuda(g, gyc, detail::gemm_operand(x, ac), gw);
          }
          if (ctx.needs_input_grad(2)) {
            gb = empty({g.C}, {gy.dtype(), gy.device()});
            conv_bias_backward_cuda(g.N, g.C, g.H * g.W, gy, gb);
          }
          return {gx, gw, gb};
        }
        dispatch(gy.dtype(), "conv_transpose2d", [&](auto tag) {
          using T = decltype(tag);
          if (ctx.needs_input_grad(0)) {
            gx = empty(x.sizes(), {x.dtype(), x.device()});
            conv::gemm_forward<T>(g, gy.data_ptr<T>(), w.data_ptr<T>(), nullptr, gx.data_ptr<T>());
          }
          if (ctx.needs_input_grad(1)) {
            gw = empty(w.sizes(), {w.dtype(), w.device()});
            conv::gemm_backward_weight<T>(g, gy.data_ptr<T>(), x.data_ptr<T>(), gw.data_ptr<T>());
          }
          if (ctx.needs_input_grad(2)) {
            gb = empty({g.C}, {gy.dtype(), gy.device()});
            conv::bias_backward<T>(g.N, g.C, g.H * g.W, gy.data_ptr<T>(), gb.data_ptr<T>());
          }
        });
        return {gx, gw, gb};
      });
  return y;
}

}  // namespace evit
