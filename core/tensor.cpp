#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "core/autograd_meta.h"
#include "core/copy.h"
#include "core/cuda.h"
#include "core/generator.h"
#include "core/limits.h"
#include "core/parallel.h"

namespace evit {

// ---------------------------------------------------------------- metadata

int64_t Tensor::size(int64_t d) const { return sizes()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (sizes()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= sizes()[i];
  }
  return true;
}

std::string Tensor::desc() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + " " + shape_str(sizes()) +
         (device().is_cpu() ? "" : " " + device().str());
}

AutogradMeta& Tensor::autograd_meta() const {
  auto& a = impl().autograd;
  if (!a) a = std::make_unique<AutogradMeta>();
  return *a;
}

// ---------------------------------------------------------------- data

template <class T>
T Tensor::item() const {
  EVIT_CHECK(numel() == 1, "item: tensor ", desc(), " has ", numel(), " elements, expected 1");
  if (!device().is_cpu()) return detach().to(kCPU).item<T>();  // waits for the device
  return dispatch_all(dtype(), "item", [&](auto tag) -> T {
    using S = decltype(tag);
    return static_cast<T>(*static_cast<const S*>(raw_data()));
  });
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template int64_t Tensor::item<int64_t>() const;
template int32_t Tensor::item<int32_t>() const;
template uint8_t Tensor::item<uint8_t>() const;
template bool Tensor::item<bool>() const;

template <class T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> out(numel());
  if (out.empty()) return out;
  Tensor dst = from_blob(nullptr, sizes(), dtype_v<T>);
  copy_elements(dst, *this);
  std::memcpy(out.data(), dst.raw_data(), out.size() * sizeof(T));
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = empty(sizes(), TensorOptions(dtype(), device()));
  copy_elements(out, *this);
  if (autograd_hooks().record_copy) autograd_hooks().record_copy("CloneBackward", *this, out);
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = empty(sizes(), TensorOptions(t, device()));
  copy_elements(out, *this);
  if (autograd_hooks().record_copy) autograd_hooks().record_copy("ToDtypeBackward", *this, out);
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor out = empty(sizes(), TensorOptions(dtype(), d));
  copy_elements(out, *this);
  if (autograd_hooks().record_copy) autograd_hooks().record_copy("ToDeviceBackward", *this, out);
  return out;
}

// ---------------------------------------------------------------- autograd

Tensor& Tensor::requires_grad_(bool on) {
  EVIT_CHECK(is_leaf(), "requires_grad_: only leaf tensors can be changed; ", desc(),
             " was produced by ", grad_fn()->name(), " (use detach() first)");
  EVIT_CHECK(!on || is_floating(dtype()), "requires_grad_: only floating tensors can require "
             "grad, got ", desc());
  autograd_meta().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  if (!impl().autograd || !impl().autograd->grad) return Tensor();
  return Tensor(impl().autograd->grad);
}

void Tensor::set_grad(const Tensor& g) const {
  if (!g.defined()) {
    if (impl().autograd) impl().autograd->grad.reset();
    return;
  }
  EVIT_CHECK(g.sizes() == sizes() && g.dtype() == dtype(), "set_grad: gradient ", g.desc(),
             " does not match tensor ", desc());
  autograd_meta().grad = g.impl_ptr();
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> none;
  return impl().autograd ? impl().autograd->grad_fn : none;
}

Tensor Tensor::detach() const {
  auto d = std::make_shared<TensorImpl>();
  d->storage = impl().storage;
  d->offset = impl().offset;
  d->sizes = impl().sizes;
  d->strides = impl().strides;
  d->dtype = impl().dtype;
  d->version = impl().version;
  return Tensor(d);
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  Tensor g = grad;
  if (!g.defined()) {
    EVIT_CHECK(numel() == 1, "backward: grad can be implicitly created only for one-element "
               "tensors, got ", desc());
    g = ones(sizes(), TensorOptions(dtype(), device()));
  }
  EVIT_CHECK(autograd_hooks().backward, "backward: autograd is not linked into this program");
  autograd_hooks().backward(*this, g, retain_graph);
}

void Tensor::register_hook(GradHook hook) const {
  EVIT_CHECK(requires_grad(), "register_hook: tensor ", desc(), " does not require grad");
  if (is_leaf()) {
    autograd_meta().hooks.push_back(std::move(hook));
  } else {
    grad_fn()->output_hooks.at(output_nr()).push_back(std::move(hook));
  }
}

