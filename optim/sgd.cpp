#include "optim/sgd.h"

#include "autograd/grad_mode.h"
#include "core/parallel.h"
#include "optim/cuda_slots.h"

namespace evit::optim {

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options) : Optimizer(std::move(groups), "SGD"), o_(options) {
  EVIT_CHECK(o_.momentum >= 0.0, "SGD: invalid momentum ", o_.momentum);
  EVIT_CHECK(!o_.nesterov || (o_.momentum > 0.0 && o_.dampening == 0.0),
             "SGD: Nesterov momentum requires a momentum and zero dampening");
  for (auto& g : groups_) {
    EVIT_CHECK(g.lr >= 0.0, "SGD: invalid learning rate ", g.lr);
    EVIT_CHECK(g.weight_decay >= 0.0, "SGD: invalid weight_decay ", g.weight_decay);
    for (auto& [name, p] : g.params) shapes_[name] = p;
  }
}

void SGD::step() {
  NoGradGuard no_grad;
  // CUDA parameters are collected per device and updated by one multi-tensor launch each.
  std::map<int, std::vector<SGDCudaItem>> cuda_items;
  for (auto& g : groups_) {
    for (auto& named : g.params) {
      const std::string& name = named.first;
      Tensor& p = named.second;  // a reference, not a binding: the kernel lambdas capture it
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      EVIT_CHECK(p.is_contiguous(), "SGD: parameter '", name, "' is not contiguous");
      EVIT_CHECK(grad.sizes() == p.sizes() && grad.dtype() == p.dtype(), "SGD: gradient of '", name,
                 "' is ", grad.desc(), ", parameter is ", p.desc());
      Tensor gc = grad.contiguous();
      const bool use_momentum = o_.momentum != 0.0;
      // torch creates the buffer as a clone of the first decayed gradient (no dampening then).
      bool first = false;
      Tensor buf;
      if (use_momentum) {
        auto it = momentum_.find(name);
        if (it == momentum_.end()) {
          first = true;
          it = momentum_.emplace(name, zeros_like(p)).first;
        }
        if (it->second.device() != p.device()) it->second = it->second.to(p.device());  // moved
        buf = it->second;
      }
      if (p.device().is_cuda()) {
        EVIT_CHECK(gc.device() == p.device() && (!buf.defined() || buf.device() == p.device()),
                   "SGD: parameter '", name, "' is ", p.desc(), ", its gradient ", gc.desc(),
                   buf.defined() ? ", its momentum buffer " + buf.desc() : std::string());
        cuda_items[p.device().index].push_back(SGDCudaItem{p, gc, buf, first, g.lr, g.weight_decay});
        p.bump_version();
        continue;
      }
      dispatch_floating(p.dtype(), "SGD", [&](auto tag) {
        using T = decltype(tag);
        T* w = p.data_ptr<T>();
        const T* gr = gc.data_ptr<T>();
        T* b = use_momentum ? buf.data_ptr<T>() : nullptr;
        // Scalars are rounded to the parameter's dtype, as torch's kernels do.
        const T wd = static_cast<T>(g.weight_decay), mom = static_cast<T>(o_.momentum);
        const T one_minus_damp = static_cast<T>(1.0 - o_.dampening), lr = static_cast<T>(g.lr);
        const bool has_wd = g.weight_decay != 0.0, nesterov = o_.nesterov, maximize = o_.maximize;
        parallel_for(0, p.numel(), kPointwiseGrain, [&](int64_t s, int64_t e) {
          for (int64_t i = s; i < e; ++i) {
            T d = maximize ? -gr[i] : gr[i];
            if (has_wd) d = d + wd * w[i];
            if (b) {
              b[i] = first ? d : b[i] * mom + one_minus_damp * d;
              d = nesterov ? d + mom * b[i] : b[i];
            }
            w[i] = w[i] + (-lr) * d;
          }
        });
      });
      p.bump_version();
    }
  }
  for (auto& [device, items] : cuda_items)
    sgd_step_cuda(items, o_.momentum, o_.dampening, o_.nesterov, o_.maximize);
}

TensorMap SGD::state_dict() const {
  TensorMap out;
  for (auto& [name, b] : momentum_) out[name + ".momentum_buffer"] = b.detach();
  return out;
}

void SGD::load_state_dict(const TensorMap& state) {
  NoGradGuard no_grad;
  const std::string suffix = ".momentum_buffer";
  std::map<std::string, Tensor> loaded;
  for (auto& [key, t] : state) {
    EVIT_CHECK(key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0,
               "SGD state: unknown entry '", key, "' (expected '<param>.momentum_buffer')");
    std::string name = key.substr(0, key.size() - suffix.size());
    auto it = shapes_.find(name);
    EVIT_CHECK(it != shapes_.end(), "SGD state: '", key, "' names no parameter of this optimizer");
    EVIT_CHECK(t.sizes() == it->second.sizes(), "SGD state: '", key, "' has shape ", shape_str(t.sizes()),
               ", parameter has ", shape_str(it->second.sizes()));
    EVIT_CHECK(is_floating(t.dtype()), "SGD state: '", key, "' is ", t.desc());
    loaded[name] = t.to(it->second.dtype()).to(it->second.device()).contiguous().clone();
  }
  // Parameters without an entry have not stepped yet: their buffer is created on the next step.
  momentum_ = std::move(loaded);
}

}  // namespace evit::optim
