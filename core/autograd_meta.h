// The autograd graph's data structure, as far as a Tensor needs it: the Node a non-leaf tensor
// points at, its Edges, and the metadata a node keeps of its inputs and outputs. The engine, the
// nodes ops create (FunctionNode) and the recording API live in autograd/, one layer up.
//
// Core depends on nothing above it. Where a core operation must reach autograd (a clone or a
// dtype/device copy records its backward; Tensor::backward runs the engine), it calls the
// AutogradHooks that the autograd layer installs when it is linked in. Without autograd those
// copies record nothing and backward() says autograd is missing.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace evit {

struct Edge {
  std::shared_ptr<Node> node;
  int input_nr = 0;
  bool valid() const { return node != nullptr; }
};

struct TensorMeta {
  Shape shape;
  DType dtype = DType::f32;
  Device device;
  static TensorMeta of(const Tensor& t) { return {t.sizes(), t.dtype(), t.device()}; }
  std::string str() const;
};

// A Node turns the gradients of its forward outputs into gradients of its forward inputs.
// Edges point at the nodes that produced those inputs (or at a leaf's accumulator).
class Node {
 public:
  explicit Node(std::string name);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // grads[i] is the gradient of forward output i (always defined when called by the engine).
  // Returns one gradient per forward input (undefined where none is needed).
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  // Frees saved state after backward (unless retain_graph).
  virtual void release() {}

  const std::string& name() const { return name_; }
  uint64_t sequence_nr() const { return sequence_nr_; }

  std::vector<Edge> next_edges;                     // one per forward input
  std::vector<TensorMeta> input_meta;               // one per forward input
  std::vector<TensorMeta> output_meta;              // one per forward output
  std::vector<std::vector<GradHook>> output_hooks;  // per output, hooks of non-leaf tensors
  std::string anomaly_info;                         // forward op and shapes (anomaly mode)

 private:
  std::string name_;
  uint64_t sequence_nr_;
};

// What core asks of the autograd layer (installed by it at start-up).
struct AutogradHooks {
  // Records the backward of a copy of `in` into `out` (clone, dtype or device conversion): the
  // gradient goes back converted to in's dtype and device.
  void (*record_copy)(const char* name, const Tensor& in, const Tensor& out) = nullptr;
  // Backpropagates from `root` with initial gradient `grad`.
  void (*backward)(const Tensor& root, const Tensor& grad, bool retain_graph) = nullptr;
};
void set_autograd_hooks(const AutogradHooks& hooks);
const AutogradHooks& autograd_hooks();

}  // namespace evit
