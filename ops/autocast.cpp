#include "ops/autocast.h"

namespace evit {
namespace {
thread_local bool t_enabled = false;
thread_local DType t_dtype = DType::f16;
}  // namespace

AutocastGuard::AutocastGuard(DType dtype, bool enabled) : prev_enabled_(t_enabled), prev_dtype_(t_dtype) {
  EVIT_CHECK(!enabled || is_half(dtype), "autocast: compute dtype must be f16 or bf16, got ",
             dtype_name(dtype));
  t_enabled = enabled;
  if (enabled) t_dtype = dtype;
}

AutocastGuard::~AutocastGuard() {
  t_enabled = prev_enabled_;
  t_dtype = prev_dtype_;
}

std::optional<DType> autocast_dtype(const Device& device) {
  if (!t_enabled || !device.is_cuda()) return std::nullopt;
  return t_dtype;
}

Tensor autocast_operand(const Tensor& x, std::optional<DType> dtype) {
  if (!dtype || !x.defined() || x.dtype() == *dtype) return x;
  EVIT_CHECK(x.dtype() == DType::f32, "autocast: expected an f32 operand, got ", x.desc());
  return x.to(*dtype);
}

}  // namespace evit
