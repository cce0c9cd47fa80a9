// Depthwise convolution (groups == C == O): direct kernels, parallel over (n, c) planes.
//
// Each plane is first copied into a zero-padded, phase-split buffer (plane_buffer.h), so that
// every tap of every output row reads a contiguous run of it and the inner loops are plain vector
// loops over the output width with no bounds checks.
//
// The row kernel keeps one accumulator block per kernel row (independent FMA chains) and is
// unrolled at compile time for 3×3, 5×5 and 7×7. A task zeroes its buffer once: each plane's
// copy writes only the plane's positions (whole vector blocks; a stride-2 row is split into its
// two phases by shuffles), so the padding stays zero from plane to plane.
// Backward: the input gradient for stride 1 is the same kernel run on the padded output gradient
// with the flipped kernel (a "full" correlation); for stride > 1 it is the exact adjoint of the
// forward (scatter into the phase buffer, then read back). The weight gradient is, per plane and
// tap, a dot product of the output gradient with the tap's run of the input buffer (a kernel
// row's taps in one pass over the output gradient for the unrolled sizes); per-plane
// partials are then summed over the batch in order (deterministic for any thread count).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "core/scratch.h"
#include "ops/conv/kernels.h"
#include "ops/conv/plane_buffer.h"
#include "ops/pointwise/activation_functor.h"

