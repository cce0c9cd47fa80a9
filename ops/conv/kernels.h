// Internal: convolution geometry and the CPU kernels behind conv2d / conv_transpose2d.
// All pointers are contiguous NCHW / [O, C/groups, kH, kW] buffers of T (float or double).
#pragma once
#include <cstdint>

#include "ops/activation.h"

namespace evit::conv {

struct Geom {
  int64_t N = 0, C = 0, H = 0, W = 0;  // convolution input
  int64_t O = 0, OH = 0, OW = 0;       // convolution output
  int64_t KH = 1, KW = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  int64_t Cg() const { return C / groups; }
  int64_t Og() const { return O / groups; }
  int64_t KK() const { return KH * KW; }
  // 1×1, stride 1, no padding: the input itself is the column matrix.
  bool pointwise() const { return KH == 1 && KW == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
  bool depthwise() const { return groups == C && O == C; }
  // The window settings shared by conv2d and conv_transpose2d.
  void set_window(int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                  int64_t dil_h, int64_t dil_w, int64_t g) {
    KH = kh, KW = kw, sh = stride_h, sw = stride_w, ph = pad_h, pw = pad_w, dh = dil_h, dw = dil_w, groups = g;
  }
};

// GEMM path (any geometry). y, dx, dw are fully written. The forward applies `act` to each block of
// y as soon as it is final, then adds the residual's block (same layout as y; may be null):
// conv2d_act.
template <class T>
void gemm_forward(const Geom& g, const T* x, const T* w, const T* bias, T* y, ActivationKind act = ActivationKind::none,
                  const T* residual = nullptr);
template <class T> void gemm_backward_input(const Geom& g, const T* dy, const T* w, T* dx);
template <class T> void gemm_backward_weight(const Geom& g, const T* x, const T* dy, T* dw);
// Both gradients of the GEMM path (either pointer may be null): the two functions above, with
// the work they would each repeat (regrouping dy for a batch of small images) done once.
template <class T> void gemm_backward(const Geom& g, const T* x, const T* dy, const T* w, T* dx, T* dw);

// Whether the GEMM path runs a 1×1 convolution's per-image, per-group products (each M x N x K)
// side by side on the pool, each whole on one thread (gemm_path.cpp explains when and why).
bool products_side_by_side(const Geom& g, int64_t M, int64_t N, int64_t K);

// Depthwise path (g.depthwise()). dx / dw may be null (not needed).
template <class T>
void depthwise_forward(const Geom& g, const T* x, const T* w, const T* bias, T* y,
                       ActivationKind act = ActivationKind::none);
template <class T>
void depthwise_backward(const Geom& g, const T* x, const T* w, const T* dy, T* dx, T* dw);
// Output rows [oh0, oh0 + rows) of one image's depthwise convolution (g.N is ignored), on the
// calling thread: x holds image rows [r0, r0 + nrows) of every channel (channel c's rows at
// x + c·x_cstride, W apart; the rows the window reaches outside them must be outside the image),
// y receives channel c's rows·OW outputs at y + c·y_cstride.
template <class T>
void depthwise_rows(const Geom& g, const T* x, int64_t x_cstride, int64_t r0, int64_t nrows, int64_t oh0,
                    int64_t rows, const T* w, const T* bias, T* y, int64_t y_cstride, ActivationKind act);

// Direct path for dense convolutions with few input channels (few_channels(g): groups == 1,
// C <= kMaxFewChannels, a kernel larger than 1×1 — the RGB stem): the forward and the weight
// gradient (dw fully written); the input gradient takes the GEMM path.
constexpr int64_t kMaxFewChannels = 4;
bool few_channels(const Geom& g);
template <class T>
void few_channels_forward(const Geom& g, const T* x, const T* w, const T* bias, T* y,
                          ActivationKind act = ActivationKind::none);
template <class T> void few_channels_backward_weight(const Geom& g, const T* x, const T* dy, T* dw);

// db[c] = sum over n and the plane of dy [N, C, HW] (fixed order).
template <class T> void bias_backward(int64_t N, int64_t C, int64_t HW, const T* dy, T* db);
// y[n, c, :] += bias[c].
template <class T> void add_bias(int64_t N, int64_t C, int64_t HW, const T* bias, T* y);

}  // namespace evit::conv
