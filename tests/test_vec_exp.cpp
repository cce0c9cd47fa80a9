// The vectorisable f32 exp behind sigmoid, SiLU and GELU (tanh form): within 2 ulp of the exact
// exp over the whole f32 range, exact limits, NaN passed through; and GELU's x·sigmoid(2u) form
// equal to the textbook 0.5 x (1 + tanh u) to f32 rounding.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "ops/vec_exp.h"
#include "ops/pointwise/functors.h"

using evit::exp_f32;

namespace {
// Distance in units in the last place between a float and the exactly rounded f64 value.
double ulp_error(float got, double exact) {
  const float rounded = static_cast<float>(exact);
  const float next = std::nextafter(rounded, std::numeric_limits<float>::infinity());
  const double ulp = std::max(double(next) - double(rounded), double(std::numeric_limits<float>::denorm_min()));
  return std::abs(double(got) - exact) / ulp;
}
}  // namespace

TEST_CASE("vectorisable exp is within 2 ulp of exp over the f32 range", "[pointwise][vec_exp]") {
  double worst = 0;
  float worst_at = 0;
  int64_t checked = 0;
  // Every 97th float in [-87.3, 88.72]: all exponents and many mantissas of each (below -87.3 the
  // results are denormal, where ulp counting says little; they are checked apart below).
  for (uint32_t bits = 0; bits < 0xFF800000u; bits += 97) {
    float x;
    std::memcpy(&x, &bits, sizeof x);
    if (!(x >= -87.3f && x <= 88.72f)) continue;
    const double e = ulp_error(exp_f32(x), std::exp(double(x)));
    if (e > worst) worst = e, worst_at = x;
    ++checked;
  }
  INFO("worst " << worst << " ulp at x = " << worst_at << " over " << checked << " values");
  CHECK(checked > 10000000);
  CHECK(worst <= 2.0);
}

TEST_CASE("vectorisable exp limits: overflow, underflow, denormals, NaN", "[pointwise][vec_exp]") {
  CHECK(exp_f32(0.0f) == 1.0f);
  CHECK(std::isinf(exp_f32(88.73f)));
  CHECK(std::isinf(exp_f32(std::numeric_limits<float>::infinity())));
  CHECK(exp_f32(-104.0f) == 0.0f);
  CHECK(exp_f32(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
  // Denormal results: within one denormal step of the exact value.
  for (float x : {-103.9f, -100.0f, -95.5f, -88.3f, -87.5f})
    CHECK(std::abs(exp_f32(x) - std::exp(double(x))) <= 1.5e-45);
  // Just below the overflow limit: finite and within 2 ulp.
  const float top = 88.7228f;
  CHECK(std::isfinite(exp_f32(top)));
  CHECK(ulp_error(exp_f32(top), std::exp(double(top))) <= 2.0);
}

TEST_CASE("GELU (tanh) as x sigmoid(2u) equals 0.5 x (1 + tanh u) to f32 rounding", "[pointwise][vec_exp]") {
  const evit::pointwise::GeluTanhOp op;
  constexpr double b = 0.79788456080286535588, k = 0.044715;
  double worst_fwd = 0, worst_bwd = 0;
  for (int i = -20000; i <= 20000; ++i) {
    const float x = float(i) * 6e-4f;  // [-12, 12]
    const double xd = x, u = b * (xd + k * xd * xd * xd), t = std::tanh(u);
    const double fwd = 0.5 * xd * (1 + t);
    const double bwd = 0.5 * (1 + t) + 0.5 * xd * (1 - t * t) * b * (1 + 3 * k * xd * xd);
    // Relative error, measured against at least 0.1: where the value passes through zero it is a
    // difference of O(1) terms, and any f32 formula is off by an ulp of those terms there.
    worst_fwd = std::max(worst_fwd, std::abs(op.forward(x) - fwd) / std::max(std::abs(fwd), 0.1));
    worst_bwd = std::max(worst_bwd, std::abs(op.backward(x, 0.0f, 1.0f) - bwd) / std::max(std::abs(bwd), 0.1));
  }
  INFO("forward " << worst_fwd << ", backward " << worst_bwd);
  CHECK(worst_fwd < 5e-6);
  CHECK(worst_bwd < 5e-6);
  // The f64 instantiation (the gradchecks) follows the same formula with the library exp.
  CHECK(op.forward(1.5) == Approx(0.5 * 1.5 * (1 + std::tanh(b * (1.5 + k * 3.375)))).epsilon(1e-15));
}
