// Activation modules (no parameters; registered anyway so child indices match the reference),
// and Identity. make_activation("hswish") builds one from the reference registry names.
#pragma once
#include <functional>

#include "nn/module.h"

namespace evit::nn {

// A parameter-less module applying a tensor function.
// `variant` tells apart functions that share a type name (GELU's "tanh" approximation), for code
// that rebuilds the function elsewhere (the ONNX export).
class Lambda : public Module {
 public:
  Lambda(std::string type_name, std::function<Tensor(const Tensor&)> fn, std::string variant = "")
      : Module(std::move(type_name)), fn_(std::move(fn)), variant_(std::move(variant)) {}
  Tensor forward(const Tensor& x) override { return fn_(x); }
  const std::string& variant() const { return variant_; }

 private:
  std::function<Tensor(const Tensor&)> fn_;
  std::string variant_;
};

std::shared_ptr<Module> ReLU();
std::shared_ptr<Module> ReLU6();
std::shared_ptr<Module> Hardswish();
// approximate: "none" (erf) or "tanh".
std::shared_ptr<Module> GELU(const std::string& approximate = "none");
std::shared_ptr<Module> SiLU();
std::shared_ptr<Module> Sigmoid();
std::shared_ptr<Module> Tanh();
std::shared_ptr<Module> Identity();

// Registry names of the reference code: relu, relu6, hswish, silu, gelu (the tanh approximation,
// as EfficientViT's registry builds it), sigmoid, tanh. Throws naming the unknown name.
std::shared_ptr<Module> make_activation(const std::string& name);

}  // namespace evit::nn
