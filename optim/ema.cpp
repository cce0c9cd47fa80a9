#include "optim/ema.h"

#include <cmath>
#include <map>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/copy.h"
#include "core/parallel.h"
#include "optim/cuda_slots.h"

namespace evit::optim {

EMA::EMA(const nn::Module& model, EMAOptions options) : o_(options) {
  EVIT_CHECK(o_.decay >= 0.0 && o_.decay <= 1.0, "EMA: decay must lie in [0, 1], got ", o_.decay);
  EVIT_CHECK(o_.warmup_steps >= 0.0, "EMA: warmup_steps must be >= 0, got ", o_.warmup_steps);
  NoGradGuard no_grad;
  for (auto& [name, t] : model.state_dict())
    if (is_floating(t.dtype())) shadow_[name] = t.detach().contiguous().clone();
  EVIT_CHECK(!shadow_.empty(), "EMA: the model has no floating state to average");
}

double EMA::decay_at(int64_t step) const {
  EVIT_CHECK(step >= 0, "EMA: step must be >= 0, got ", step);
  if (o_.warmup_steps == 0.0) return o_.decay;
  return o_.decay * (1.0 - std::exp(-static_cast<double>(step) / o_.warmup_steps));
}

void EMA::update(const nn::Module& model, int64_t step) {
  NoGradGuard no_grad;
  const double d = decay_at(step);
  TensorMap state = model.state_dict();
  // CUDA entries are collected per device and updated by one multi-tensor launch each.
  std::map<int, std::pair<std::vector<Tensor>, std::vector<Tensor>>> cuda_pairs;
  for (auto& entry : shadow_) {
    const std::string& name = entry.first;
    Tensor& e = entry.second;  // a reference, not a binding: the kernel lambdas capture it
    auto it = state.find(name);
    EVIT_CHECK(it != state.end(), "EMA: the model has no entry '", name, "'");
    const Tensor& m = it->second;
    EVIT_CHECK(m.sizes() == e.sizes() && m.dtype() == e.dtype(), "EMA: model entry '", name, "' is ", m.desc(),
               ", shadow is ", e.desc());
    EVIT_CHECK(m.device() == e.device(), "EMA: model entry '", name, "' is on ", m.device().str(),
               ", its shadow on ", e.device().str());
    Tensor mc = m.contiguous();
    if (e.device().is_cuda()) {
      auto& [shadows, models] = cuda_pairs[e.device().index];
      shadows.push_back(e);
      models.push_back(mc);
      e.bump_version();
      continue;
    }
    dispatch_floating(e.dtype(), "EMA", [&](auto tag) {
      using T = decltype(tag);
      T* ep = e.data_ptr<T>();
      const T* mp = mc.data_ptr<T>();
      const T a = static_cast<T>(1.0 - d);  // the scalar in the tensor's dtype, as torch does
      parallel_for(0, e.numel(), kPointwiseGrain, [&](int64_t b, int64_t end) {
        for (int64_t i = b; i < end; ++i) ep[i] -= a * (ep[i] - mp[i]);
      });
    });
    e.bump_version();
  }
  for (auto& [device, pair] : cuda_pairs) ema_update_cuda(pair.first, pair.second, 1.0 - d);
}

void EMA::copy_to(nn::Module& model) const {
  NoGradGuard no_grad;
  TensorMap state = model.state_dict();
  // Check everything before writing anything, so a mismatch leaves the model untouched.
  for (auto& [name, e] : shadow_) {
    auto it = state.find(name);
    EVIT_CHECK(it != state.end(), "EMA: the model has no entry '", name, "'");
    EVIT_CHECK(it->second.sizes() == e.sizes() && it->second.dtype() == e.dtype(), "EMA: model entry '", name,
               "' is ", it->second.desc(), ", shadow is ", e.desc());
  }
  // In place, so every alias of the model's tensors sees the averaged values.
  for (auto& [name, e] : shadow_) {
    const Tensor& dst = state.at(name);
    copy_elements(dst, e);
    dst.bump_version();
  }
}

TensorMap EMA::state_dict() const {
  TensorMap out;
  for (auto& [name, e] : shadow_) out[name] = e.detach();
  return out;
}

void EMA::load_state_dict(const TensorMap& state) {
  NoGradGuard no_grad;
  TensorMap next;
  for (auto& [name, t] : state) {
    auto it = shadow_.find(name);
    EVIT_CHECK(it != shadow_.end(), "EMA state: '", name, "' is not a floating entry of the model");
    EVIT_CHECK(t.sizes() == it->second.sizes(), "EMA state: '", name, "' has shape ", shape_str(t.sizes()),
               ", model has ", shape_str(it->second.sizes()));
    EVIT_CHECK(is_floating(t.dtype()), "EMA state: '", name, "' is ", t.desc());
    next[name] = t.to(it->second.dtype()).to(it->second.device()).contiguous().clone();
  }
  for (auto& [name, e] : shadow_) EVIT_CHECK(next.count(name), "EMA state: missing entry '", name, "'");
  shadow_ = std::move(next);
}

void EMA::save(const std::string& path) const { save_safetensors(path, state_dict(), {{"format", "evit-ema"}}); }

void EMA::load(const std::string& path) {
  // load_safetensors names the file itself; state mismatches get the file name prepended.
  TensorMap state = load_safetensors(path);
  try {
    load_state_dict(state);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace evit::optim
