// The optimizer interface: parameter groups addressed by name, one update per step(), and a
// state dict keyed by parameter name (so state survives a change of parameter order and is
// saved with the checkpoint). AdamW and SGD implement it; the trainer, the loss scaler and the
// checkpoint code hold an Optimizer and never ask which one it is.
#pragma once
#include <memory>
#include <string>
#include <utility>
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

class Optimizer {
 public:
  // `kind` names the optimizer in error messages ("AdamW", "SGD"). Throws for a parameter listed
  // twice or a non-floating parameter.
  Optimizer(std::vector<ParamGroup> groups, const char* kind);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (others are skipped, as in PyTorch).
  virtual void step() = 0;
  // Drops every parameter's gradient.
  void zero_grad();
  std::vector<ParamGroup>& groups() { return groups_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  void set_lr(double lr);  // every group

  virtual TensorMap state_dict() const = 0;
  // Restores the state; throws naming any entry that does not match a parameter.
  virtual void load_state_dict(const TensorMap& state) = 0;

 protected:
  std::vector<ParamGroup> groups_;
};

}  // namespace evit::optim
