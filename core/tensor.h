// Tensor: a value handle to TensorImpl {storage, offset, sizes, strides, dtype, version counter,
// autograd meta}. Copying a Tensor aliases it (like PyTorch); clone() copies the data.
//
// Views (reshape/view, permute, transpose, slice, select, expand, squeeze, unsqueeze) share the
// storage and the version counter. Kernels that need contiguous memory say so and the op calls
// contiguous() for them; nothing assumes contiguity silently.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/shape.h"
#include "core/storage.h"

namespace evit {

class Node;
class Tensor;

using GradHook = std::function<Tensor(const Tensor&)>;
// Called with a leaf once backward has finished adding into its .grad (see
// Tensor::register_grad_ready_hook).
using GradReadyHook = std::function<void(const Tensor& leaf)>;

// Autograd state; present only for tensors that take part in autograd.
struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<class TensorImpl> grad;  // accumulated gradient of a leaf (held as impl)
  std::shared_ptr<Node> grad_fn;           // the node that produced this tensor (non-leaf)
  int output_nr = 0;                       // which output of grad_fn this tensor is
  std::weak_ptr<Node> grad_accumulator;    // leaf only: the node that adds into .grad
  std::vector<GradHook> hooks;             // leaf hooks (non-leaf hooks live on grad_fn)
  std::vector<GradReadyHook> grad_ready_hooks;  // leaf only: after .grad is complete
};

class TensorImpl {
 public:
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape sizes;
  Shape strides;  // in elements
  DType dtype = DType::f32;
  std::shared_ptr<std::atomic<uint64_t>> version = std::make_shared<std::atomic<uint64_t>>(0);
  std::unique_ptr<AutogradMeta> autograd;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& sizes() const { return impl().sizes; }
  const Shape& shape() const { return impl().sizes; }
  const Shape& strides() const { return impl().strides; }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return static_cast<int64_t>(impl().sizes.size()); }
  int64_t numel() const { return shape_numel(impl().sizes); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  int64_t storage_offset() const { return impl().offset; }
  bool is_contiguous() const;
  // "f32 [2,3] cpu": the description used in error messages.
  std::string desc() const;

  // ---- data ----
  // Pointer to element 0 of this view (storage base + offset). Checks the dtype.
  template <class T> T* data_ptr() const {
    EVIT_CHECK(dtype_v<T> == dtype(), "data_ptr: tensor is ", dtype_name(dtype()),
               ", requested ", dtype_name(dtype_v<T>));
    return static_cast<T*>(raw_data());
  }
  // data_ptr, or nullptr for an undefined tensor (an optional operand: a bias, a gradient not needed).
  template <class T> T* data_ptr_or_null() const { return defined() ? data_ptr<T>() : nullptr; }
  void* raw_data() const {
    return static_cast<char*>(impl().storage->data()) + impl().offset * dtype_size(dtype());
  }
  // The single value of a one-element tensor, converted to T.
  template <class T> T item() const;
  // Copies the elements (row-major) into a vector of T (converting).
  template <class T> std::vector<T> to_vector() const;

  Tensor contiguous() const;  // this, if already contiguous; otherwise a contiguous copy
  Tensor clone() const;       // always a new contiguous copy (records autograd)
  Tensor to(DType t) const;   // converted copy (this if same dtype)
  Tensor to(Device d) const;  // copy to another device (this if same)

  // ---- versions (in-place detection) ----
  uint64_t version() const { return impl().version->load(); }
  void bump_version() const { impl().version->fetch_add(1); }

  // ---- autograd ----
  bool requires_grad() const { return impl().autograd && impl().autograd->requires_grad; }
  // Marks a leaf as requiring grad. Throws for non-leaf tensors and non-floating dtypes.
  Tensor& requires_grad_(bool on = true);
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  const std::shared_ptr<Node>& grad_fn() const;
  int output_nr() const { return impl().autograd ? impl().autograd->output_nr : 0; }
  bool is_leaf() const { return !impl().autograd || !impl().autograd->grad_fn; }
  // A new tensor sharing storage and version counter, outside the graph.
  Tensor detach() const;
  // Runs backward from this tensor. grad defaults to 1 for a one-element tensor.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  // A hook receives the gradient flowing into this tensor and returns it (possibly changed).
  void register_hook(GradHook hook) const;
  // Leaves only: `hook` runs when a backward pass has added the last contribution into this
  // leaf's .grad (once per pass that reaches the leaf), and may read or take .grad. Data-parallel
  // steps use it to send gradients while backward goes on with the layers below.
  void register_grad_ready_hook(GradReadyHook hook) const;

  // ---- internals ----
  TensorImpl& impl() const {
    EVIT_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  AutogradMeta& autograd_meta() const;  // creates it on first use
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);
// Readable rendering: dtype, shape, device and (abbreviated) values.
std::string to_string(const Tensor& t);

// ---- factories ----
struct TensorOptions {
  DType dtype = DType::f32;
  Device device = kCPU;
  bool requires_grad = false;
  TensorOptions() = default;
  TensorOptions(DType t) : dtype(t) {}  // NOLINT: implicit for convenience: zeros(s, DType::f64)
  TensorOptions(DType t, Device d) : dtype(t), device(d) {}
};

class Generator;

Tensor empty(const Shape& shape, TensorOptions opt = {});
Tensor zeros(const Shape& shape, TensorOptions opt = {});
Tensor ones(const Shape& shape, TensorOptions opt = {});
Tensor full(const Shape& shape, double value, TensorOptions opt = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
// [start, end) with step; dtype defaults to i64.
Tensor arange(double start, double end, double step = 1, TensorOptions opt = DType::i64);
Tensor arange(int64_t end, TensorOptions opt = DType::i64);
// Uniform [low, high), normal(mean, std), integers [low, high): from the given or global generator.
Tensor rand(const Shape& shape, TensorOptions opt = {}, Generator* gen = nullptr);
Tensor uniform(const Shape& shape, double low, double high, TensorOptions opt = {},
               Generator* gen = nullptr);
Tensor randn(const Shape& shape, TensorOptions opt = {}, Generator* gen = nullptr);
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opt = DType::i64,
               Generator* gen = nullptr);
// Copies `values` (converted to opt.dtype) into a new tensor of `shape`.
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opt);
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  return from_vector(values, shape, TensorOptions(dtype_v<T>));
}
// Copies raw little-endian bytes of `dtype` into a new tensor.
Tensor from_blob(const void* data, const Shape& shape, DType dtype);
// A scalar (0-D) tensor.
Tensor scalar_tensor(double value, TensorOptions opt = {});

// Builds a tensor header over existing storage (a view). Shared helper for view ops.
Tensor make_view(const Tensor& base, const Shape& sizes, const Shape& strides, int64_t offset);

}  // namespace evit
