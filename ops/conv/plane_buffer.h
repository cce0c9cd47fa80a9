// Internal: one plane of a convolution input copied into a zero-padded buffer whose rows are split
// by column phase (column c of the padded row goes to phase c % stride, slot c / stride), so that
// every tap (i, j) of every output row reads a CONTIGUOUS run of the buffer for any stride and
// dilation:
//   y[oh][ow] = Σ_ij k[i][j] · buf[oh·sh + i·dh][phase(j·dw)][ow + (j·dw) / sw].
// The direct kernels (depthwise.cpp, few_channels.cpp) run plain vector loops over such runs.
// Include only from those .cpp files: everything here is inline.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "ops/simd_width.h"

namespace evit::conv::plane {
// Padding granularity of the buffers' rows: 128 bytes, a whole number of the kernels' two-vector
// blocks on every target (two AVX-512 registers, four AVX2 ones).
template <class T> constexpr int kV = static_cast<int>(128 / sizeof(T));

inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Padded, phase-split buffer of one plane, sized for an OH×OW output of a KH×KW kernel.
struct Layout {
  int64_t RH = 0, RW = 0, PW = 0, RS = 0;  // rows, padded width, phase width, row stride
  int64_t top = 0, left = 0;               // buffer row r <-> source row r - top (same for cols)
  int64_t sh = 1, sw = 1;
  size_t alloc = 0;  // elements, including slack for the last partial vector block
  // Slots [lo[q], hi[q]) of phase q hold a source column (c = m·sw + q < RW, 0 <= c - left < W
  // for the plane width W the layout was made for); the other slots are padding (zeros).
  std::vector<int64_t> lo, hi;
};

inline Layout make_layout(int64_t W, int64_t OH, int64_t OW, int64_t KH, int64_t KW, int64_t sh, int64_t sw,
                   int64_t dh, int64_t dw, int64_t top, int64_t left, int64_t slack) {
  Layout L;
  L.RH = (OH - 1) * sh + (KH - 1) * dh + 1;
  L.RW = (OW - 1) * sw + (KW - 1) * dw + 1;
  L.PW = (L.RW + sw - 1) / sw;
  L.RS = sw * L.PW;
  L.top = top;
  L.left = left;
  L.sh = sh;
  L.sw = sw;
  L.alloc = static_cast<size_t>(L.RH * L.RS + slack);
  L.lo.resize(sw);
  L.hi.resize(sw);
  for (int64_t q = 0; q < sw; ++q) {
    int64_t lo = std::max<int64_t>(0, floor_div(left - q + sw - 1, sw));
    int64_t hi = std::min<int64_t>(L.PW, floor_div(W - 1 + left - q, sw) + 1);
    hi = std::min<int64_t>(hi, floor_div(L.RW - 1 - q, sw) + 1);
    lo = std::min(lo, L.PW);
    L.lo[q] = lo;
    L.hi[q] = std::max(hi, lo);
  }
  return L;
}

// Offsets of the taps' runs relative to the start of an output row's first buffer row.
inline std::vector<int64_t> tap_offsets(const Layout& L, int64_t KH, int64_t KW, int64_t dh, int64_t dw) {
  std::vector<int64_t> off(KH * KW);
  for (int64_t i = 0; i < KH; ++i)
    for (int64_t j = 0; j < KW; ++j)
      off[i * KW + j] = i * dh * L.RS + ((j * dw) % L.sw) * L.PW + (j * dw) / L.sw;
  return off;
}

// The target's SIMD register (ops/simd_width.h): the direct kernels' vectors are one register wide.
using simd::kVectorBytes;
using simd::kVectorRegisters;

// One SIMD register of T through GCC/Clang vector extensions: portable and explicit, so the
// accumulators stay in registers.
template <class T> struct Simd {
  typedef T v __attribute__((vector_size(kVectorBytes)));
  static constexpr int N = static_cast<int>(kVectorBytes / sizeof(T));
};
template <class T> inline typename Simd<T>::v vload(const T* p) {
  typename Simd<T>::v r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
template <class T> inline void vstore(T* p, typename Simd<T>::v v) { std::memcpy(p, &v, sizeof v); }

// Σ over OH rows and the (zero-padded) width OWp of d · x for one tap, x's rows row_step apart
// and d's OWp apart: a weight gradient's dot product. Four vector accumulators (two rows × two
// halves of a block) give independent chains; combined in a fixed order.
template <class T>
inline T tap_dot(const T* __restrict x, int64_t row_step, const T* __restrict d, int64_t OWp,
                int64_t OH) {
  using V = typename Simd<T>::v;
  constexpr int L = Simd<T>::N;
  V a0{}, a1{}, b0{}, b1{};
  int64_t oh = 0;
  for (; oh + 2 <= OH; oh += 2) {
    const T* x0 = x + oh * row_step;
    const T* x1 = x0 + row_step;
    const T* d0 = d + oh * OWp;
    const T* d1 = d0 + OWp;
    for (int64_t o = 0; o < OWp; o += 2 * L) {
      a0 += vload(d0 + o) * vload(x0 + o);
      a1 += vload(d0 + o + L) * vload(x0 + o + L);
      b0 += vload(d1 + o) * vload(x1 + o);
      b1 += vload(d1 + o + L) * vload(x1 + o + L);
    }
  }
  if (oh < OH) {
    const T* x0 = x + oh * row_step;
    const T* d0 = d + oh * OWp;
    for (int64_t o = 0; o < OWp; o += 2 * L) {
      a0 += vload(d0 + o) * vload(x0 + o);
      a1 += vload(d0 + o + L) * vload(x0 + o + L);
    }
  }
  const V v = (a0 + a1) + (b0 + b1);
  T s = 0;
  for (int l = 0; l < L; ++l) s += v[l];
  return s;
}

// Integer vectors of Simd<T>'s shape: the lane indices of a shuffle.
template <class T> struct SimdIndex {
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef I v __attribute__((vector_size(kVectorBytes)));
};

// The 2N values a:b split into their even and odd lanes (a stride-2 row into its two phases).
template <class T>
inline void split_even_odd(typename Simd<T>::v a, typename Simd<T>::v b, typename Simd<T>::v& even,
                           typename Simd<T>::v& odd) {
  typename SimdIndex<T>::v ie, io;
  for (int l = 0; l < Simd<T>::N; ++l) {
    ie[l] = 2 * l;
    io[l] = 2 * l + 1;
  }
  even = __builtin_shuffle(a, b, ie);
  odd = __builtin_shuffle(a, b, io);
}

// The reverse: a:b = even and odd interleaved.
template <class T>
inline void merge_even_odd(typename Simd<T>::v even, typename Simd<T>::v odd, typename Simd<T>::v& a,
                           typename Simd<T>::v& b) {
  constexpr int N = Simd<T>::N;
  typename SimdIndex<T>::v ia, ib;
  for (int l = 0; l < N; ++l) {
    ia[l] = (l % 2) * N + l / 2;
    ib[l] = (l % 2) * N + N / 2 + l / 2;
  }
  a = __builtin_shuffle(even, odd, ia);
  b = __builtin_shuffle(even, odd, ib);
}

// d[i] = s[i], i < n, inline (rows are short: a library call per row would cost more than the
// copy). The last block overlaps the one before it rather than running a scalar tail.
template <class T>
inline void copy_run(T* __restrict d, const T* __restrict s, int64_t n) {
  constexpr int N = Simd<T>::N;
  if (n < N) {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
    return;
  }
  for (int64_t i = 0; i + N < n; i += N) vstore(d + i, vload(s + i));
  vstore(d + n - N, vload(s + n - N));
}

// Slots [m0, m1) of phases 0 and 1 of a stride-2 layout where both phases hold source columns
// and the 2·(m1 - m0) columns are inside the row: there whole vector blocks move at once.
inline void stride2_span(const Layout& L, int64_t W, int64_t& m0, int64_t& m1) {
  m0 = std::max(L.lo[0], L.lo[1]);
  m1 = std::max(m0, std::min({L.hi[0], L.hi[1], floor_div(W + L.left, 2)}));
}

// Calls f(k) for the slots k of [lo, hi) outside [m0, m), the range the vector loop moved.
template <class F>
inline void for_rest(int64_t lo, int64_t hi, int64_t m0, int64_t m, F&& f) {
  for (int64_t k = lo; k < std::min(hi, m0); ++k) f(k);
  for (int64_t k = std::max(lo, m); k < hi; ++k) f(k);
}

// Copies plane src [H, W] into buf. Only the plane's positions are written: the padding keeps
// the zeros the buffer was made with, so a buffer must only ever be built into with one layout.
template <class T>
void build(const T* src, int64_t H, int64_t W, const Layout& L, T* buf) {
  constexpr int N = Simd<T>::N;
  int64_t m0 = 0, m1 = 0;
  if (L.sw == 2) stride2_span(L, W, m0, m1);
  const int64_t r0 = std::max<int64_t>(0, L.top), r1 = std::min<int64_t>(L.RH, H + L.top);
  for (int64_t r = r0; r < r1; ++r) {
    T* row = buf + r * L.RS;
    const T* s = src + (r - L.top) * W - L.left;  // s[c] = source column c - left
    if (L.sw == 1) {
      copy_run(row + L.lo[0], s + L.lo[0], L.hi[0] - L.lo[0]);
    } else if (L.sw == 2) {
      T* d0 = row;
      T* d1 = row + L.PW;
      int64_t m = m0;
      for (; m + N <= m1; m += N) {
        typename Simd<T>::v e, o;
        split_even_odd<T>(vload(s + 2 * m), vload(s + 2 * m + N), e, o);
        vstore(d0 + m, e);
        vstore(d1 + m, o);
      }
      for_rest(L.lo[0], L.hi[0], m0, m, [&](int64_t k) { d0[k] = s[2 * k]; });
      for_rest(L.lo[1], L.hi[1], m0, m, [&](int64_t k) { d1[k] = s[2 * k + 1]; });
    } else {
      for (int64_t q = 0; q < L.sw; ++q) {
        T* dst = row + q * L.PW;
        for (int64_t k = L.lo[q]; k < L.hi[q]; ++k) dst[k] = s[k * L.sw + q];
      }
    }
  }
}

// The reverse copy: plane dst [H, W] = the buffer's values at the plane's positions (zero where
// the buffer does not reach).
template <class T>
void unbuild(const T* buf, const Layout& L, int64_t H, int64_t W, T* dst) {
  constexpr int N = Simd<T>::N;
  int64_t m0 = 0, m1 = 0;
  if (L.sw == 2) stride2_span(L, W, m0, m1);
  for (int64_t sr = 0; sr < H; ++sr) {
    T* d = dst + sr * W;
    const int64_t r = sr + L.top;
    if (r < 0 || r >= L.RH) {
      std::fill(d, d + W, T(0));
      continue;
    }
    const T* row = buf + r * L.RS;
    if (L.RW - L.left < W || L.left < 0) std::fill(d, d + W, T(0));
    T* dp = d - L.left;  // dp[c] = plane column c - left
    if (L.sw == 1) {
      copy_run(dp + L.lo[0], row + L.lo[0], L.hi[0] - L.lo[0]);
    } else if (L.sw == 2) {
      const T* s0 = row;
      const T* s1 = row + L.PW;
      int64_t m = m0;
      for (; m + N <= m1; m += N) {
        typename Simd<T>::v a, b;
        merge_even_odd<T>(vload(s0 + m), vload(s1 + m), a, b);
        vstore(dp + 2 * m, a);
        vstore(dp + 2 * m + N, b);
      }
      for_rest(L.lo[0], L.hi[0], m0, m, [&](int64_t k) { dp[2 * k] = s0[k]; });
      for_rest(L.lo[1], L.hi[1], m0, m, [&](int64_t k) { dp[2 * k + 1] = s1[k]; });
    } else {
      for (int64_t q = 0; q < L.sw; ++q) {
        const T* src = row + q * L.PW;
        for (int64_t k = L.lo[q]; k < L.hi[q]; ++k) dp[k * L.sw + q] = src[k];
      }
    }
  }
}

}  // namespace evit::conv::plane
