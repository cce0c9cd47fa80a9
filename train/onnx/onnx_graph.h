// An ONNX model under construction, on the ONNX project's own protobuf messages and checker
// (Debian's libonnx-dev): graph inputs and outputs, initializers and nodes, then the ONNX checker
// with strict shape inference, and the serialised bytes. Only this file's .cpp sees the protobuf
// types, so the emitters and the rest of evit deal in names, tensors and attributes.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace evit::train {

// The element types evit writes: f32 and f16 activations and weights, i64 shape operands.
enum class OnnxType { f32, f16, i64 };
const char* onnx_type_name(OnnxType t);

struct OnnxAttr {
  std::string name;
  std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>> value;
};

// A tensor's declared or inferred type: dims < 0 are symbolic, named by dim_params (e.g. "batch").
struct OnnxTensorInfo {
  std::string name;
  OnnxType type = OnnxType::f32;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_params;  // one per dim; "" where the dim is a number
};

// What the ONNX checker and shape inference say about a model.
struct OnnxCheckReport {
  int64_t opset = 0;
  std::vector<OnnxTensorInfo> inputs, outputs;  // outputs with their inferred shapes
  std::map<std::string, int64_t> op_counts;     // nodes per op type
  std::map<std::string, int64_t> initializer_numel;  // by name (weights carry their state-dict keys)
  // FNV-1a (64 bits) of the serialised model with the initializers' data left out: equal for two
  // exports with the same graph and weight shapes, whatever the weights. Goldens made from one
  // export (tools/reference/check_onnx.py) name the graph they were made from by it.
  uint64_t structure_digest = 0;
  int64_t nodes = 0, parameters = 0;                  // parameters: initializer elements in all
};

class OnnxGraph {
 public:
  OnnxGraph(const std::string& graph_name, int64_t opset);
  ~OnnxGraph();
  OnnxGraph(const OnnxGraph&) = delete;
  OnnxGraph& operator=(const OnnxGraph&) = delete;

  int64_t opset() const { return opset_; }

  void add_input(const OnnxTensorInfo& info);
  // Declares `value` a graph output under its own name (element type and shape as given).
  void add_output(const OnnxTensorInfo& info);
  // A constant: `t` converted to `type` (f32/f16 from any floating tensor, i64 from integers).
  // The name must be new; returns it.
  std::string add_initializer(const std::string& name, const Tensor& t, OnnxType type);
  std::string add_ints(const std::string& name, const std::vector<int64_t>& values);
  // Appends a node; its outputs get fresh names derived from `hint` and are returned.
  std::vector<std::string> add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                                    const std::vector<OnnxAttr>& attrs, const std::string& hint,
                                    int num_outputs = 1);
  // Renames the value produced last under `from` to `to` (graph outputs keep the official names).
  void rename_value(const std::string& from, const std::string& to);
  // A name not used yet in this graph, derived from `hint` (taken once something is added under it).
  std::string fresh_name(const std::string& hint) const;

  // The model's bytes (deterministic: the same graph gives the same bytes).
  std::string serialize() const;
  // Runs the ONNX checker and strict shape inference on a copy; throws naming what failed.
  OnnxCheckReport check() const;

 private:
  std::string reserve_name(const std::string& hint);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t opset_;
};

// The checker and strict shape inference on a serialised model (an exported .onnx file's bytes);
// `what` names it in errors.
OnnxCheckReport check_onnx_bytes(const std::string& bytes, const std::string& what);

}  // namespace evit::train