namespace evit::conv {
namespace {
using namespace plane;  // the padded plane buffer (plane_buffer.h)

// One output row: y[o] = b + Σ_t k[t] · base[off[t] + o], o < n, in blocks of two vectors.
// KH/KW > 0: unrolled, one accumulator pair per kernel row (independent dependency chains),
// summed in a fixed order. Reads may run up to one block past n (the buffers have slack).
template <class T, int KH, int KW>
void conv_row(const T* __restrict base, const int64_t* __restrict off, const T* __restrict k, T b,
              T* __restrict y, int64_t n, int64_t kk_rt) {
  using V = typename Simd<T>::v;
  constexpr int L = Simd<T>::N;
  for (int64_t o = 0; o < n; o += 2 * L) {
    V s0, s1;
    if constexpr (KH > 0) {
      V a0[KH], a1[KH];
#pragma GCC unroll 8
      for (int i = 0; i < KH; ++i) {
        a0[i] = V{};
        a1[i] = V{};
#pragma GCC unroll 8
        for (int j = 0; j < KW; ++j) {
          const T* p = base + off[i * KW + j] + o;
          const T kv = k[i * KW + j];
          a0[i] += kv * vload(p);
          a1[i] += kv * vload(p + L);
        }
      }
      s0 = b + a0[0];
      s1 = b + a1[0];
#pragma GCC unroll 8
      for (int i = 1; i < KH; ++i) {
        s0 += a0[i];
        s1 += a1[i];
      }
    } else {
      s0 = V{} + b;
      s1 = V{} + b;
      for (int64_t t = 0; t < kk_rt; ++t) {
        const T* p = base + off[t] + o;
        const T kv = k[t];
        s0 += kv * vload(p);
        s1 += kv * vload(p + L);
      }
    }
    const int64_t m = n - o;
    if (m >= 2 * L) {
      vstore(y + o, s0);
      vstore(y + o + L, s1);
    } else {
      T tmp[2 * L];
      vstore(tmp, s0);
      vstore(tmp + L, s1);
      for (int64_t l = 0; l < m; ++l) y[o + l] = tmp[l];
    }
  }
}

// With stride 1, output row oh reads the buffer from row oh on (row step RS), so the whole plane
// can run as ONE flat run of (OH - 1)·RS + OW positions: the RS - OW positions between two rows
// are computed and dropped. For the narrow planes of the late stages (7×7, 14×14: a row fills a
// fifth to a half of a two-vector block) that takes 2-2.5x fewer blocks than row by row. The
// flat run's length where it takes fewer blocks than the rows, else 0.
template <class T>
int64_t flat_run(int64_t OH, int64_t OW, int64_t RS, int64_t row_step) {
  constexpr int64_t B = 2 * Simd<T>::N;
  if (row_step != RS || OH < 2) return 0;
  const int64_t n = (OH - 1) * RS + OW;
  return (n + B - 1) / B < OH * ((OW + B - 1) / B) ? n : 0;
}

// The OH×OW output plane y = act(b + k ⋆ buf), buffer rows row_step apart: as one flat run
// through `flat` (flat_run elements, when nonzero: then row_step is the buffer's row stride) or
// row by row, the activation applied to each row while it is in L1. The same sums either way
// (one output's taps in the same order).
template <class T, int KH, int KW, class Act>
void conv_plane(const T* buf, int64_t row_step, const int64_t* off, const T* k, T b, T* y, int64_t OH, int64_t OW,
                int64_t KK, int64_t nflat, T* flat, Act fn) {
  constexpr bool kAct = !std::is_same_v<Act, NoActivation>;
  if (nflat > 0) {
    conv_row<T, KH, KW>(buf, off, k, b, flat, nflat, KK);
    for (int64_t oh = 0; oh < OH; ++oh) {
      const T* src = flat + oh * row_step;
      T* row = y + oh * OW;
      if constexpr (kAct)
        for (int64_t j = 0; j < OW; ++j) row[j] = fn.forward(src[j]);
      else
        copy_run(row, src, OW);
    }
    return;
  }
  for (int64_t oh = 0; oh < OH; ++oh) {
    T* row = y + oh * OW;
    conv_row<T, KH, KW>(buf + oh * row_step, off, k, b, row, OW, KK);
    if constexpr (kAct)
      for (int64_t j = 0; j < OW; ++j) row[j] = fn.forward(row[j]);
  }
}

// The KW taps of one kernel row at once: out[j] = Σ over rows and the padded width of
// d · x[off[j] + ...]. Each block of d is loaded once for all KW taps (tap_dot loads it once per
// tap); two accumulators per tap, combined in a fixed order.
template <class T, int KW>
void tap_row_dots(const T* __restrict x, const int64_t* __restrict off, int64_t row_step,
                  const T* __restrict d, int64_t OWp, int64_t OH, T* __restrict out) {
  using V = typename Simd<T>::v;
  constexpr int L = Simd<T>::N;
  V a0[KW], a1[KW];
  for (int j = 0; j < KW; ++j) a0[j] = a1[j] = V{};
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* xr = x + oh * row_step;
    const T* dr = d + oh * OWp;
    for (int64_t o = 0; o < OWp; o += 2 * L) {
      const V d0 = vload(dr + o), d1 = vload(dr + o + L);
#pragma GCC unroll 8
      for (int j = 0; j < KW; ++j) {
        a0[j] += d0 * vload(xr + off[j] + o);
        a1[j] += d1 * vload(xr + off[j] + o + L);
      }
    }
  }
  for (int j = 0; j < KW; ++j) {
    const V v = a0[j] + a1[j];
    T t = 0;
    for (int l = 0; l < L; ++l) t += v[l];
    out[j] = t;
  }
}

// dst[o] += a · src[o] for o < n (n a multiple of the block).
template <class T>
void axpy(T* __restrict dst, const T* __restrict src, T a, int64_t n) {
  constexpr int L = Simd<T>::N;
  for (int64_t o = 0; o < n; o += L) vstore(dst + o, vload(dst + o) + a * vload(src + o));
}

// Calls f with the compile-time kernel size for the common square kernels, (0, 0) otherwise.
template <class F>
void dispatch_kernel(int64_t KH, int64_t KW, F&& f) {
  if (KH == 3 && KW == 3) return f(std::integral_constant<int, 3>{}, std::integral_constant<int, 3>{});
  if (KH == 5 && KW == 5) return f(std::integral_constant<int, 5>{}, std::integral_constant<int, 5>{});
  if (KH == 7 && KW == 7) return f(std::integral_constant<int, 7>{}, std::integral_constant<int, 7>{});
  f(std::integral_constant<int, 0>{}, std::integral_constant<int, 0>{});
}

int64_t plane_grain(const Geom& g) {
  const int64_t work = g.KK() * std::max(g.H * g.W, g.OH * g.OW);
  return std::max<int64_t>(1, 131072 / std::max<int64_t>(work, 1));
}

}  // namespace

template <class T>
void depthwise_forward(const Geom& g, const T* x, const T* w, const T* bias, T* y, ActivationKind act) {
  const int64_t KK = g.KK(), HW = g.H * g.W, OHW = g.OH * g.OW;
  const Layout L = make_layout(g.W, g.OH, g.OW, g.KH, g.KW, g.sh, g.sw, g.dh, g.dw, g.ph, g.pw, kV<T>);
  const std::vector<int64_t> off = tap_offsets(L, g.KH, g.KW, g.dh, g.dw);
  const int64_t nflat = flat_run<T>(g.OH, g.OW, L.RS, g.sh * L.RS);
  with_activation_functor(act, [&](auto fn) {
    dispatch_kernel(g.KH, g.KW, [&](auto kh, auto kw) {
      constexpr int KH = decltype(kh)::value, KW = decltype(kw)::value;
      parallel_for(0, g.N * g.C, plane_grain(g), [&](int64_t b, int64_t e) {
        Scratch<T> buf(L.alloc, T(0)), flat(nflat);
        for (int64_t p = b; p < e; ++p) {
          const int64_t c = p % g.C;
          build(x + p * HW, g.H, g.W, L, buf.data());
          conv_plane<T, KH, KW>(buf.data(), g.sh * L.RS, off.data(), w + c * KK, bias ? bias[c] : T(0),
                                y + p * OHW, g.OH, g.OW, KK, nflat, flat.data(), fn);
        }
      });
    });
  });
}

