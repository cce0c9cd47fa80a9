#include "optim/clip.h"

#include <cmath>
#include <map>

#include "autograd/grad_mode.h"
#include "core/copy.h"
#include "core/parallel.h"
#include "optim/cuda_slots.h"

namespace evit::optim {

namespace {

// Each parameter's gradient, checked to be a floating tensor of the parameter's shape.
std::vector<Tensor> gradients(const std::vector<Tensor>& params, const char* what) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < params.size(); ++i) {
    EVIT_CHECK(params[i].defined(), what, ": parameter ", i, " is undefined");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    EVIT_CHECK(is_floating(g.dtype()), what, ": gradient of parameter ", i, " is ", g.desc());
    out.push_back(g);
  }
  return out;
}

double sum_of_squares(const Tensor& g) {
  Tensor c = g.contiguous();
  const int64_t n = c.numel();
  // One partial per fixed chunk, combined in chunk order: thread-count independent.
  std::vector<double> partial(static_cast<size_t>(num_chunks(0, n, kPointwiseGrain)), 0.0);
  dispatch_floating(c.dtype(), "clip_grad_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* p = c.data_ptr<T>();
    parallel_for(0, n, kPointwiseGrain, [&](int64_t b, int64_t e) {
      double s = 0.0;
      for (int64_t i = b; i < e; ++i) s += static_cast<double>(p[i]) * static_cast<double>(p[i]);
      partial[static_cast<size_t>(b / kPointwiseGrain)] = s;
    });
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

// Applies fn to every element of g in place (g may be a non-contiguous view: it is rewritten
// through a contiguous copy only when needed).
template <class F>
void apply_inplace(Tensor& g, F&& fn, const char* what) {
  Tensor c = g.contiguous();
  dispatch_floating(c.dtype(), what, [&](auto tag) {
    using T = decltype(tag);
    T* p = c.data_ptr<T>();
    parallel_for(0, c.numel(), kPointwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = fn(p[i]);
    });
  });
  if (!c.is_same(g)) {
    // A strided gradient: write back element by element in row-major order.
    Tensor tmp = c;
    dispatch_floating(g.dtype(), what, [&](auto tag) {
      using T = decltype(tag);
      std::vector<T> v = tmp.to_vector<T>();
      const Shape& sz = g.sizes();
      const Shape& st = g.strides();
      T* base = g.data_ptr<T>();
      std::vector<int64_t> idx(sz.size(), 0);
      for (size_t k = 0; k < v.size(); ++k) {
        int64_t off = 0;
        for (size_t d = 0; d < sz.size(); ++d) off += idx[d] * st[d];
        base[off] = v[k];
        for (int64_t d = static_cast<int64_t>(sz.size()) - 1; d >= 0; --d) {
          if (++idx[d] < sz[d]) break;
          idx[d] = 0;
        }
      }
    });
  }
  g.bump_version();
}

// CUDA gradients per device, each as a contiguous working tensor (the gradient itself, or a
// copy of a strided one that write_back() copies into the gradient afterwards).
struct CudaGrads {
  std::vector<Tensor> grads, work;
};

std::map<int, CudaGrads> cuda_gradients(const std::vector<Tensor>& grads) {
  std::map<int, CudaGrads> out;
  for (const Tensor& g : grads) {
    if (!g.device().is_cuda()) continue;
    CudaGrads& c = out[g.device().index];
    c.grads.push_back(g);
    c.work.push_back(g.contiguous());
  }
  return out;
}

void write_back(const CudaGrads& c) {
  for (size_t i = 0; i < c.grads.size(); ++i) {
    if (!c.work[i].is_same(c.grads[i])) copy_elements(c.grads[i], c.work[i]);
    c.grads[i].bump_version();
  }
}

// Sum of squares of all gradients: CPU ones in order, then one reduction per CUDA device.
double total_sum_of_squares(const std::vector<Tensor>& grads) {
  double total = 0.0;
  for (auto& g : grads)
    if (!g.device().is_cuda()) total += sum_of_squares(g);
  for (auto& [device, c] : cuda_gradients(grads)) total += grad_sum_of_squares_cuda(c.work);
  return total;
}

}  // namespace

double grad_norm(const std::vector<Tensor>& params) {
  return std::sqrt(total_sum_of_squares(gradients(params, "grad_norm")));
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite) {
  EVIT_CHECK(max_norm >= 0.0, "clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  NoGradGuard no_grad;
  auto grads = gradients(params, "clip_grad_norm");
  bool one_cuda_device = !grads.empty() && grads[0].device().is_cuda();
  for (auto& g : grads) one_cuda_device = one_cuda_device && g.device() == grads[0].device();
  if (one_cuda_device && !error_if_nonfinite) {
    // Norm, clip factor and scaling on the device; only the norm comes back.
    auto cuda = cuda_gradients(grads);
    CudaGrads& c = cuda.begin()->second;
    const double total = clip_grad_norm_cuda(c.work, max_norm);
    if (!(max_norm / (total + 1e-6) >= 1.0)) write_back(c);  // the device applied the factor
    return total;
  }
  const double total = std::sqrt(total_sum_of_squares(grads));
  EVIT_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm: the total norm of the gradients is ",
             total, " (non-finite)");
  const double coef = max_norm / (total + 1e-6);
  // torch multiplies by min(coef, 1) unconditionally; multiplying by exactly 1 changes nothing,
  // so that case is skipped. A NaN coef falls through and is applied, as in torch.
  if (coef >= 1.0) return total;
  for (auto& [device, c] : cuda_gradients(grads)) {
    scale_grads_cuda(c.work, coef);
    write_back(c);
  }
  for (auto& g : grads) {
    if (g.device().is_cuda()) continue;
    dispatch_floating(g.dtype(), "clip_grad_norm", [&](auto tag) {
      using T = decltype(tag);
      const T c = static_cast<T>(coef);
      apply_inplace(g, [c](T x) { return x * c; }, "clip_grad_norm");
    });
  }
  return total;
}

double clip_grad_norm(const nn::Module& m, double max_norm, bool error_if_nonfinite) {
  return clip_grad_norm(m.parameters(), max_norm, error_if_nonfinite);
}

void clip_grad_value(const std::vector<Tensor>& params, double clip_value) {
  EVIT_CHECK(clip_value >= 0.0, "clip_grad_value: clip_value must be >= 0, got ", clip_value);
  NoGradGuard no_grad;
  auto grads = gradients(params, "clip_grad_value");
  for (auto& [device, c] : cuda_gradients(grads)) {
    clip_grad_value_cuda(c.work, clip_value);
    write_back(c);
  }
  for (auto& g : grads) {
    if (g.device().is_cuda()) continue;
    dispatch_floating(g.dtype(), "clip_grad_value", [&](auto tag) {
      using T = decltype(tag);
      const T hi = static_cast<T>(clip_value), lo = -hi;
      // Written so that NaN passes through unchanged, like torch.clamp.
      apply_inplace(g, [lo, hi](T x) { return x < lo ? lo : (x > hi ? hi : x); }, "clip_grad_value");
    });
  }
}

void clip_grad_value(const nn::Module& m, double clip_value) { clip_grad_value(m.parameters(), clip_value); }

}  // namespace evit::optim
