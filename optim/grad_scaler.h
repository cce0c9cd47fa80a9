// Dynamic loss scaling for f16 mixed-precision training, like torch.cuda.amp.GradScaler:
//
//   GradScaler scaler;                       // scale 65536, x2 every 2000 good steps, x0.5 on inf
//   scaler.scale(loss).backward();           // gradients of loss * scale
//   scaler.unscale_(optimizer);              // optional: gradients / scale (e.g. before clipping)
//   scaler.step(optimizer);                  // unscales if not done yet; skips on inf/NaN grads
//   scaler.update();                         // backoff after a skipped step, growth after
//                                            // growth_interval good ones
//
// The scale lives on the host as an f32 value (torch keeps an f32 tensor); the update rule is
// torch's _amp_update_scale_. unscale_ multiplies every gradient by the f32 value 1/scale and
// reports whether all of them were finite: one fused multi-tensor kernel per CUDA device, a
// plain loop on the CPU. Works for any mix of CPU and CUDA parameters.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"
#include "optim/optimizer.h"

namespace evit::optim {

class GradScaler {
 public:
  // Throws for a non-positive scale or interval, growth_factor <= 1 or backoff outside (0, 1).
  // A disabled scaler passes everything through (scale() returns the loss, step() just steps).
  explicit GradScaler(double init_scale = 65536.0, double growth_factor = 2.0,
                      double backoff_factor = 0.5, int64_t growth_interval = 2000,
                      bool enabled = true);

  // loss * scale (recorded by autograd).
  Tensor scale(const Tensor& loss) const;

  // Multiplies the gradient of every parameter that has one by 1/scale, in place; returns true
  // when every gradient value was finite. At most once between two update() calls.
  bool unscale_(const std::vector<Tensor>& params);
  bool unscale_(const Optimizer& opt) { return unscale_(params_of(opt)); }

  // Unscales the gradients (unless unscale_ already did), then runs optimizer_step unless a
  // gradient was inf/NaN. Returns whether the step ran. At most once between update() calls.
  bool step(const std::vector<Tensor>& params, const std::function<void()>& optimizer_step);
  bool step(Optimizer& opt) {
    return step(params_of(opt), [&opt] { opt.step(); });
  }

  // After the step: found inf -> scale *= backoff_factor and the growth tracker restarts;
  // otherwise the tracker counts the good step and, at growth_interval, scale *= growth_factor
  // (kept only when finite) and the tracker restarts. Throws if neither step() nor unscale_()
  // ran since the last update.
  void update();

  double get_scale() const { return scale_; }
  int64_t growth_tracker() const { return growth_tracker_; }
  bool is_enabled() const { return enabled_; }
  // Whether the last unscale_ since update() found an inf/NaN gradient.
  bool found_inf() const { return found_inf_; }

  // "scale" (f64), "growth_tracker" (i64), "growth_factor", "backoff_factor" (f64),
  // "growth_interval" (i64).
  TensorMap state_dict() const;
  // Restores the entries above; "scale" and "growth_tracker" are required, unknown keys throw.
  void load_state_dict(const TensorMap& state);

 private:
  static std::vector<Tensor> params_of(const Optimizer& opt) {
    std::vector<Tensor> out;
    for (auto& g : opt.groups())
      for (auto& named : g.params) out.push_back(named.second);
    return out;
  }

  enum class Stage { ready, unscaled, stepped };
  double scale_;  // always an f32 value
  double growth_factor_, backoff_factor_;
  int64_t growth_interval_;
  int64_t growth_tracker_ = 0;
  bool enabled_;
  Stage stage_ = Stage::ready;
  bool found_inf_ = false;
};

}  // namespace evit::optim
