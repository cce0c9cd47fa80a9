// 16-bit floating types: IEEE binary16 (`Half`, dtype f16) and bfloat16 (`BFloat16`, dtype bf16).
//
// They are storage types: arithmetic converts to float (the conversion operator), and results
// convert back with round-to-nearest-even. The conversions are written with integer bit
// manipulation so the same code runs on the host (casts, checkpoints, tests) and in CUDA
// kernels, and gives the same bits on both.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/error.h"

namespace evit {

namespace detail {
EVIT_HD inline uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
EVIT_HD inline float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
}  // namespace detail

// float -> binary16, round to nearest even; overflow gives infinity, NaN stays a (quiet) NaN.
EVIT_HD inline uint16_t float_to_half_bits(float f) {
  uint32_t u = detail::float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  if (u >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (u > 0x7f800000u ? 0x200u : 0u));
  if (u >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (u < 0x38800000u) {
    // Below the smallest normal half (2^-14): the result is subnormal (or zero). Adding 0.5 (as
    // a float whose unit in the last place is 2^-24, the half subnormal step) lets the FPU do the
    // round-to-nearest-even; the low mantissa bits are then the half's mantissa.
    const float magic = detail::bits_float(126u << 23);  // 0.5
    float r = detail::bits_float(u) + magic;
    return static_cast<uint16_t>(sign | (detail::float_bits(r) - (126u << 23)));
  }
  // Normal: re-bias the exponent (127 -> 15) and round the 13 dropped mantissa bits to even.
  const uint32_t odd = (u >> 13) & 1u;
  u += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu + odd;
  return static_cast<uint16_t>(sign | (u >> 13));
}

EVIT_HD inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return detail::bits_float(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    // Subnormal: mant * 2^-24 is exact in float.
    float v = static_cast<float>(mant) * detail::bits_float(103u << 23);
    return detail::bits_float(sign | detail::float_bits(v));
  }
  return detail::bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

// float -> bfloat16 (the top 16 bits of a float), round to nearest even; NaN stays NaN.
EVIT_HD inline uint16_t float_to_bf16_bits(float f) {
  uint32_t u = detail::float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

EVIT_HD inline float bf16_bits_to_float(uint16_t b) {
  return detail::bits_float(static_cast<uint32_t>(b) << 16);
}

// The two storage types share their shape: 16 bits, built from any arithmetic value through
// float, read back as float. `Codec` names the encoding (a type, so device code calls it directly).
template <class Codec>
struct Float16Storage {
  uint16_t bits = 0;
  Float16Storage() = default;
  template <class U, class = std::enable_if_t<std::is_arithmetic_v<U>>>
  EVIT_HD Float16Storage(U v) : bits(Codec::encode(static_cast<float>(v))) {}  // NOLINT: implicit
  EVIT_HD operator float() const { return Codec::decode(bits); }               // NOLINT: implicit
  EVIT_HD static Float16Storage from_bits(uint16_t b) {
    Float16Storage h;
    h.bits = b;
    return h;
  }
};

struct HalfCodec {
  EVIT_HD static uint16_t encode(float f) { return float_to_half_bits(f); }
  EVIT_HD static float decode(uint16_t b) { return half_bits_to_float(b); }
};
struct BFloat16Codec {
  EVIT_HD static uint16_t encode(float f) { return float_to_bf16_bits(f); }
  EVIT_HD static float decode(uint16_t b) { return bf16_bits_to_float(b); }
};
using Half = Float16Storage<HalfCodec>;
using BFloat16 = Float16Storage<BFloat16Codec>;
static_assert(sizeof(Half) == 2 && sizeof(BFloat16) == 2);

template <class T> inline constexpr bool is_float16_v = false;
template <class C> inline constexpr bool is_float16_v<Float16Storage<C>> = true;

// Converts one element between any two of evit's element types (the rule of every copy and
// cast, on host and device): to bool is "!= 0"; 16-bit floats go through float; f64 and the
// 64-bit integers convert directly so no precision is lost on the way.
template <class D, class S>
EVIT_HD inline D convert_value(S v) {
  if constexpr (std::is_same_v<D, bool>) {
    if constexpr (is_float16_v<S>) return static_cast<float>(v) != 0.0f;
    else return v != S(0);
  } else if constexpr (std::is_unsigned_v<D> && (std::is_floating_point_v<S> || is_float16_v<S>)) {
    // A negative float to an unsigned type is undefined in C++, and the backends disagree (x86
    // wraps, CUDA saturates at 0); through int64 both wrap modulo 2^bits, as PyTorch does.
    if constexpr (is_float16_v<S>) return static_cast<D>(static_cast<int64_t>(static_cast<float>(v)));
    else return static_cast<D>(static_cast<int64_t>(v));
  } else if constexpr (is_float16_v<S>) {
    return static_cast<D>(static_cast<float>(v));
  } else if constexpr (is_float16_v<D>) {
    return D(static_cast<float>(v));
  } else {
    return static_cast<D>(v);
  }
}

}  // namespace evit
