// The backward engine: dependency-counted, most recent node first.
#include <queue>
#include <unordered_map>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/gradient_ops.h"

namespace evit {
namespace autograd {
namespace {

std::shared_ptr<Node> accumulator_for(const Tensor& leaf) {
  AutogradMeta& meta = leaf.autograd_meta();
  if (auto acc = meta.grad_accumulator.lock()) return acc;
  auto acc = std::make_shared<AccumulateGrad>(leaf.impl_ptr());
  acc->input_meta.push_back(TensorMeta::of(leaf));
  acc->output_meta.push_back(TensorMeta::of(leaf));
  meta.grad_accumulator = acc;
  return acc;
}

Edge edge_of(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), t.output_nr()};
  return {accumulator_for(t), 0};
}

// Makes `g` fit the forward input it is the gradient of: sums broadcast dims, checks the rest.
Tensor validate_grad(const Node& node, size_t i, Tensor g) {
  const TensorMeta& m = node.input_meta[i];
  EVIT_CHECK(g.dtype() == m.dtype, node.name(), ": gradient for input ", i, " has dtype ",
             dtype_name(g.dtype()), ", expected ", m.str());
  EVIT_CHECK(g.device() == m.device, node.name(), ": gradient for input ", i, " is on ",
             g.device().str(), ", expected ", m.str());
  if (g.sizes() != m.shape) {
    EVIT_CHECK(shape_numel(g.sizes()) >= shape_numel(m.shape) && g.dim() >= (int64_t)m.shape.size(),
               node.name(), ": gradient for input ", i, " has shape ", shape_str(g.sizes()),
               ", expected ", shape_str(m.shape));
    g = gradient_ops().sum_to(g, m.shape);
  }
  return g;
}

void check_finite(const Node& node, size_t i, const Tensor& g) {
  if (!is_floating(g.dtype())) return;
  bool ok = gradient_ops().all_finite(g);
  EVIT_CHECK(ok, "anomaly: ", node.name(), " produced NaN or Inf in the gradient for input ", i,
             node.anomaly_info.empty() ? "" : " (forward: " + node.anomaly_info + ")");
}

struct LaterFirst {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

}  // namespace

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, const std::vector<Tensor>& inputs,
            const std::vector<Tensor>& outputs, std::vector<Tensor> saved, BackwardFn fn) {
  if (!needs_grad(inputs)) return;
  auto node = std::make_shared<FunctionNode>(name, std::move(fn), std::move(saved));
  for (const Tensor& in : inputs) {
    node->next_edges.push_back(edge_of(in));
    node->input_meta.push_back(in.defined() ? TensorMeta::of(in) : TensorMeta{});
  }
  if (anomaly_enabled()) {
    std::string info = name;
    info += " with inputs";
    for (const Tensor& in : inputs) info += " " + (in.defined() ? in.desc() : std::string("none"));
    node->anomaly_info = info;
    // The forward side of anomaly mode: ops run in order, so the first op with a non-finite
    // output is where a divergence shows up; say whether its inputs were already broken.
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (gradient_ops().all_finite(outputs[i])) continue;
      std::string cause = "from finite inputs";
      for (size_t k = 0; k < inputs.size(); ++k)
        if (inputs[k].defined() && !gradient_ops().all_finite(inputs[k])) {
          cause = "because input " + std::to_string(k) + " (" + inputs[k].desc() +
                  (inputs[k].is_leaf() ? ", a leaf such as a parameter" : "") + ") already holds NaN or Inf";
          break;
        }
      EVIT_THROW("anomaly: the forward of ", name, " produced NaN or Inf in output ", i, " (", outputs[i].desc(),
                 ") ", cause, " [", info, "]");
    }
  }
  node->output_hooks.resize(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    node->output_meta.push_back(TensorMeta::of(out));
    AutogradMeta& meta = out.autograd_meta();
    meta.requires_grad = true;
    meta.grad_fn = node;
    meta.output_nr = static_cast<int>(i);
  }
}

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph) {
  EVIT_CHECK(roots.size() == grads.size(), "backward: got ", roots.size(), " roots and ",
             grads.size(), " gradients");
  NoGradGuard no_grad;  // backward closures never record

  // 1. Root edges and their initial gradients.
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::vector<std::shared_ptr<Node>> root_nodes;
  auto accumulate = [&](Node* n, int slot, const Tensor& g) {
    auto& buf = buffers[n];
    if (buf.empty()) buf.resize(n->output_meta.size());
    Tensor& b = buf[slot];
    if (!b.defined()) {
      b = g;
    } else if (b.impl_ptr().use_count() == 1 && b.impl().storage.use_count() == 1 &&
               b.is_contiguous() && b.sizes() == g.sizes()) {
      gradient_ops().add_(b, g);  // sole owner: accumulate in place
    } else {
      b = gradient_ops().add(b, g);
    }
  };
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    EVIT_CHECK(r.requires_grad(), "backward: tensor ", r.desc(),
               " does not require grad and has no grad_fn");
    Edge e = edge_of(r);
    EVIT_CHECK(grads[i].sizes() == r.sizes(), "backward: gradient shape ",
               shape_str(grads[i].sizes()), " does not match the tensor's shape ",
               shape_str(r.sizes()));
    accumulate(e.node.get(), e.input_nr, grads[i]);
    root_nodes.push_back(e.node);
  }

  // 2. Count, for each reachable node, the edges that point at it.
  std::unordered_map<Node*, int> deps;
  {
    std::vector<Node*> stack;
    std::unordered_map<Node*, bool> seen;
    for (auto& n : root_nodes)
      if (!seen[n.get()]) {
        seen[n.get()] = true;
        stack.push_back(n.get());
      }
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (auto& e : n->next_edges) {
        if (!e.valid()) continue;
        deps[e.node.get()]++;
        if (!seen[e.node.get()]) {
          seen[e.node.get()] = true;
          stack.push_back(e.node.get());
        }
      }
    }
  }

  // 3. Run nodes whose inputs are complete, latest created first.
  std::priority_queue<Node*, std::vector<Node*>, LaterFirst> ready;
  {
    std::unordered_map<Node*, bool> queued;
    for (auto& n : root_nodes)
      if (deps[n.get()] == 0 && !queued[n.get()]) {
        queued[n.get()] = true;
        ready.push(n.get());
      }
  }
  const bool check_anomaly = anomaly_enabled();
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    std::vector<Tensor> in = std::move(buffers[node]);
    buffers.erase(node);
    in.resize(node->output_meta.size());
    bool any = false;
    for (auto& g : in) any = any || g.defined();
    std::vector<Tensor> out;
    if (any) {
      for (size_t i = 0; i < in.size(); ++i) {
        const TensorMeta& m = node->output_meta[i];
        if (!in[i].defined()) in[i] = zeros(m.shape, TensorOptions(m.dtype, m.device));
        if (i >= node->output_hooks.size()) continue;
        for (auto& hook : node->output_hooks[i]) {
          Tensor r = hook(in[i]);
          if (r.defined()) in[i] = r;
        }
      }
      out = node->apply(std::move(in));
      if (!retain_graph) node->release();
    }
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.valid()) continue;
      if (i < out.size() && out[i].defined()) {
        Tensor g = validate_grad(*node, i, out[i]);
        if (check_anomaly) check_finite(*node, i, g);
        accumulate(e.node.get(), e.input_nr, g);
      }
      if (--deps[e.node.get()] == 0) ready.push(e.node.get());
    }
  }
}

}  // namespace autograd
}  // namespace evit
