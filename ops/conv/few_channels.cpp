// Dense convolution with few input channels (groups == 1, C <= kMaxFewChannels, a kernel larger
// than 1×1): the stem of every EfficientViT (RGB -> 8..32 channels, 3×3, stride 2), forward only.
//
// As a GEMM this product has a depth of C·KH·KW = 27 and only 8..32 rows: im2col writes 27 values
// per output position and the GEMM reads them back, so the stem of a 512×1024 image ran at ~24
// GFLOP/s on 2 threads, 5% of seg-B1's inference. Here the C input planes of a strip of output
// rows are copied into padded, phase-split buffers (plane_buffer.h) and every output value is
// computed from them in registers: a block of two vectors of outputs, for OG output channels at
// once, reads each tap's run once and feeds it to OG accumulator pairs.
//
// Each output is the same fixed-order sum, bias and activation wherever the strips fall, so the
// result does not depend on the thread count. The weight gradient reads the same strip buffers:
// per image and strip, one dot product of dy with each tap's runs, the partials summed over the
// strips in order. The input gradient (the stem's input never needs one) takes the GEMM path.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "core/scratch.h"
#include "ops/conv/kernels.h"
#include "ops/conv/plane_buffer.h"
#include "ops/pointwise/activation_functor.h"

namespace evit::conv {
namespace {
using namespace plane;

// Output channels computed together: OG accumulator pairs plus the two input blocks stay in
// registers (AVX-512: 16 + 2 of 32; AVX2: 8 + 2 of 16), and each input block loaded serves OG
// channels.
constexpr int64_t kChannelGroup = kVectorRegisters / 4;
// Multiply-adds per strip of output rows (one parallel task): enough to hide the task's start,
// small enough that the strip's input rows stay in L2.
constexpr int64_t kStripMacs = int64_t{1} << 20;

// One output row of OG consecutive output channels (w, bias and y start at the first of them;
// bufs at the row's first buffer row of channel 0, channel c's cstride further on):
//   y[k·plane + ow] = act(b[k] + Σ_c Σ_t w[k][c][t] · buf_c[off[t] + ow]),
// in blocks of two vectors; writes only ow < OW.
template <class T, int OG, class Act>
void channel_rows(const T* bufs, int64_t cstride, const int64_t* off, int64_t C, int64_t KK,
                  const T* w, const T* bias, int64_t OW, T* y, int64_t plane, Act fn) {
  using V = typename Simd<T>::v;
  constexpr int L = Simd<T>::N;
  constexpr bool kAct = !std::is_same_v<Act, NoActivation>;
  const int64_t CKK = C * KK;
  for (int64_t o = 0; o < OW; o += 2 * L) {
    V a0[OG], a1[OG];
    for (int k = 0; k < OG; ++k) a0[k] = a1[k] = V{};
    for (int64_t c = 0; c < C; ++c) {
      const T* base = bufs + c * cstride + o;
      const T* wc = w + c * KK;
      for (int64_t t = 0; t < KK; ++t) {
        const V x0 = vload(base + off[t]), x1 = vload(base + off[t] + L);
#pragma GCC unroll 8
        for (int k = 0; k < OG; ++k) {
          const T wk = wc[k * CKK + t];
          a0[k] += wk * x0;
          a1[k] += wk * x1;
        }
      }
    }
    const int64_t m = std::min<int64_t>(2 * L, OW - o);
    for (int k = 0; k < OG; ++k) {
      const T b = bias ? bias[k] : T(0);
      T tmp[2 * L];
      vstore(tmp, a0[k] + b);
      vstore(tmp + L, a1[k] + b);
      T* row = y + k * plane + o;
      for (int64_t l = 0; l < m; ++l) {
        if constexpr (kAct)
          row[l] = fn.forward(tmp[l]);
        else
          row[l] = tmp[l];
      }
    }
  }
}

// The strips of output rows: a strip's multiply-adds near kStripMacs.
int64_t strip_rows(const Geom& g) {
  const int64_t row_macs = std::max<int64_t>(1, g.O * g.C * g.KK() * g.OW);
  return std::clamp<int64_t>(kStripMacs / row_macs, 1, g.OH);
}

// The buffers of image n's C input planes for output rows [oh0, oh0 + rows): buffer row r
// holds source row oh0·sh - ph + r (top = ph - oh0·sh); build leaves the rows and columns
// outside the image at the buffer's zeros.
template <class T>
Layout build_strip(const Geom& g, const T* x, int64_t n, int64_t oh0, int64_t rows, size_t cstride, T* bufs) {
  const Layout L = make_layout(g.W, rows, g.OW, g.KH, g.KW, g.sh, g.sw, g.dh, g.dw, g.ph - oh0 * g.sh, g.pw, kV<T>);
  for (int64_t c = 0; c < g.C; ++c) build(x + (n * g.C + c) * g.H * g.W, g.H, g.W, L, bufs + c * cstride);
  return L;
}

}  // namespace

bool few_channels(const Geom& g) { return g.groups == 1 && g.C <= kMaxFewChannels && g.KK() > 1 && g.O > 0; }

template <class T>
void few_channels_forward(const Geom& g, const T* x, const T* w, const T* bias, T* y, ActivationKind act) {
  const int64_t KK = g.KK(), OHW = g.OH * g.OW;
  const int64_t strip = strip_rows(g), strips = (g.OH + strip - 1) / strip;
  // The layout of a full strip; a shorter last strip uses the same row stride and columns.
  const Layout full = make_layout(g.W, strip, g.OW, g.KH, g.KW, g.sh, g.sw, g.dh, g.dw, 0, g.pw, kV<T>);
  const std::vector<int64_t> off = tap_offsets(full, g.KH, g.KW, g.dh, g.dw);
  with_activation_functor(act, [&](auto fn) {
    parallel_for(0, g.N * strips, 1, [&](int64_t b, int64_t e) {
      for (int64_t task = b; task < e; ++task) {
        const int64_t n = task / strips, oh0 = (task % strips) * strip;
        const int64_t rows = std::min(strip, g.OH - oh0);
        Scratch<T> bufs(g.C * full.alloc, T(0));
        const Layout L = build_strip(g, x, n, oh0, rows, full.alloc, bufs.data());
        T* yn = y + n * g.O * OHW;
        for (int64_t r = 0; r < rows; ++r) {
          const T* rowbufs = bufs.data() + r * g.sh * L.RS;
          T* yr = yn + (oh0 + r) * g.OW;
          int64_t o = 0;
          for (; o + kChannelGroup <= g.O; o += kChannelGroup)
            channel_rows<T, kChannelGroup>(rowbufs, full.alloc, off.data(), g.C, KK, w + o * g.C * KK,
                                           bias ? bias + o : nullptr, g.OW, yr + o * OHW, OHW, fn);
          for (; o < g.O; ++o)
            channel_rows<T, 1>(rowbufs, full.alloc, off.data(), g.C, KK, w + o * g.C * KK,
                               bias ? bias + o : nullptr, g.OW, yr + o * OHW, OHW, fn);
        }
      }
    });
  });
}

template <class T>
void few_channels_backward_weight(const Geom& g, const T* x, const T* dy, T* dw) {
  const int64_t KK = g.KK(), CKK = g.C * KK, OHW = g.OH * g.OW;
  const int64_t OWp = round_up(std::max<int64_t>(g.OW, 1), kV<T>);
  const int64_t strip = strip_rows(g), strips = (g.OH + strip - 1) / strip, tasks = g.N * strips;
  const Layout full = make_layout(g.W, strip, g.OW, g.KH, g.KW, g.sh, g.sw, g.dh, g.dw, 0, g.pw, kV<T>);
  const std::vector<int64_t> off = tap_offsets(full, g.KH, g.KW, g.dh, g.dw);
  std::vector<T> part(static_cast<size_t>(tasks * g.O * CKK));  // per (image, strip): summed in order below
  parallel_for(0, tasks, 1, [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t n = task / strips, oh0 = (task % strips) * strip, rows = std::min(strip, g.OH - oh0);
      Scratch<T> bufs(g.C * full.alloc, T(0)), dyp(rows * OWp, T(0));  // dy rows with zero tails
      const Layout L = build_strip(g, x, n, oh0, rows, full.alloc, bufs.data());
      for (int64_t o = 0; o < g.O; ++o) {
        const T* dyo = dy + (n * g.O + o) * OHW + oh0 * g.OW;
        for (int64_t r = 0; r < rows; ++r) std::copy(dyo + r * g.OW, dyo + (r + 1) * g.OW, dyp.data() + r * OWp);
        T* out = part.data() + (task * g.O + o) * CKK;
        for (int64_t c = 0; c < g.C; ++c)
          for (int64_t t = 0; t < KK; ++t)
            out[c * KK + t] = tap_dot(bufs.data() + c * full.alloc + off[t], g.sh * L.RS, dyp.data(), OWp, rows);
      }
    }
  });
  for (int64_t i = 0; i < g.O * CKK; ++i) {
    double acc = 0;
    for (int64_t task = 0; task < tasks; ++task) acc += part[task * g.O * CKK + i];
    dw[i] = static_cast<T>(acc);
  }
}

template void few_channels_forward<float>(const Geom&, const float*, const float*, const float*, float*,
                                          ActivationKind);
template void few_channels_forward<double>(const Geom&, const double*, const double*, const double*, double*,
                                           ActivationKind);

template void few_channels_backward_weight<float>(const Geom&, const float*, const float*, float*);
template void few_channels_backward_weight<double>(const Geom&, const double*, const double*, double*);

}  // namespace evit::conv
