// The four bilinear neighbours of one point_sample point, shared by the CPU and CUDA kernels so
// both devices use the same expressions (ops/resize/point_sample.cpp).
#pragma once
#include <cmath>
#include <cstdint>

#include "core/error.h"

namespace evit::point_sample_detail {

// Flat indices into the H×W plane (-1: outside, contributes zero) and weights.
template <class T>
struct Taps {
  int64_t idx[4];
  T w[4];
};

// (u, v) in [0, 1]²: the reference unnormalises ((2u − 1) + 1)·W − 1) / 2, and the same expression
// keeps the last bits equal.
template <class T>
EVIT_HD Taps<T> taps_of(T u, T v, int64_t H, int64_t W) {
  const T gx = T(2) * u - T(1), gy = T(2) * v - T(1);
  const T ix = ((gx + T(1)) * static_cast<T>(W) - T(1)) / T(2);
  const T iy = ((gy + T(1)) * static_cast<T>(H) - T(1)) / T(2);
  const T x0 = std::floor(ix), y0 = std::floor(iy);
  const T fx = ix - x0, fy = iy - y0;
  const int64_t xs[2] = {static_cast<int64_t>(x0), static_cast<int64_t>(x0) + 1};
  const int64_t ys[2] = {static_cast<int64_t>(y0), static_cast<int64_t>(y0) + 1};
  const T wx[2] = {T(1) - fx, fx}, wy[2] = {T(1) - fy, fy};
  Taps<T> t{};
  for (int j = 0; j < 2; ++j)
    for (int i = 0; i < 2; ++i) {
      const int k = j * 2 + i;
      const bool inside = xs[i] >= 0 && xs[i] < W && ys[j] >= 0 && ys[j] < H;
      t.idx[k] = inside ? ys[j] * W + xs[i] : -1;
      t.w[k] = wx[i] * wy[j];
    }
  return t;
}

}  // namespace evit::point_sample_detail
