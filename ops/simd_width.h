// The target's SIMD registers, for kernels written with GCC/Clang vector extensions: how wide one
// register is and how many a kernel may keep accumulators in.
//
// A vector type wider than the register is legal but is split by the compiler, often through the
// stack: with 64-byte vectors on AVX2 (16 registers of 32 bytes) the 5×5 depthwise row and the
// stem's 8-channel group spilled and ran 3-10× slower, and BatchNorm's 8-lane f64 sums took ~7
// cycles per element. Size vectors and blocks of accumulators from these constants instead.
#pragma once

namespace evit::simd {

#if defined(__AVX512F__)
inline constexpr int kVectorBytes = 64;
inline constexpr int kVectorRegisters = 32;
#elif defined(__AVX__)
inline constexpr int kVectorBytes = 32;
inline constexpr int kVectorRegisters = 16;
#else
inline constexpr int kVectorBytes = 16;
inline constexpr int kVectorRegisters = 16;
#endif

}  // namespace evit::simd
