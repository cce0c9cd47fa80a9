#include "optim/grad_scaler.h"

#include <cmath>
#include <map>

#include "autograd/grad_mode.h"
#include "core/copy.h"
#include "core/parallel.h"
#include "ops/pointwise.h"
#include "optim/cuda_slots.h"

namespace evit::optim {

namespace {

// The f32 value nearest to x, as a double (torch keeps the scale in an f32 tensor).
double as_f32(double x) { return static_cast<double>(static_cast<float>(x)); }

// g *= inv_scale in place (g contiguous, on the CPU); returns whether every value was finite
// before scaling. One flag per fixed chunk, so no shared writes.
bool unscale_cpu(const Tensor& g, float inv_scale) {
  const int64_t n = g.numel();
  std::vector<unsigned char> bad(static_cast<size_t>(num_chunks(0, n, kPointwiseGrain)), 0);
  dispatch_floating(g.dtype(), "GradScaler.unscale_", [&](auto tag) {
    using T = decltype(tag);
    T* p = g.data_ptr<T>();
    const T inv = static_cast<T>(inv_scale);
    parallel_for(0, n, kPointwiseGrain, [&](int64_t b, int64_t e) {
      bool any = false;
      for (int64_t i = b; i < e; ++i) {
        any = any || !std::isfinite(p[i]);
        p[i] = p[i] * inv;
      }
      if (any) bad[static_cast<size_t>(b / kPointwiseGrain)] = 1;
    });
  });
  for (unsigned char b : bad)
    if (b) return false;
  return true;
}

}  // namespace

GradScaler::GradScaler(double init_scale, double growth_factor, double backoff_factor,
                       int64_t growth_interval, bool enabled)
    : scale_(as_f32(init_scale)),
      growth_factor_(growth_factor),
      backoff_factor_(backoff_factor),
      growth_interval_(growth_interval),
      enabled_(enabled) {
  EVIT_CHECK(std::isfinite(init_scale) && init_scale > 0.0, "GradScaler: init_scale must be > 0, got ",
             init_scale);
  EVIT_CHECK(growth_factor > 1.0, "GradScaler: growth_factor must be > 1, got ", growth_factor);
  EVIT_CHECK(backoff_factor > 0.0 && backoff_factor < 1.0,
             "GradScaler: backoff_factor must lie in (0, 1), got ", backoff_factor);
  EVIT_CHECK(growth_interval > 0, "GradScaler: growth_interval must be > 0, got ", growth_interval);
}

Tensor GradScaler::scale(const Tensor& loss) const {
  if (!enabled_) return loss;
  return mul(loss, scale_);
}

bool GradScaler::unscale_(const std::vector<Tensor>& params) {
  if (!enabled_) return true;
  EVIT_CHECK(stage_ != Stage::unscaled,
             "GradScaler: unscale_() has already been called since the last update()");
  EVIT_CHECK(stage_ != Stage::stepped, "GradScaler: unscale_() is being called after step()");
  NoGradGuard no_grad;
  // torch: inv_scale = 1 / scale computed in double, rounded to f32.
  const float inv_scale = static_cast<float>(1.0 / scale_);
  bool finite = true;
  // CUDA gradients per device as contiguous working tensors (strided ones are copied back).
  struct DeviceWork {
    std::vector<Tensor> grads, work;
  };
  std::map<int, DeviceWork> cuda;
  for (size_t i = 0; i < params.size(); ++i) {
    EVIT_CHECK(params[i].defined(), "GradScaler.unscale_: parameter ", i, " is undefined");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    EVIT_CHECK(is_floating(g.dtype()), "GradScaler.unscale_: gradient of parameter ", i, " is ",
               g.desc());
    Tensor c = g.contiguous();
    if (g.device().is_cuda()) {
      DeviceWork& w = cuda[g.device().index];
      w.grads.push_back(g);
      w.work.push_back(c);
      continue;
    }
    finite = unscale_cpu(c, inv_scale) && finite;
    if (!c.is_same(g)) copy_elements(g, c);
    g.bump_version();
  }
  for (auto& [device, w] : cuda) {
    finite = unscale_grads_cuda(w.work, inv_scale) && finite;
    for (size_t i = 0; i < w.grads.size(); ++i) {
      if (!w.work[i].is_same(w.grads[i])) copy_elements(w.grads[i], w.work[i]);
      w.grads[i].bump_version();
    }
  }
  found_inf_ = !finite;
  stage_ = Stage::unscaled;
  return finite;
}

bool GradScaler::step(const std::vector<Tensor>& params, const std::function<void()>& optimizer_step) {
  if (!enabled_) {
    optimizer_step();
    return true;
  }
  EVIT_CHECK(stage_ != Stage::stepped, "GradScaler: step() has already been called since the last update()");
  if (stage_ == Stage::ready) unscale_(params);
  stage_ = Stage::stepped;
  if (found_inf_) return false;  // skip: the gradients hold inf/NaN
  optimizer_step();
  return true;
}

void GradScaler::update() {
  if (!enabled_) return;
  EVIT_CHECK(stage_ != Stage::ready,
             "GradScaler: update() without step() or unscale_() since the last update()");
  if (found_inf_) {
    scale_ = as_f32(scale_ * backoff_factor_);
    growth_tracker_ = 0;
  } else {
    const int64_t successful = growth_tracker_ + 1;
    if (successful == growth_interval_) {
      const double grown = as_f32(scale_ * growth_factor_);
      if (std::isfinite(grown)) scale_ = grown;  // an overflowing scale is not kept
      growth_tracker_ = 0;
    } else {
      growth_tracker_ = successful;
    }
  }
  stage_ = Stage::ready;
  found_inf_ = false;
}

TensorMap GradScaler::state_dict() const {
  TensorMap out;
  out["scale"] = full({}, scale_, DType::f64);
  out["growth_tracker"] = full({}, static_cast<double>(growth_tracker_), DType::i64);
  out["growth_factor"] = full({}, growth_factor_, DType::f64);
  out["backoff_factor"] = full({}, backoff_factor_, DType::f64);
  out["growth_interval"] = full({}, static_cast<double>(growth_interval_), DType::i64);
  return out;
}

void GradScaler::load_state_dict(const TensorMap& state) {
  EVIT_CHECK(state.count("scale") && state.count("growth_tracker"),
             "GradScaler state: 'scale' and 'growth_tracker' are required");
  for (auto& [key, t] : state) {
    EVIT_CHECK(key == "scale" || key == "growth_tracker" || key == "growth_factor" ||
                   key == "backoff_factor" || key == "growth_interval",
               "GradScaler state: unknown entry '", key, "'");
    EVIT_CHECK(t.numel() == 1, "GradScaler state: '", key, "' is ", t.desc(), ", expected one value");
  }
  const double scale = state.at("scale").item<double>();
  const int64_t tracker = state.at("growth_tracker").item<int64_t>();
  EVIT_CHECK(std::isfinite(scale) && scale > 0.0, "GradScaler state: scale ", scale, " is not > 0");
  EVIT_CHECK(tracker >= 0, "GradScaler state: growth_tracker ", tracker, " is negative");
  scale_ = as_f32(scale);
  growth_tracker_ = tracker;
  if (state.count("growth_factor")) growth_factor_ = state.at("growth_factor").item<double>();
  if (state.count("backoff_factor")) backoff_factor_ = state.at("backoff_factor").item<double>();
  if (state.count("growth_interval")) growth_interval_ = state.at("growth_interval").item<int64_t>();
  stage_ = Stage::ready;
  found_inf_ = false;
}

}  // namespace evit::optim
