#include "nn/activation.h"

#include "ops/activation.h"

namespace evit::nn {

std::shared_ptr<Module> ReLU() { return std::make_shared<Lambda>("ReLU", [](const Tensor& x) { return relu(x); }); }
std::shared_ptr<Module> ReLU6() { return std::make_shared<Lambda>("ReLU6", [](const Tensor& x) { return relu6(x); }); }
std::shared_ptr<Module> Hardswish() {
  return std::make_shared<Lambda>("Hardswish", [](const Tensor& x) { return hardswish(x); });
}
std::shared_ptr<Module> GELU(const std::string& approximate) {
  EVIT_CHECK(approximate == "none" || approximate == "tanh", "GELU: approximate must be 'none' or ",
             "'tanh', got '", approximate, "'");
  if (approximate == "tanh")
    return std::make_shared<Lambda>("GELU", [](const Tensor& x) { return gelu_tanh(x); }, "tanh");
  return std::make_shared<Lambda>("GELU", [](const Tensor& x) { return gelu(x); });
}
std::shared_ptr<Module> SiLU() { return std::make_shared<Lambda>("SiLU", [](const Tensor& x) { return silu(x); }); }
std::shared_ptr<Module> Sigmoid() {
  return std::make_shared<Lambda>("Sigmoid", [](const Tensor& x) { return sigmoid(x); });
}
std::shared_ptr<Module> Tanh() { return std::make_shared<Lambda>("Tanh", [](const Tensor& x) { return tanh(x); }); }
std::shared_ptr<Module> Identity() { return std::make_shared<Lambda>("Identity", [](const Tensor& x) { return x; }); }

std::shared_ptr<Module> make_activation(const std::string& name) {
  if (name == "relu") return ReLU();
  if (name == "relu6") return ReLU6();
  if (name == "hswish") return Hardswish();
  if (name == "silu") return SiLU();
  if (name == "gelu") return GELU("tanh");
  if (name == "sigmoid") return Sigmoid();
  if (name == "tanh") return Tanh();
  EVIT_THROW("unknown activation '", name, "' (known: relu, relu6, hswish, silu, gelu, sigmoid, tanh)");
}

}  // namespace evit::nn
