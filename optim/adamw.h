// AdamW exactly as torch.optim.AdamW (amsgrad off): decoupled weight decay applied first,
// bias-corrected moments, eps added outside the square root. Parameters are addressed by name,
// so optimizer state survives a change of parameter order and is saved by name.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace evit::optim {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});

  void step() override;

  // "<param>.exp_avg", "<param>.exp_avg_sq" (f32/f64 like the parameter) and "<param>.step" (i64).
  TensorMap state_dict() const override;
  void load_state_dict(const TensorMap& state) override;

 private:
  struct State {
    Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  AdamWOptions o_;
  std::map<std::string, State> state_;
};

}  // namespace evit::optim
