#include "optim/optimizer.h"

#include <set>

namespace evit::optim {

std::vector<ParamGroup> param_groups_by_name(const nn::Module& m, double lr, double weight_decay,
                                             const std::vector<std::string>& no_decay_keywords) {
  ParamGroup decay{{}, lr, weight_decay}, no_decay{{}, lr, 0.0};
  for (auto& [name, p] : m.named_parameters()) {
    bool skip = false;
    for (auto& k : no_decay_keywords) skip = skip || name.find(k) != std::string::npos;
    (skip ? no_decay : decay).params.emplace_back(name, p);
  }
  std::vector<ParamGroup> out;
  if (!decay.params.empty()) out.push_back(decay);
  if (!no_decay.params.empty()) out.push_back(no_decay);
  return out;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, const char* kind) : groups_(std::move(groups)) {
  std::set<std::string> seen;
  for (auto& g : groups_)
    for (auto& [name, p] : g.params) {
      EVIT_CHECK(seen.insert(name).second, kind, ": parameter '", name, "' appears in two groups");
      EVIT_CHECK(p.defined() && is_floating(p.dtype()), kind, ": parameter '", name, "' is ",
                 p.defined() ? p.desc() : std::string("undefined"));
    }
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& [name, p] : g.params) p.set_grad(Tensor());
}

void Optimizer::set_lr(double lr) {
  for (auto& g : groups_) g.lr = lr;
}

}  // namespace evit::optim
