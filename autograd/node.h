// Graph nodes of the autograd tape (the Node base class is core's: core/autograd_meta.h).
//
// AccumulateGrad adds gradients into a leaf's .grad. FunctionNode is what ops create through autograd::record(): it holds the op's backward
// closure and its saved tensors, which are checked against in-place modification on use.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/autograd_meta.h"  // Node, Edge, TensorMeta
#include "core/tensor.h"

namespace evit {

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