template <class T>
void depthwise_rows(const Geom& g, const T* x, int64_t x_cstride, int64_t r0, int64_t nrows, int64_t oh0,
                    int64_t rows, const T* w, const T* bias, T* y, int64_t y_cstride, ActivationKind act) {
  const int64_t KK = g.KK();
  // Buffer row r holds image row oh0·sh - ph + r, i.e. row r - top of the given rows.
  const Layout L = make_layout(g.W, rows, g.OW, g.KH, g.KW, g.sh, g.sw, g.dh, g.dw, r0 - (oh0 * g.sh - g.ph), g.pw,
                               kV<T>);
  const std::vector<int64_t> off = tap_offsets(L, g.KH, g.KW, g.dh, g.dw);
  Scratch<T> buf(L.alloc, T(0));  // every channel's copy writes the same positions
  with_activation_functor(act, [&](auto fn) {
    dispatch_kernel(g.KH, g.KW, [&](auto kh, auto kw) {
      constexpr int KH = decltype(kh)::value, KW = decltype(kw)::value;
      for (int64_t c = 0; c < g.C; ++c) {
        build(x + c * x_cstride, nrows, g.W, L, buf.data());
        conv_plane<T, KH, KW>(buf.data(), g.sh * L.RS, off.data(), w + c * KK, bias ? bias[c] : T(0),
                              y + c * y_cstride, rows, g.OW, KK, 0, nullptr, fn);
      }
    });
  });
}

