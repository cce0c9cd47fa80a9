// Graph nodes of the autograd tape.
//
// A Node turns the gradients of its forward outputs into gradients of its forward inputs.
// Edges point at the nodes that produced those inputs (or at a leaf's AccumulateGrad node).
// FunctionNode is what ops create through autograd::record(): it holds the op's backward
// closure and its saved tensors, which are checked against in-place modification on use.
#pragma once
#include <cstdint>
#include <functional>
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

// Adds incoming gradients into a leaf tensor's .grad.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

// What a backward closure sees.
class BackwardContext {
 public:
  BackwardContext(const std::vector<Tensor>& grads, std::vector<Tensor> saved,
                  std::vector<bool> needs)
      : grads_(grads), saved_(std::move(saved)), needs_(std::move(needs)) {}
  const Tensor& grad_output(size_t i = 0) const { return grads_.at(i); }
  const Tensor& saved(size_t i) const { return saved_.at(i); }
  bool needs_input_grad(size_t i) const { return i < needs_.size() && needs_[i]; }

 private:
  const std::vector<Tensor>& grads_;
  std::vector<Tensor> saved_;
  std::vector<bool> needs_;
};

using BackwardFn = std::function<std::vector<Tensor>(const BackwardContext&)>;

class FunctionNode : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn, std::vector<Tensor> saved);
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  void release() override;

 private:
  BackwardFn fn_;
  std::vector<Tensor> saved_;            // detached aliases
  std::vector<uint64_t> saved_version_;  // version at save time
  bool released_ = false;
};

namespace autograd {

// True when grad mode is on and some defined input requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Records a backward node for an op: `inputs` (undefined entries allowed) are the differentiable
// inputs in the order the closure returns gradients for, `outputs` get grad_fn set, `saved` are
// tensors the closure reads back through ctx.saved(i) (version-checked). No-op when no input
// requires grad or grad mode is off.
void record(const char* name, const std::vector<Tensor>& inputs,
            const std::vector<Tensor>& outputs, std::vector<Tensor> saved, BackwardFn fn);

// The engine: backpropagates from `roots` with initial gradients `grads`.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph = false);

}  // namespace autograd
}  // namespace evit
