#include "train/onnx/onnx_emitter.h"

#include <cstdio>
#include <unordered_map>

#include "core/error.h"
#include "nn/activation.h"

namespace evit::train {
namespace {

struct Registry {
  std::unordered_map<std::type_index, OnnxModuleEmitter> by_type;
  std::unordered_map<std::string, OnnxModuleEmitter> lambdas;
};

Registry& registry() {
  static Registry r;
  return r;
}

std::string constant_key(const char* kind, const std::string& text) { return std::string(kind) + ":" + text; }

}  // namespace

OnnxEmitterRegistrar::OnnxEmitterRegistrar(std::type_index type, OnnxModuleEmitter emitter) {
  registry().by_type[type] = std::move(emitter);
}

OnnxEmitterRegistrar::OnnxEmitterRegistrar(const std::string& lambda_type_name, OnnxModuleEmitter emitter) {
  registry().lambdas[lambda_type_name] = std::move(emitter);
}

std::string onnx_child_path(const std::string& path, const std::string& child) {
  return path.empty() ? child : path + "." + child;
}

OnnxValue OnnxEmitter::emit(nn::Module& m, const std::string& path, const OnnxValue& x) {
  const Registry& r = registry();
  if (dynamic_cast<nn::Lambda*>(&m) != nullptr) {
    auto it = r.lambdas.find(m.type_name());
    EVIT_CHECK(it != r.lambdas.end(), "ONNX export: no emitter for the function module '", path, "' (",
               m.type_name(), ")");
    return it->second(m, path, x, *this);
  }
  auto it = r.by_type.find(std::type_index(typeid(m)));
  EVIT_CHECK(it != r.by_type.end(), "ONNX export: no emitter for module '", path.empty() ? "(model)" : path,
             "' of type ", m.type_name(), " (docs/deployment.md says how to add one)");
  return it->second(m, path, x, *this);
}

OnnxValue OnnxEmitter::emit_children(nn::Module& m, const std::string& path, const OnnxValue& x) {
  OnnxValue y = x;
  for (auto& [name, child] : m.named_children()) y = emit(*child, onnx_child_path(path, name), y);
  return y;
}

OnnxValue OnnxEmitter::node(const std::string& op, const std::vector<std::string>& inputs, const Tensor& example,
                            OnnxType type, const std::string& hint, const std::vector<OnnxAttr>& attrs) {
  return {graph_.add_node(op, inputs, attrs, hint).at(0), example, type};
}

std::string OnnxEmitter::weight(const std::string& key, const Tensor& t) {
  return graph_.add_initializer(key, t, compute_type_);
}

std::string OnnxEmitter::scalar(double v, OnnxType type) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g/%s", v, onnx_type_name(type));
  auto [it, added] = constants_.try_emplace(constant_key("scalar", text));
  if (added) {
    it->second = graph_.fresh_name("const");
    graph_.add_initializer(it->second, from_vector(std::vector<double>{v}, Shape{}), type);
  }
  return it->second;
}

std::string OnnxEmitter::ints(const std::vector<int64_t>& v) {
  std::string text;
  for (int64_t i : v) text += std::to_string(i) + ",";
  auto [it, added] = constants_.try_emplace(constant_key("ints", text));
  if (added) {
    it->second = graph_.fresh_name("ints");
    graph_.add_ints(it->second, v);
  }
  return it->second;
}

std::string OnnxEmitter::empty_floats() {
  auto [it, added] = constants_.try_emplace(constant_key("empty", ""));
  if (added) {
    it->second = graph_.fresh_name("empty");
    graph_.add_initializer(it->second, from_vector(std::vector<float>{}, Shape{0}), OnnxType::f32);
  }
  return it->second;
}

OnnxValue OnnxEmitter::cast(const OnnxValue& x, OnnxType to, const std::string& hint) {
  if (x.type == to) return x;
  const int64_t proto = to == OnnxType::f32 ? 1 : to == OnnxType::f16 ? 10 : 7;  // TensorProto enum
  return node("Cast", {x.name}, x.example, to, hint, {{"to", proto}});
}

}  // namespace evit::train
