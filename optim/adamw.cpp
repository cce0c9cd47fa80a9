#include "optim/adamw.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "core/parallel.h"
#include "optim/cuda_slots.h"

namespace evit::optim {
namespace {

// The update of n elements. The arrays never overlap (a parameter, its gradient and its two
// moment buffers); saying so (__restrict) lets the compiler vectorise the loop, sqrt and divide
// included, with the same operations per element.
template <class T>
void adamw_update(T* __restrict w, T* __restrict m, T* __restrict v, const T* __restrict g, int64_t n, T b1,
                  T b2, T eps, T step_size, T bc2_sqrt, T decay) {
  for (int64_t i = 0; i < n; ++i) {
    w[i] *= decay;
    m[i] = b1 * m[i] + (T(1) - b1) * g[i];
    v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
    w[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
  }
}

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options) : Optimizer(std::move(groups), "AdamW"), o_(options) {
  for (auto& g : groups_)
    for (auto& [name, p] : g.params) state_[name] = State{zeros_like(p), zeros_like(p), 0};
}

void AdamW::step() {
  NoGradGuard no_grad;
  // CUDA parameters are collected per device and updated by one multi-tensor launch each.
  std::map<int, std::vector<AdamWCudaItem>> cuda_items;
  for (auto& g : groups_) {
    for (auto& named : g.params) {
      const std::string& name = named.first;
      Tensor& p = named.second;  // a reference, not a binding: the kernel lambdas capture it
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      State& s = state_.at(name);
      if (s.exp_avg.device() != p.device()) {  // the parameter moved after construction / load
        s.exp_avg = s.exp_avg.to(p.device());
        s.exp_avg_sq = s.exp_avg_sq.to(p.device());
      }
      s.step += 1;
      const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(s.step));
      const double bc2 = 1.0 - std::pow(o_.beta2, static_cast<double>(s.step));
      const double step_size = g.lr / bc1;
      const double bc2_sqrt = std::sqrt(bc2);
      const double decay = 1.0 - g.lr * g.weight_decay;
      Tensor gc = grad.contiguous();
      EVIT_CHECK(p.is_contiguous(), "AdamW: parameter '", name, "' is not contiguous");
      if (p.device().is_cuda()) {
        EVIT_CHECK(gc.device() == p.device() && gc.dtype() == p.dtype() && gc.sizes() == p.sizes(),
                   "AdamW: parameter '", name, "' is ", p.desc(), ", its gradient ", gc.desc());
        cuda_items[p.device().index].push_back(
            AdamWCudaItem{p, gc, s.exp_avg, s.exp_avg_sq, step_size, bc2_sqrt, decay});
        p.bump_version();
        continue;
      }
      dispatch_floating(p.dtype(), "AdamW", [&](auto tag) {
        using T = decltype(tag);
        T* w = p.data_ptr<T>();
        const T* gr = gc.data_ptr<T>();
        T* m = s.exp_avg.data_ptr<T>();
        T* v = s.exp_avg_sq.data_ptr<T>();
        const T b1 = static_cast<T>(o_.beta1), b2 = static_cast<T>(o_.beta2);
        const T eps = static_cast<T>(o_.eps), ss = static_cast<T>(step_size);
        const T c2 = static_cast<T>(bc2_sqrt), dec = static_cast<T>(decay);
        parallel_for(0, p.numel(), kPointwiseGrain, [&](int64_t b, int64_t e) {
          adamw_update(w + b, m + b, v + b, gr + b, e - b, b1, b2, eps, ss, c2, dec);
        });
      });
      p.bump_version();
    }
  }
  for (auto& [device, items] : cuda_items) adamw_step_cuda(items, o_.beta1, o_.beta2, o_.eps);
}

TensorMap AdamW::state_dict() const {
  TensorMap out;
  for (auto& [name, s] : state_) {
    out[name + ".exp_avg"] = s.exp_avg.detach();
    out[name + ".exp_avg_sq"] = s.exp_avg_sq.detach();
    out[name + ".step"] = full({}, static_cast<double>(s.step), DType::i64);
  }
  return out;
}

void AdamW::load_state_dict(const TensorMap& state) {
  NoGradGuard no_grad;
  for (auto& [key, t] : state) {
    auto dot = key.rfind('.');
    EVIT_CHECK(dot != std::string::npos, "AdamW state: bad key '", key, "'");
    std::string name = key.substr(0, dot), field = key.substr(dot + 1);
    auto it = state_.find(name);
    EVIT_CHECK(it != state_.end(), "AdamW state: '", key, "' names no parameter of this optimizer");
    State& s = it->second;
    if (field == "step") {
      s.step = t.item<int64_t>();
    } else if (field == "exp_avg" || field == "exp_avg_sq") {
      Tensor& dst = field == "exp_avg" ? s.exp_avg : s.exp_avg_sq;
      EVIT_CHECK(t.sizes() == dst.sizes(), "AdamW state: '", key, "' has shape ", shape_str(t.sizes()),
                 ", parameter has ", shape_str(dst.sizes()));
      dst = t.to(dst.dtype()).to(dst.device()).contiguous().clone();  // stays on the parameter's device
    } else {
      EVIT_THROW("AdamW state: unknown field in '", key, "'");
    }
  }
}

}  // namespace evit::optim
