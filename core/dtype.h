// Element types. evit does no implicit type promotion: binary ops require equal dtypes.
#pragma once
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/half.h"

namespace evit {

// f16 and bf16 are storage types: CPU kernels compute in f32/f64 only (dispatch_floating), CUDA
// uses them for mixed-precision GEMMs and casts; every dtype can be copied and converted.
enum class DType : uint8_t { f32, f64, i64, i32, u8, boolean, f16, bf16 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
    case DType::i32: return 4;
    case DType::u8: return 1;
    case DType::boolean: return 1;
    case DType::f16: return 2;
    case DType::bf16: return 2;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i64: return "i64";
    case DType::i32: return "i32";
    case DType::u8: return "u8";
    case DType::boolean: return "bool";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
  }
  return "?";
}

inline bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16;
}
inline bool is_half(DType t) { return t == DType::f16 || t == DType::bf16; }

// Maps a C++ type to its DType.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <> struct dtype_of<Half> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = DType::bf16; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

// dispatch_floating(dtype, "op", [&](auto tag) { using T = decltype(tag); ... }) calls the lambda
// with a value of the C++ type for f32/f64 and throws a message naming the op otherwise.
template <class F>
decltype(auto) dispatch_floating(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    default:
      EVIT_THROW(op, ": expected a floating dtype (f32 or f64), got ", dtype_name(t),
                 is_half(t) ? " (16-bit floats are for CUDA mixed precision; convert with to(f32))" : "");
  }
}

// Same for every dtype evit supports (copies, fills, comparisons: nothing that computes).
template <class F>
decltype(auto) dispatch_all(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::i64: return f(int64_t{});
    case DType::i32: return f(int32_t{});
    case DType::u8: return f(uint8_t{});
    case DType::boolean: return f(bool{});
    case DType::f16: return f(Half{});
    case DType::bf16: return f(BFloat16{});
  }
  EVIT_THROW(op, ": unknown dtype");
}

// Numeric types only (no bool): arithmetic ops.
template <class F>
decltype(auto) dispatch_numeric(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::i64: return f(int64_t{});
    case DType::i32: return f(int32_t{});
    case DType::u8: return f(uint8_t{});
    default: EVIT_THROW(op, ": expected a numeric dtype, got ", dtype_name(t));
  }
}

}  // namespace evit