void Tensor::register_grad_ready_hook(GradReadyHook hook) const {
  EVIT_CHECK(requires_grad() && is_leaf(), "register_grad_ready_hook: tensor ", desc(),
             " is not a leaf that requires grad");
  autograd_meta().grad_ready_hooks.push_back(std::move(hook));
}

// ---------------------------------------------------------------- printing

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << dtype_name(t.dtype()) << " " << shape_str(t.sizes());
  if (!t.device().is_cpu()) os << " " << t.device().str();
  if (t.requires_grad()) os << " requires_grad";
  os << ")";
  if (!t.device().is_cpu()) return os.str();
  std::vector<double> v = t.to_vector<double>();
  const int64_t nd = t.dim();
  const int64_t last = nd == 0 ? 1 : t.sizes().back();
  const size_t kMax = 64;  // longer tensors print their first and last values
  os << "\n";
  auto put = [&](size_t i) {
    if (is_floating(t.dtype()))
      os << std::setw(11) << std::setprecision(5) << std::scientific << v[i];
    else
      os << std::setw(6) << static_cast<int64_t>(v[i]);
  };
  for (size_t i = 0; i < v.size(); ++i) {
    if (v.size() > kMax && i == kMax / 2) {
      os << "  ...\n";
      i = v.size() - kMax / 2;
    }
    put(i);
    os << ((i + 1) % last == 0 ? "\n" : " ");
  }
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t); }

// ---------------------------------------------------------------- factories

Tensor make_view(const Tensor& base, const Shape& sizes, const Shape& strides, int64_t offset) {
  auto d = std::make_shared<TensorImpl>();
  d->storage = base.impl().storage;
  d->offset = offset;
  d->sizes = sizes;
  d->strides = strides;
  d->dtype = base.dtype();
  d->version = base.impl().version;
  return Tensor(d);
}

namespace {
void check_shape(const Shape& s, const char* op) {
  for (int64_t d : s)
    EVIT_CHECK(d >= 0, op, ": negative dimension in shape ", shape_str(s));
}
// Bytes a new tensor needs, refused before allocating when they overflow or exceed
// EVIT_MAX_TENSOR_BYTES (CPU): a shape derived from hostile input fails with its shape named
// instead of exhausting the machine.
size_t checked_nbytes(const Shape& s, const TensorOptions& opt) {
  int64_t bytes = dtype_size(opt.dtype);
  if (std::find(s.begin(), s.end(), 0) != s.end()) bytes = 0;
  for (int64_t d : s) {
    if (bytes == 0) break;
    EVIT_CHECK(d <= std::numeric_limits<int64_t>::max() / bytes, "empty: shape ", shape_str(s),
               " has more elements than memory can address");
    bytes *= d;
  }
  if (opt.device.is_cpu()) {
    const int64_t limit = max_tensor_bytes();
    EVIT_CHECK(bytes <= limit, "cannot allocate a ", dtype_name(opt.dtype), " tensor of shape ", shape_str(s), ": it needs ",
               human_bytes(double(bytes)), ", more than the limit of ", human_bytes(double(limit)),
               " (the machine's memory; set EVIT_MAX_TENSOR_BYTES to change it)");
  }
  return static_cast<size_t>(bytes);
}
Tensor finish(Tensor t, const TensorOptions& opt) {
  if (opt.requires_grad) t.requires_grad_(true);
  return t;
}
// Values for another device are made on the CPU and copied, so a seed gives the same numbers
// on every device (16-bit floats are drawn in f32 and rounded).
template <class Make>
Tensor on_cpu_then_copy(TensorOptions opt, Make make) {
  TensorOptions host(is_half(opt.dtype) ? DType::f32 : opt.dtype, kCPU);
  Tensor t = make(host).to(opt.device).to(opt.dtype).detach();
  return finish(t, opt);
}
}  // namespace

Tensor empty(const Shape& shape, TensorOptions opt) {
  check_shape(shape, "empty");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(checked_nbytes(shape, opt), opt.device);
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = opt.dtype;
  return finish(Tensor(impl), opt);
}

Tensor full(const Shape& shape, double value, TensorOptions opt) {
  bool rg = opt.requires_grad;
  opt.requires_grad = false;
  Tensor t = empty(shape, opt);
  if (!opt.device.is_cpu()) {
    cuda::cuda_fill(t, value);
    opt.requires_grad = rg;
    return finish(t, opt);
  }
  dispatch_all(opt.dtype, "full", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data_ptr<T>();
    T v = static_cast<T>(value);
    parallel_for(0, t.numel(), kPointwiseGrain, [&](int64_t b, int64_t e) {
      std::fill(p + b, p + e, v);
    });
  });
  opt.requires_grad = rg;
  return finish(t, opt);
}

