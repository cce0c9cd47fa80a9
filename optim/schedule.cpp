#include "optim/schedule.h"

#include <cmath>
#include <numbers>

namespace evit::optim {

WarmupCosine::WarmupCosine(WarmupCosineOptions o) : o_(o) {
  EVIT_CHECK(std::isfinite(o_.base_lr) && o_.base_lr >= 0.0, "WarmupCosine: base_lr must be >= 0, got ", o_.base_lr);
  EVIT_CHECK(o_.warmup_steps >= 0, "WarmupCosine: warmup_steps must be >= 0, got ", o_.warmup_steps);
  EVIT_CHECK(o_.decay_steps >= 1, "WarmupCosine: decay_steps must be >= 1, got ", o_.decay_steps);
  EVIT_CHECK(o_.warmup_lr >= 0.0, "WarmupCosine: warmup_lr must be >= 0, got ", o_.warmup_lr);
  EVIT_CHECK(o_.min_lr >= 0.0 && o_.min_lr <= o_.base_lr, "WarmupCosine: min_lr must lie in [0, base_lr = ",
             o_.base_lr, "], got ", o_.min_lr);
}

double WarmupCosine::lr_at(int64_t step) const {
  EVIT_CHECK(step >= 0, "WarmupCosine: step must be >= 0, got ", step);
  if (step < o_.warmup_steps)
    return o_.warmup_lr + (o_.base_lr - o_.warmup_lr) * static_cast<double>(step + 1) / static_cast<double>(o_.warmup_steps);
  const int64_t t = step - o_.warmup_steps;
  if (t >= o_.decay_steps) return o_.min_lr;
  const double c = std::cos(std::numbers::pi * static_cast<double>(t) / static_cast<double>(o_.decay_steps));
  return o_.min_lr + 0.5 * (o_.base_lr - o_.min_lr) * (1.0 + c);
}

TensorMap WarmupCosine::state_dict() const {
  return {{"step", full({}, static_cast<double>(step_), DType::i64)},
          {"warmup_steps", full({}, static_cast<double>(o_.warmup_steps), DType::i64)},
          {"decay_steps", full({}, static_cast<double>(o_.decay_steps), DType::i64)},
          {"base_lr", full({}, o_.base_lr, DType::f64)},
          {"warmup_lr", full({}, o_.warmup_lr, DType::f64)},
          {"min_lr", full({}, o_.min_lr, DType::f64)}};
}

void WarmupCosine::load_state_dict(const TensorMap& state, bool check_options) {
  auto it = state.find("step");
  EVIT_CHECK(it != state.end(), "WarmupCosine state: missing entry 'step'");
  EVIT_CHECK(it->second.numel() == 1 && it->second.dtype() == DType::i64, "WarmupCosine state: 'step' is ",
             it->second.desc(), ", expected an i64 scalar");
  const int64_t step = it->second.item<int64_t>();
  EVIT_CHECK(step >= 0, "WarmupCosine state: 'step' is negative (", step, ")");
  for (auto& [key, t] : state) {
    if (key == "step") continue;
    EVIT_CHECK(t.numel() == 1, "WarmupCosine state: '", key, "' is ", t.desc(), ", expected a scalar");
    double mine;
    if (key == "warmup_steps") mine = static_cast<double>(o_.warmup_steps);
    else if (key == "decay_steps") mine = static_cast<double>(o_.decay_steps);
    else if (key == "base_lr") mine = o_.base_lr;
    else if (key == "warmup_lr") mine = o_.warmup_lr;
    else if (key == "min_lr") mine = o_.min_lr;
    else EVIT_THROW("WarmupCosine state: unknown entry '", key, "'");
    const double saved = t.item<double>();
    EVIT_CHECK(!check_options || saved == mine, "WarmupCosine state: saved ", key, " = ", saved,
               " differs from this schedule's ", mine);
  }
  step_ = step;
}

}  // namespace evit::optim
