// Module-by-module ONNX emission: each module type has an emitter that writes its own nodes from
// its (BatchNorm-folded) weights; there is no tracing. An emitter gets the module, its key path
// (initializers are named by the state-dict keys, so a graph reads like the checkpoint) and the
// input value, and returns the output value.
//
// Every value carries `example`: evit's own result for that value at the export's example input.
// The emitters read static shapes off it (spatial sizes for Reshape, the token count that picks
// the linear or the quadratic attention form), so the graph always has the shapes evit computes.
//
// Adding a module type: write its emitter and register it next to the others (emit_nn.cpp for nn
// layers, emit_efficientvit.cpp for the model zoo's blocks); docs/deployment.md has the op list.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <typeindex>
#include <vector>

#include "nn/module.h"
#include "train/onnx/onnx_graph.h"

namespace evit::train {

struct OnnxValue {
  std::string name;
  Tensor example;  // evit's value at the example input (batch as exported)
  OnnxType type = OnnxType::f32;
};

class OnnxEmitter {
 public:
  // compute_type: f32, or f16 for a half-precision graph (weights and activations in f16; the
  // emitters that need f32 cast around themselves).
  OnnxEmitter(OnnxGraph& graph, OnnxType compute_type) : graph_(graph), compute_type_(compute_type) {}

  OnnxGraph& graph() { return graph_; }
  int64_t opset() const { return graph_.opset(); }
  OnnxType compute_type() const { return compute_type_; }

  // Emits `m` applied to `x` with the emitter registered for m's type; throws naming the module
  // path and type when there is none.
  OnnxValue emit(nn::Module& m, const std::string& path, const OnnxValue& x);
  // Emits m's children one after the other, in registration order (the forward order of the
  // chain modules: Sequential, OpSequential, DSConv, MBConv, ...).
  OnnxValue emit_children(nn::Module& m, const std::string& path, const OnnxValue& x);

  // One node with one output of the given type whose evit value is `example`.
  OnnxValue node(const std::string& op, const std::vector<std::string>& inputs, const Tensor& example,
                 OnnxType type, const std::string& hint, const std::vector<OnnxAttr>& attrs = {});
  // A node of the same type as x.
  OnnxValue unary(const std::string& op, const OnnxValue& x, const Tensor& example, const std::string& hint,
                  const std::vector<OnnxAttr>& attrs = {}) {
    return node(op, {x.name}, example, x.type, hint, attrs);
  }

  // A weight under its state-dict key, in the compute type.
  std::string weight(const std::string& key, const Tensor& t);
  // Shared constants: a 0-d floating scalar of `type`, an i64 vector, an empty f32 tensor.
  std::string scalar(double v, OnnxType type);
  std::string ints(const std::vector<int64_t>& v);
  std::string empty_floats();
  // x converted to `to` (no node when it already is).
  OnnxValue cast(const OnnxValue& x, OnnxType to, const std::string& hint);

 private:
  OnnxGraph& graph_;
  OnnxType compute_type_;
  std::map<std::string, std::string> constants_;
};

using OnnxModuleEmitter =
    std::function<OnnxValue(nn::Module& m, const std::string& path, const OnnxValue& x, OnnxEmitter& e)>;

// Registers the emitter of a module class (by its exact dynamic type), or of an nn::Lambda by its
// type name ("ReLU", "GELU", ...). Used through static registrar objects.
struct OnnxEmitterRegistrar {
  OnnxEmitterRegistrar(std::type_index type, OnnxModuleEmitter emitter);
  OnnxEmitterRegistrar(const std::string& lambda_type_name, OnnxModuleEmitter emitter);
};

// "a.b" + "c" -> "a.b.c" (no leading dot for the root).
std::string onnx_child_path(const std::string& path, const std::string& child);

}  // namespace evit::train