template <class T>
void depthwise_backward(const Geom& g, const T* x, const T* w, const T* dy, T* dx, T* dw) {
  constexpr int V = kV<T>;
  const int64_t KK = g.KK(), HW = g.H * g.W, OHW = g.OH * g.OW;
  const int64_t OWp = round_up(std::max<int64_t>(g.OW, 1), V);
  const bool unit_stride = g.sh == 1 && g.sw == 1;
  // Layout of x (weight gradient, and the scatter target of the strided input gradient).
  const Layout Lx = make_layout(g.W, g.OH, g.OW, g.KH, g.KW, g.sh, g.sw, g.dh, g.dw, g.ph, g.pw, V);
  const std::vector<int64_t> offx = tap_offsets(Lx, g.KH, g.KW, g.dh, g.dw);
  // Layout of the padded dy for the stride-1 input gradient ("full" correlation, flipped kernel).
  const Layout Ld = make_layout(g.OW, g.H, g.W, g.KH, g.KW, 1, 1, g.dh, g.dw, (g.KH - 1) * g.dh - g.ph,
                                (g.KW - 1) * g.dw - g.pw, V);
  const std::vector<int64_t> offd = tap_offsets(Ld, g.KH, g.KW, g.dh, g.dw);
  const int64_t nflat_dx = flat_run<T>(g.H, g.W, Ld.RS, Ld.RS);
  std::vector<T> wflip(g.C * KK);
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t t = 0; t < KK; ++t) wflip[c * KK + t] = w[c * KK + KK - 1 - t];
  std::vector<T> part(dw ? g.N * g.C * KK : 0);
  // dy's rows copied into dyp, zero-padded: OWp apart, or for stride 1 where a flat run takes
  // fewer blocks, Lx.RS apart (the rows of x's buffer), so that the weight gradient's dot
  // products run over the whole plane at once.
  const int64_t nflat_dw = dw && unit_stride ? flat_run<T>(g.OH, g.OW, Lx.RS, Lx.RS) : 0;
  const int64_t dy_step = nflat_dw ? Lx.RS : OWp;
  const int64_t dy_len = nflat_dw ? round_up(nflat_dw, V) : g.OH * OWp;
  // When the input gradient's padded dy (dbuf) has x's row stride — a "same" convolution — its
  // interior from dy_at on IS that flat dyp: the same values, the gaps between rows zero
  // padding, zeros after the last row. The weight gradient then reads dbuf, and dy is copied once.
  const int64_t dy_at = Ld.top * Ld.RS + Ld.left;
  const bool dw_reads_dbuf = nflat_dw > 0 && dx && Ld.RS == Lx.RS && Ld.top >= 0 && Ld.left >= 0 &&
                             dy_at + dy_len <= static_cast<int64_t>(Ld.alloc);
  const bool need_dyp = (dw && !dw_reads_dbuf) || (dx && !unit_stride);

  dispatch_kernel(g.KH, g.KW, [&](auto kh, auto kw) {
    constexpr int KH = decltype(kh)::value, KW = decltype(kw)::value;
    parallel_for(0, g.N * g.C, plane_grain(g), [&](int64_t b, int64_t e) {
      Scratch<T> xbuf(dw ? Lx.alloc : 0, T(0));
      Scratch<T> sbuf(dx && !unit_stride ? Lx.alloc : 0);  // scatter target, zeroed per plane
      Scratch<T> dbuf(dx && unit_stride ? Ld.alloc : 0, T(0)), dflat(dx && unit_stride ? nflat_dx : 0);
      Scratch<T> dyp(need_dyp ? dy_len : 0, T(0));
      for (int64_t p = b; p < e; ++p) {
        const int64_t c = p % g.C;
        const T* dyplane = dy + p * OHW;
        if (dx && unit_stride) build(dyplane, g.OH, g.OW, Ld, dbuf.data());
        if (need_dyp) {  // rows padded with zeros to whole vector blocks
          for (int64_t oh = 0; oh < g.OH; ++oh)
            copy_run(dyp.data() + oh * dy_step, dyplane + oh * g.OW, g.OW);
        }
        if (dw) {
          build(x + p * HW, g.H, g.W, Lx, xbuf.data());
          const T* dyrun = dw_reads_dbuf ? dbuf.data() + dy_at : dyp.data();
          // A flat dy run is one row of dy_len; otherwise OH rows of OWp.
          const int64_t rows = nflat_dw ? 1 : g.OH, width = nflat_dw ? dy_len : OWp;
          if constexpr (KW > 0) {
            for (int64_t i = 0; i < g.KH; ++i)
              tap_row_dots<T, KW>(xbuf.data(), offx.data() + i * KW, g.sh * Lx.RS, dyrun, width, rows,
                                  part.data() + p * KK + i * KW);
          } else {
            for (int64_t t = 0; t < KK; ++t)
              part[p * KK + t] = tap_dot(xbuf.data() + offx[t], g.sh * Lx.RS, dyrun, width, rows);
          }
        }
        if (!dx) continue;
        T* dxplane = dx + p * HW;
        if (unit_stride) {
          conv_plane<T, KH, KW>(dbuf.data(), Ld.RS, offd.data(), wflip.data() + c * KK, T(0), dxplane,
                                g.H, g.W, KK, nflat_dx, dflat.data(), NoActivation{});
        } else {
          // Adjoint of the forward: scatter k · dy into the phase buffer, then read it back.
          std::fill(sbuf.begin(), sbuf.end(), T(0));
          const T* k = w + c * KK;
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            T* base = sbuf.data() + oh * g.sh * Lx.RS;
            const T* d = dyp.data() + oh * OWp;
            for (int64_t t = 0; t < KK; ++t) axpy(base + offx[t], d, k[t], OWp);
          }
          unbuild(sbuf.data(), Lx, g.H, g.W, dxplane);
        }
      }
    });
  });

  if (dw) {
    // Ordered sum over the batch of the per-plane partials.
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t t = 0; t < KK; ++t) {
        double acc = 0;
        for (int64_t n = 0; n < g.N; ++n) acc += part[(n * g.C + c) * KK + t];
        dw[c * KK + t] = static_cast<T>(acc);
      }
  }
}

template void depthwise_rows<float>(const Geom&, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                    const float*, const float*, float*, int64_t, ActivationKind);
template void depthwise_rows<double>(const Geom&, const double*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                     const double*, const double*, double*, int64_t, ActivationKind);
template void depthwise_forward<float>(const Geom&, const float*, const float*, const float*, float*,
                                       ActivationKind);
template void depthwise_forward<double>(const Geom&, const double*, const double*, const double*, double*,
                                        ActivationKind);
template void depthwise_backward<float>(const Geom&, const float*, const float*, const float*,
                                        float*, float*);
template void depthwise_backward<double>(const Geom&, const double*, const double*, const double*,
                                         double*, double*);

}  // namespace evit::conv
