#include "autograd/node.h"

#include "autograd/gradient_ops.h"
#include "autograd/grad_mode.h"

namespace evit {

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> leaf)
    : Node("AccumulateGrad"), leaf_(std::move(leaf)) {}

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grads) {
  Tensor g = std::move(grads[0]);
  AutogradMeta& meta = *leaf_->autograd;
  for (auto& hook : meta.hooks) {
    Tensor r = hook(g);
    if (r.defined()) g = r;
  }
  if (!meta.grad) {
    // Steal the buffer only when nobody else can see it; otherwise later in-place accumulation
    // would write into another tensor (e.g. the same gradient flowing to two leaves).
    bool exclusive = g.impl_ptr().use_count() == 1 && g.is_contiguous() &&
                     g.impl().storage.use_count() == 1;
    meta.grad = exclusive ? g.detach().impl_ptr() : g.detach().clone().impl_ptr();
  } else {
    Tensor acc(meta.grad);
    gradient_ops().add_(acc, g);
  }
  // The engine runs this node once, after every path to the leaf has delivered its gradient.
  if (!meta.grad_ready_hooks.empty()) {
    const Tensor leaf(leaf_);
    for (auto& hook : meta.grad_ready_hooks) hook(leaf);
  }
  return {};
}

FunctionNode::FunctionNode(std::string name, BackwardFn fn, std::vector<Tensor> saved)
    : Node(std::move(name)), fn_(std::move(fn)) {
  for (auto& t : saved) {
    if (t.defined()) {
      saved_version_.push_back(t.version());
      saved_.push_back(t.detach());
    } else {
      saved_version_.push_back(0);
      saved_.push_back(Tensor());
    }
  }
}

std::vector<Tensor> FunctionNode::apply(std::vector<Tensor>&& grads) {
  EVIT_CHECK(!released_, name(),
             ": trying to backward through the graph a second time; its saved tensors were freed "
             "(pass retain_graph=true to the first backward)");
  for (size_t i = 0; i < saved_.size(); ++i) {
    const Tensor& t = saved_[i];
    if (!t.defined()) continue;
    EVIT_CHECK(t.version() == saved_version_[i], name(), ": saved tensor ", i, " (", t.desc(),
               ") was modified in-place after it was saved (version ", saved_version_[i],
               " -> ", t.version(), ")");
  }
  std::vector<bool> needs(next_edges.size());
  for (size_t i = 0; i < next_edges.size(); ++i) needs[i] = next_edges[i].valid();
  BackwardContext ctx(grads, saved_, std::move(needs));
  return fn_(ctx);
}

void FunctionNode::release() {
  saved_.clear();
  fn_ = nullptr;
  released_ = true;
}

}  // namespace evit
