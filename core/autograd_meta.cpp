#include "core/autograd_meta.h"

#include <atomic>

namespace evit {
namespace {

std::atomic<uint64_t> g_next_sequence_nr{0};

// Long graphs (thousands of nodes in a chain) must not be destroyed recursively: a node's
// destructor hands its edges to this thread's queue, and only the outermost destructor drains it.
thread_local std::vector<std::shared_ptr<Node>>* t_pending = nullptr;

AutogradHooks& hooks_storage() {
  static AutogradHooks h;
  return h;
}

}  // namespace

std::string TensorMeta::str() const {
  return std::string(dtype_name(dtype)) + " " + shape_str(shape) + " " + device.str();
}

Node::Node(std::string name) : name_(std::move(name)), sequence_nr_(g_next_sequence_nr++) {}

Node::~Node() {
  if (t_pending) {
    for (auto& e : next_edges)
      if (e.node) t_pending->push_back(std::move(e.node));
    return;
  }
  std::vector<std::shared_ptr<Node>> pending;
  for (auto& e : next_edges)
    if (e.node) pending.push_back(std::move(e.node));
  t_pending = &pending;
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    n.reset();  // if this was the last owner, its destructor appends its edges to `pending`
  }
  t_pending = nullptr;
}

void set_autograd_hooks(const AutogradHooks& hooks) { hooks_storage() = hooks; }

const AutogradHooks& autograd_hooks() { return hooks_storage(); }

}  // namespace evit
