// exp for the softmax family's inner loops. std::exp on float does not vectorise without
// -ffast-math; this inline version (Cephes-style: n = round(x log2 e), r = x - n ln 2 in two
// parts, degree-6 polynomial, scale by 2^n through the exponent bits) does, and is within
// 1 ulp of exp on the range these kernels use (x <= 0: x - max of a row). Below -87.34 it
// returns 0 (expf would give a denormal there); inputs above 88.38 give inf. NaN stays NaN.
// f64 keeps std::exp.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace evit::detail {

inline float exp_f32(float x_in) {
  float x = x_in < -87.33654f ? -87.33654f : x_in;
  x = x > 88.3762626f ? 88.3762626f : x;
  // n = round(x log2 e) without floor (which does not vectorise): adding 1.5 * 2^23 leaves
  // the rounded integer in the low mantissa bits.
  constexpr float kShift = 12582912.0f;
  const float t = x * 1.44269504088896341f + kShift;
  const float fx = t - kShift;
  float r = x - fx * 0.693359375f;
  r = r - fx * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * (r * r) + r + 1.0f;
  const int32_t n = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kShift);
  const int32_t bits = (n + 127) << 23;
  const float r_exp = y * std::bit_cast<float>(bits);
  return x_in < -87.33654f ? 0.0f : r_exp;
}

template <class T> inline T vexp(T x) {
  if constexpr (sizeof(T) == 4) return exp_f32(x);
  else return std::exp(x);
}

}  // namespace evit::detail
