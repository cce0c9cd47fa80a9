// SGD exactly as torch.optim.SGD (torch 1.13, single-tensor path): weight decay added to the
// gradient, momentum buffer initialised to the first (decayed) gradient, dampening applied from
// the second step on, Nesterov look-ahead, optional maximize. Parameters are addressed by name,
// like AdamW, so the momentum state is saved and restored by name.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace evit::optim {

struct SGDOptions {
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

class SGD : public Optimizer {
 public:
  // Throws for negative lr / momentum / weight decay, Nesterov without momentum or with
  // dampening (torch's rules), a parameter listed twice or a non-floating parameter.
  SGD(std::vector<ParamGroup> groups, SGDOptions options = {});

  void step() override;
  const SGDOptions& options() const { return o_; }

  // "<param>.momentum_buffer" for every parameter whose buffer exists (momentum > 0 and at
  // least one step taken with a gradient), like torch's lazily created state.
  TensorMap state_dict() const override;
  // Restores the state; throws naming any entry that does not match a parameter or its shape.
  void load_state_dict(const TensorMap& state) override;

 private:
  SGDOptions o_;
  std::map<std::string, Tensor> shapes_;    // name -> parameter (for checks on load)
  std::map<std::string, Tensor> momentum_;  // name -> buffer (absent until first step)
};

}  // namespace evit::optim