Tensor zeros(const Shape& shape, TensorOptions opt) { return full(shape, 0.0, opt); }
Tensor ones(const Shape& shape, TensorOptions opt) { return full(shape, 1.0, opt); }
Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), {t.dtype(), t.device()}); }
Tensor ones_like(const Tensor& t) { return ones(t.sizes(), {t.dtype(), t.device()}); }
Tensor empty_like(const Tensor& t) { return empty(t.sizes(), {t.dtype(), t.device()}); }
Tensor full_like(const Tensor& t, double v) { return full(t.sizes(), v, {t.dtype(), t.device()}); }

Tensor arange(double start, double end, double step, TensorOptions opt) {
  if (!opt.device.is_cpu())
    return on_cpu_then_copy(opt, [&](TensorOptions o) { return arange(start, end, step, o); });
  EVIT_CHECK(step != 0, "arange: step must be non-zero");
  int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  if (n < 0) n = 0;
  Tensor t = empty({n}, opt);
  dispatch_numeric(opt.dtype, "arange", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data_ptr<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + i * step);
  });
  return t;
}

Tensor arange(int64_t end, TensorOptions opt) { return arange(0.0, static_cast<double>(end), 1.0, opt); }

namespace {
// Fills t (contiguous, floating) with values computed from one Philox block per element.
template <class Fn>
Tensor random_fill(const Shape& shape, TensorOptions opt, Generator* gen, const char* op, Fn fn) {
  if (!opt.device.is_cpu()) return on_cpu_then_copy(opt, [&](TensorOptions o) {
    return random_fill(shape, o, gen, op, fn);
  });
  bool rg = opt.requires_grad;
  opt.requires_grad = false;
  Tensor t = empty(shape, opt);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed();
  const uint64_t base = g.reserve(t.numel());
  dispatch_floating(opt.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data_ptr<T>();
    parallel_for(0, t.numel(), 8192, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = static_cast<T>(fn(Generator::philox(seed, base + i)));
    });
  });
  opt.requires_grad = rg;
  return finish(t, opt);
}
}  // namespace

Tensor uniform(const Shape& shape, double low, double high, TensorOptions opt, Generator* gen) {
  EVIT_CHECK(low <= high, "uniform: low ", low, " > high ", high);
  return random_fill(shape, opt, gen, "uniform", [=](const std::array<uint32_t, 4>& w) {
    return low + (high - low) * Generator::to_unit_double(w[0], w[1]);
  });
}

Tensor rand(const Shape& shape, TensorOptions opt, Generator* gen) {
  return uniform(shape, 0.0, 1.0, opt, gen);
}

Tensor randn(const Shape& shape, TensorOptions opt, Generator* gen) {
  // Box-Muller on two uniforms from the same block.
  return random_fill(shape, opt, gen, "randn", [](const std::array<uint32_t, 4>& w) {
    double u1 = 1.0 - Generator::to_unit_double(w[0], w[1]);  // (0, 1]
    double u2 = Generator::to_unit_double(w[2], w[3]);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opt, Generator* gen) {
  if (!opt.device.is_cpu())
    return on_cpu_then_copy(opt, [&](TensorOptions o) { return randint(low, high, shape, o, gen); });
  EVIT_CHECK(low < high, "randint: expected low < high, got ", low, " and ", high);
  Tensor t = empty(shape, opt);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed();
  const uint64_t base = g.reserve(t.numel());
  const uint64_t range = static_cast<uint64_t>(high - low);
  dispatch_numeric(opt.dtype, "randint", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data_ptr<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      auto w = Generator::philox(seed, base + i);
      uint64_t x = (static_cast<uint64_t>(w[0]) << 32) | w[1];
      p[i] = static_cast<T>(low + static_cast<int64_t>(x % range));
    }
  });
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opt) {
  EVIT_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ",
             values.size(), " values do not fill shape ", shape_str(shape));
  Tensor t = from_blob(values.data(), shape, dtype_v<T>).to(opt.dtype);  // to() is a no-op for the same dtype
  if (opt.requires_grad) t.requires_grad_(true);
  return t;
}
template Tensor from_vector(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<double>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<int64_t>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<int32_t>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<uint8_t>&, const Shape&, TensorOptions);

Tensor from_blob(const void* data, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, TensorOptions(dtype));
  if (data && t.numel() > 0) std::memcpy(t.raw_data(), data, t.numel() * dtype_size(dtype));
  return t;
}

Tensor scalar_tensor(double value, TensorOptions opt) { return full({}, value, opt); }

}  // namespace evit
