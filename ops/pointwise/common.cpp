// Shared pieces of the pointwise family: operand checks, scalars, finiteness test.
#include <cmath>

#include "ops/iter/pointwise.h"
#include "ops/pointwise.h"

namespace evit {

void check_binary_operands(const Tensor& a, const Tensor& b, const char* op) {
  EVIT_CHECK(a.device() == b.device(), op, ": expected all tensors on the same device, got ",
             a.device().str(), " and ", b.device().str());
  EVIT_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ (", a.desc(), " and ", b.desc(),
             "); evit does not promote types, convert one with to()");
}

Tensor scalar_like(const Tensor& t, double v) { return full({}, v, {t.dtype(), t.device()}); }

bool all_finite(const Tensor& t) {
  if (!is_floating(t.dtype())) return true;
  // Detached: the check must never record (anomaly mode). Device and 16-bit tensors are
  // checked on a host f32 copy; this is a diagnostic path, not a hot one.
  Tensor c = t.detach();
  if (!c.device().is_cpu()) c = c.to(kCPU);
  if (is_half(c.dtype())) c = c.to(DType::f32);
  c = c.contiguous();
  return dispatch_floating(c.dtype(), "all_finite", [&](auto tag) {
    using T = decltype(tag);
    const T* p = c.data_ptr<T>();
    const int64_t n = c.numel();
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) ok &= std::isfinite(p[i]);
    return ok;
  });
}

}  // namespace evit
