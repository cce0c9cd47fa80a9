#include "optim/clip.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "core/parallel.h"

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

}  // namespace

double grad_norm(const std::vector<Tensor>& params) {
  double total = 0.0;
  for (auto& g : gradients(params, "grad_norm")) total += sum_of_squares(g);
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite) {
  EVIT_CHECK(max_norm >= 0.0, "clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  NoGradGuard no_grad;
  auto grads = gradients(params, "clip_grad_norm");
  double total = 0.0;
  for (auto& g : grads) total += sum_of_squares(g);
  total = std::sqrt(total);
  EVIT_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm: the total norm of the gradients is ",
             total, " (non-finite)");
  const double coef = max_norm / (total + 1e-6);
  // torch multiplies by min(coef, 1) unconditionally; multiplying by exactly 1 changes nothing,
  // so that case is skipped. A NaN coef falls through and is applied, as in torch.
  if (coef >= 1.0) return total;
  for (auto& g : grads) {
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
  for (auto& g : gradients(params, "clip_grad_value")) {
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
