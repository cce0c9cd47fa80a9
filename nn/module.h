// Module: the base of every layer and model.
//
// A module keeps three ordered registries — parameters, buffers and child modules — under the
// attribute names of the PyTorch reference module tree, so that state_dict() keys ("stages.2.
// op_list.0.main.depth_conv.conv.weight") equal the reference checkpoint keys. Parameter-less
// children (activations, Identity, Dropout) are registered too, so that Sequential indices line
// up with the reference.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"

namespace evit::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module : public std::enable_shared_from_this<Module> {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Single-tensor forward. Modules with other signatures provide their own methods and leave
  // this one throwing.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  const std::string& type_name() const { return type_name_; }

  // ---- registries (names must be unique within the module) ----
  // Registers a parameter (made a leaf that requires grad). Returns the stored handle.
  Tensor& register_parameter(const std::string& name, Tensor t);
  // Registers a buffer; non-persistent buffers are left out of state_dict().
  Tensor& register_buffer(const std::string& name, Tensor t, bool persistent = true);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  // Removes a registered child and returns it (null when there is none); its entries leave
  // state_dict(). Used by deployment rewrites (train/export.cpp: BatchNorm folding).
  std::shared_ptr<Module> unregister_module(const std::string& name);

  // ---- traversal (registration order, depth first, keys joined with ".") ----
  NamedTensors named_parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules(const std::string& prefix = "");
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;
  std::shared_ptr<Module> child(const std::string& name) const;

  // ---- state ----
  // Parameters and persistent buffers, by full key.
  TensorMap state_dict() const;
  // The same entries in PyTorch's state_dict order: each module's parameters, then its
  // persistent buffers, then its children's entries.
  NamedTensors ordered_state() const;
  // Copies tensors into this module's parameters and buffers (in place, so every alias sees the
  // new values). strict: every problem — missing keys, unexpected keys, shape or dtype
  // mismatches — is collected and reported in one error. Non-strict: loads what matches and
  // returns the list of problems. A leading "module." or "model." prefix on all keys is stripped;
  // shapes [] and [1] are treated as equal.
  std::vector<std::string> load_state_dict(const TensorMap& state, bool strict = true);
  void save(const std::string& path) const;
  void load(const std::string& path, bool strict = true);

  // Converts every floating parameter and buffer to `dtype` in place: the tensors keep their
  // identity (every alias, e.g. a layer's `weight` member, sees the converted data). Gradients
  // are dropped.
  void to(DType dtype);
  // Moves every parameter and buffer to `device` in place (same identity rule as to(DType)).
  void to(Device device);

  // ---- modes ----
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

 protected:
  bool training_ = true;

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool params, bool persistent_only, bool recurse,
               NamedTensors& out) const;
  void collect_ordered(const std::string& prefix, NamedTensors& out) const;

  std::string type_name_;
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<bool> buffer_persistent_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace evit::nn
