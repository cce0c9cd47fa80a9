#include "zoo/profile.h"

#include "autograd/grad_mode.h"
#include "nn/macs.h"

namespace evit::zoo {

ModelProfile profile_model(Model& model, const Shape& input) {
  ModelProfile p;
  p.params = model.num_parameters();
  const bool was_training = model.is_training();
  model.eval();
  {
    NoGradGuard no_grad;
    nn::MacCounter counter;
    model.forward(zeros(input));
    p.macs = counter.total();
  }
  model.train(was_training);
  return p;
}

}  // namespace evit::zoo
