// exp for inner loops that the compiler should vectorise: the pointwise activations (sigmoid,
// SiLU, GELU in its tanh form), softmax, attention and cross-entropy.
//
// libm's expf is an opaque call, so a loop over it runs one element at a time (in the
// EfficientViT-L/SAM backbones, whose activation is GELU, tanhf/expf calls took a third of the
// forward time); std::exp on float does not vectorise without -ffast-math. For f32 on the host
// this is the classic range-reduced polynomial (Cephes' expf coefficients): x = n·ln2 + r with
// |r| ≤ ln2/2, exp(r) by a degree-7 polynomial, 2^n put into the exponent bits. Branch-free, so
// AVX2/AVX-512 loops run it 8 or 16 lanes at a time; within 2 ulp of the exact value over the
// whole f32 range, denormal results included (tests/test_vec_exp.cpp checks every 97th float
// against the f64 exp).
// f64 (the gradchecks) and device code keep the library exp.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/error.h"

namespace evit {

inline float exp_f32(float x0) {
  // Beyond these the result is inf / 0 in f32 (ln of the largest float, ln of half the smallest
  // denormal); clamping keeps 2^n within [-150, 128]. Comparisons are false for NaN, so NaN
  // passes through (and comes out NaN).
  constexpr float kHi = 88.7228394f, kLo = -103.972084f;
  float x = x0 > kHi ? kHi : x0;
  x = x < kLo ? kLo : x;
  // n = round(x / ln2) by the 1.5·2^23 trick: adding it leaves n in the low mantissa bits
  // (round to nearest) without a float-to-int conversion, which would be undefined for NaN.
  constexpr float kLog2e = 1.44269504088896341f, kShifter = 12582912.0f;
  const float t = x * kLog2e + kShifter;
  const float n = t - kShifter;
  // r = x − n·ln2 with ln2 split in two so the product is exact in the first part.
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * (r * r) + r + 1.0f;
  // n as an integer, in [-150, 128]:
  const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kShifter);
  // 2^n as two normal halves: 2^128 is beyond the exponent range and 2^-150 below it, yet
  // er · 2^n is still a float there (finite below kHi, denormal above kLo), rounded once.
  const int32_t h1 = ni >> 1, h2 = ni - h1;
  const uint32_t b1 = uint32_t(h1 + 127) << 23, b2 = uint32_t(h2 + 127) << 23;
  const float s1 = std::bit_cast<float>(b1), s2 = std::bit_cast<float>(b2);
  const float e = er * s1 * s2;
  return x0 > kHi ? HUGE_VALF : (x0 < kLo ? 0.0f : e);
}

// exp(x) for an element type T.
template <class T> EVIT_HD T vexp(T x) {
#if defined(__CUDA_ARCH__)
  return std::exp(x);
#else
  if constexpr (std::is_same_v<T, float>) return exp_f32(x);
  else return std::exp(x);
#endif
}

}  // namespace evit
