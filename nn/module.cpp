#include "nn/module.h"

#include <map>
#include <set>
#include <sstream>

#include "autograd/grad_mode.h"
#include "ops/pointwise.h"
#include "ops/shape.h"

namespace evit::nn {

Tensor Module::forward(const Tensor&) {
  EVIT_THROW(type_name_, ": this module has no single-tensor forward");
}

void Module::check_new_name(const std::string& name) const {
  EVIT_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name_,
             ": invalid attribute name '", name, "' (must be non-empty, without '.')");
  for (auto& p : params_) EVIT_CHECK(p.first != name, type_name_, ": '", name, "' already registered");
  for (auto& b : buffers_) EVIT_CHECK(b.first != name, type_name_, ": '", name, "' already registered");
  for (auto& c : children_) EVIT_CHECK(c.first != name, type_name_, ": '", name, "' already registered");
}

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name);
  EVIT_CHECK(t.defined(), type_name_, ": parameter '", name, "' is undefined");
  if (!t.is_leaf()) t = t.detach();
  t.requires_grad_(true);
  params_.emplace_back(name, t);
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t, bool persistent) {
  check_new_name(name);
  EVIT_CHECK(t.defined(), type_name_, ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, t);
  buffer_persistent_.push_back(persistent);
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name);
  EVIT_CHECK(m != nullptr, type_name_, ": child '", name, "' is null");
  children_.emplace_back(name, std::move(m));
}

std::shared_ptr<Module> Module::unregister_module(const std::string& name) {
  for (auto it = children_.begin(); it != children_.end(); ++it)
    if (it->first == name) {
      auto m = it->second;
      children_.erase(it);
      return m;
    }
  return nullptr;
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  for (auto& c : children_)
    if (c.first == name) return c.second;
  EVIT_THROW(type_name_, ": no child module named '", name, "'");
}

void Module::collect(const std::string& prefix, bool params, bool persistent_only, bool recurse,
                     NamedTensors& out) const {
  if (params) {
    for (auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  } else {
    for (size_t i = 0; i < buffers_.size(); ++i)
      if (!persistent_only || buffer_persistent_[i])
        out.emplace_back(prefix + buffers_[i].first, buffers_[i].second);
  }
  if (!recurse) return;
  for (auto& [n, c] : children_) c->collect(prefix + n + ".", params, persistent_only, true, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", true, false, recurse, out);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", false, false, recurse, out);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  out.emplace_back(prefix, shared_from_this());
  for (auto& [n, c] : children_) {
    auto sub = c->named_modules(prefix.empty() ? n : prefix + "." + n);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [k, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::collect_ordered(const std::string& prefix, NamedTensors& out) const {
  for (auto& [n, t] : params_) out.emplace_back(prefix + n, t.detach());
  for (size_t i = 0; i < buffers_.size(); ++i)
    if (buffer_persistent_[i]) out.emplace_back(prefix + buffers_[i].first, buffers_[i].second.detach());
  for (auto& [n, c] : children_) c->collect_ordered(prefix + n + ".", out);
}

NamedTensors Module::ordered_state() const {
  NamedTensors out;
  collect_ordered("", out);
  return out;
}

TensorMap Module::state_dict() const {
  NamedTensors all;
  collect("", true, false, true, all);
  collect("", false, true, true, all);
  TensorMap out;
  for (auto& [k, t] : all) out.emplace(k, t.detach());
  return out;
}

namespace {
std::string strip_common_prefix(const TensorMap& state, std::string key) {
  for (const char* p : {"module.", "model."}) {
    bool all = !state.empty();
    for (auto& [k, t] : state) all = all && k.rfind(p, 0) == 0;
    if (all && key.rfind(p, 0) == 0) return key.substr(std::string(p).size());
  }
  return key;
}
bool same_shape(const Shape& a, const Shape& b) {
  if (a == b) return true;
  return shape_numel(a) == 1 && shape_numel(b) == 1 && a.size() <= 1 && b.size() <= 1;
}
}  // namespace

std::vector<std::string> Module::load_state_dict(const TensorMap& state, bool strict) {
  std::map<std::string, Tensor> incoming;
  for (auto& [k, t] : state) incoming[strip_common_prefix(state, k)] = t;

  NamedTensors targets;
  collect("", true, false, true, targets);
  collect("", false, true, true, targets);

  std::vector<std::string> problems;
  std::set<std::string> used;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source), applied after checks
  for (auto& [key, dst] : targets) {
    auto it = incoming.find(key);
    if (it == incoming.end()) {
      problems.push_back("missing key: " + key + " (" + dst.desc() + ")");
      continue;
    }
    used.insert(key);
    const Tensor& src = it->second;
    if (!same_shape(src.sizes(), dst.sizes())) {
      problems.push_back("shape mismatch: " + key + ": expected " + shape_str(dst.sizes()) +
                         ", got " + shape_str(src.sizes()));
      continue;
    }
    if (src.dtype() != dst.dtype() && !(is_floating(src.dtype()) && is_floating(dst.dtype()))) {
      problems.push_back("dtype mismatch: " + key + ": expected " + dtype_name(dst.dtype()) +
                         ", got " + dtype_name(src.dtype()));
      continue;
    }
    copies.emplace_back(dst, src);
  }
  for (auto& [k, t] : incoming)
    if (!used.count(k)) problems.push_back("unexpected key: " + k + " (" + t.desc() + ")");
  if (strict && !problems.empty()) {
    std::ostringstream os;
    os << type_name_ << ": load_state_dict found " << problems.size() << " problem(s):";
    for (auto& p : problems) os << "\n  " << p;
    EVIT_THROW(os.str());  // nothing was changed
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) {
    Tensor d = dst;
    copy_(d, reshape(src.to(dst.dtype()), dst.sizes()).to(d.device()));  // files load on the CPU
  }
  return problems;
}

void Module::save(const std::string& path) const { save_safetensors(path, state_dict()); }

void Module::load(const std::string& path, bool strict) {
  try {
    load_state_dict(load_safetensors(path), strict);
  } catch (const Error& e) {
    EVIT_THROW("loading weights from '", path, "': ", e.what());
  }
}

namespace {
// Replaces t's data with `converted` in place, so every handle to t sees it.
void rebind(const Tensor& t, const Tensor& converted) {
  TensorImpl& impl = t.impl();
  impl.storage = converted.impl().storage;
  impl.offset = converted.storage_offset();
  impl.strides = converted.strides();
  impl.dtype = converted.dtype();
  t.set_grad(Tensor());
  t.bump_version();
}
}  // namespace

void Module::to(DType dtype) {
  NamedTensors all;
  collect("", true, false, true, all);
  collect("", false, false, true, all);
  for (auto& [k, t] : all)
    if (is_floating(t.dtype()) && t.dtype() != dtype) rebind(t, t.detach().to(dtype).contiguous());
}

void Module::to(Device device) {
  NamedTensors all;
  collect("", true, false, true, all);
  collect("", false, false, true, all);
  for (auto& [k, t] : all)
    if (t.device() != device) rebind(t, t.detach().to(device).contiguous());
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (auto& [k, t] : named_parameters()) t.set_grad(Tensor());
}

}  // namespace evit::nn
