// Internal: register-tiled kernels for products too small for a BLAS call to pay its fixed cost —
// the per-head products of the linear attention (d = 16 by N positions) and the grouped 1×1
// convolutions beside it (16×16 weights over 49 to 196 positions), where a call into the BLAS
// costs 4-12 µs for 50K multiply-adds. Every sum runs in a fixed order on the calling thread, so
// results do not depend on the thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace evit::detail::small_products {

// SIMD through GCC/Clang vector extensions: one V<T> is 32 bytes (8 f32 / 4 f64), an AVX
// register with -march=native, a pair of SSE registers otherwise. Lane arithmetic is plain
// IEEE mul/add, so results do not depend on how work is split between threads.
template <class T> struct VecOf {
  typedef T type __attribute__((vector_size(32)));
};
template <class T> using V = typename VecOf<T>::type;
template <class T> constexpr int kLanes = 32 / sizeof(T);

template <class T> inline V<T> load(const T* p) {
  V<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <class T> inline void store(T* p, V<T> v) { std::memcpy(p, &v, sizeof(v)); }
template <class T> inline V<T> splat(T x) { return V<T>{} + x; }

// Sum of the lanes, pairwise (fixed order).
template <class T> inline T reduce_lanes(V<T> v) {
  constexpr int L = kLanes<T>;
  T tmp[L];
  std::memcpy(tmp, &v, sizeof(v));
  for (int w = L / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) tmp[l] += tmp[l + w];
  return tmp[0];
}

// Row i of a register tile whose rows start at row `first` of `base` (rows `stride` apart) and of
// which only `count` exist: the missing rows repeat the last one, so the tile's loads stay in
// bounds and its extra accumulators are computed and dropped.
template <class T>
inline const T* tile_row(const T* base, int64_t stride, int64_t first, int i, int count) {
  return base + (first + std::min(i, count - 1)) * stride;
}

// C[r * ldc + c] = sum_j X[r][j] * Y[c][j] for r < R, c < K, j < n (rows strided ldx / ldy).
// Register tile: 2 rows of X by 4 rows of Y, one vector of lanes each; the tail of j goes into
// lane (j % L) of the same accumulators.
template <class T>
inline void gram(const T* x, int64_t ldx, int64_t R, const T* y, int64_t ldy, int64_t K, int64_t n, T* C,
                 int64_t ldc) {
  constexpr int L = kLanes<T>;
  for (int64_t r0 = 0; r0 < R; r0 += 2) {
    const int nr = static_cast<int>(std::min<int64_t>(2, R - r0));
    const T *x0 = tile_row(x, ldx, r0, 0, nr), *x1 = tile_row(x, ldx, r0, 1, nr);
    for (int64_t c0 = 0; c0 < K; c0 += 4) {
      const int nc = static_cast<int>(std::min<int64_t>(4, K - c0));
      const T *y0 = tile_row(y, ldy, c0, 0, nc), *y1 = tile_row(y, ldy, c0, 1, nc),
              *y2 = tile_row(y, ldy, c0, 2, nc), *y3 = tile_row(y, ldy, c0, 3, nc);
      V<T> a00{}, a01{}, a02{}, a03{}, a10{}, a11{}, a12{}, a13{};
      int64_t j = 0;
      for (; j + L <= n; j += L) {
        const V<T> u0 = load(x0 + j), u1 = load(x1 + j);
        const V<T> w0 = load(y0 + j), w1 = load(y1 + j), w2 = load(y2 + j), w3 = load(y3 + j);
        a00 += u0 * w0; a01 += u0 * w1; a02 += u0 * w2; a03 += u0 * w3;
        a10 += u1 * w0; a11 += u1 * w1; a12 += u1 * w2; a13 += u1 * w3;
      }
      for (int t = 0; j + t < n; ++t) {
        const int64_t jj = j + t;
        a00[t] += x0[jj] * y0[jj]; a01[t] += x0[jj] * y1[jj];
        a02[t] += x0[jj] * y2[jj]; a03[t] += x0[jj] * y3[jj];
        a10[t] += x1[jj] * y0[jj]; a11[t] += x1[jj] * y1[jj];
        a12[t] += x1[jj] * y2[jj]; a13[t] += x1[jj] * y3[jj];
      }
      const V<T> acc[2][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}};
      for (int r = 0; r < nr; ++r)
        for (int c = 0; c < nc; ++c) C[(r0 + r) * ldc + c0 + c] = reduce_lanes<T>(acc[r][c]);
    }
  }
}

// Y[r][i] = sum_c M(r, c) X[c][i] for r < R, c < K, i < n, with M(r, c) = m[r * mr + c * mc]
// (so a transposed M costs nothing). Register tile: 4 output rows by 2 vectors of positions.
template <class T>
inline void small_mm(const T* m, int64_t mr, int64_t mc, int64_t R, int64_t K, const T* X, int64_t ldx, T* Y,
                     int64_t ldy, int64_t n) {
  constexpr int64_t L = kLanes<T>;
  int64_t i0 = 0;
  for (; i0 + 2 * L <= n; i0 += 2 * L) {
    for (int64_t r0 = 0; r0 < R; r0 += 4) {
      const int nr = static_cast<int>(std::min<int64_t>(4, R - r0));
      const T *m0 = tile_row(m, mr, r0, 0, nr), *m1 = tile_row(m, mr, r0, 1, nr),
              *m2 = tile_row(m, mr, r0, 2, nr), *m3 = tile_row(m, mr, r0, 3, nr);
      V<T> a00{}, a01{}, a10{}, a11{}, a20{}, a21{}, a30{}, a31{};
      for (int64_t c = 0; c < K; ++c) {
        const T* xr = X + c * ldx + i0;
        const V<T> x0 = load(xr), x1 = load(xr + L);
        const V<T> b0 = splat(m0[c * mc]), b1 = splat(m1[c * mc]), b2 = splat(m2[c * mc]),
                   b3 = splat(m3[c * mc]);
        a00 += b0 * x0; a01 += b0 * x1;
        a10 += b1 * x0; a11 += b1 * x1;
        a20 += b2 * x0; a21 += b2 * x1;
        a30 += b3 * x0; a31 += b3 * x1;
      }
      const V<T> acc[4][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
      for (int r = 0; r < nr; ++r) {
        T* yr = Y + (r0 + r) * ldy + i0;
        store(yr, acc[r][0]);
        store(yr + L, acc[r][1]);
      }
    }
  }
  if (i0 < n) {  // tail positions: same accumulation order over c, scalar
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = i0; i < n; ++i) {
        T acc = 0;
        for (int64_t c = 0; c < K; ++c) acc += m[r * mr + c * mc] * X[c * ldx + i];
        Y[r * ldy + i] = acc;
      }
  }
}

}  // namespace evit::detail::small_products
