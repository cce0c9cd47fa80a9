// AdamW exactly as torch.optim.AdamW (amsgrad off): decoupled weight decay applied first,
// bias-corrected moments, eps added outside the square root. Parameters are addressed by name,
// so optimizer state survives a change of parameter order and is saved by name.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "nn/module.h"

namespace evit::optim {

struct ParamGroup {
  std::vector<std::pair<std::string, Tensor>> params;  // (name, parameter)
  double lr = 1e-3;
  double weight_decay = 0.0;
};

// Splits a module's parameters in two groups: decayed, and not decayed when the name contains
// one of `no_decay_keywords` (the reference recipe: "norm" and "bias").
std::vector<ParamGroup> param_groups_by_name(const nn::Module& m, double lr, double weight_decay,
                                             const std::vector<std::string>& no_decay_keywords = {"norm", "bias"});

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

class AdamW {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});

  // One update of every parameter that has a gradient (others are skipped, as in PyTorch).
  void step();
  void zero_grad();
  std::vector<ParamGroup>& groups() { return groups_; }
  void set_lr(double lr);  // every group

  // "<param>.exp_avg", "<param>.exp_avg_sq" (f32/f64 like the parameter) and "<param>.step" (i64).
  TensorMap state_dict() const;
  // Restores the state; throws naming any entry that does not match a parameter.
  void load_state_dict(const TensorMap& state);

 private:
  struct State {
    Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  std::vector<ParamGroup> groups_;
  AdamWOptions o_;
  std::map<std::string, State> state_;
};

}  // namespace evit::optim
