// Seeded random numbers. Philox4x32-10 is counter based: element i of a draw uses counter
// (offset + i), so a fill is parallel and its result does not depend on the thread count.
// The whole state is (seed, offset): two integers that checkpoints store to resume exactly.
#pragma once
#include <array>
#include <cstdint>

namespace evit {

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { state_.seed = seed; }

  void manual_seed(uint64_t seed) { state_ = {seed, 0}; }
  GeneratorState state() const { return state_; }
  void set_state(GeneratorState s) { state_ = s; }

  // Reserves `n` counters and returns the first: callers compute values with philox(base + i).
  uint64_t reserve(uint64_t n) {
    uint64_t base = state_.offset;
    state_.offset += n;
    return base;
  }
  uint64_t seed() const { return state_.seed; }

  // Four 32-bit random words for a counter value.
  static std::array<uint32_t, 4> philox(uint64_t seed, uint64_t counter);
  // A uniform float in [0, 1) from a word (24 random bits) and a double (53 bits from two words).
  static float to_unit_float(uint32_t w) { return (w >> 8) * (1.0f / 16777216.0f); }
  static double to_unit_double(uint32_t hi, uint32_t lo) {
    uint64_t x = (static_cast<uint64_t>(hi) << 21) ^ (lo >> 11);
    return (x & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
  }

  // Convenience draws on the calling thread.
  double uniform_double() {
    auto w = philox(state_.seed, reserve(1));
    return to_unit_double(w[0], w[1]);
  }
  uint64_t next_u64() {
    auto w = philox(state_.seed, reserve(1));
    return (static_cast<uint64_t>(w[0]) << 32) | w[1];
  }

 private:
  GeneratorState state_;
};

// The process-wide default generator (seed 0 until manual_seed is called).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace evit
