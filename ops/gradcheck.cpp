#include "ops/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/generator.h"
#include "ops/pointwise.h"
#include "ops/reduce.h"

namespace evit {
namespace {

// Offset (in elements, from the tensor's data pointer) of logical row-major element k.
int64_t element_offset(const Tensor& t, int64_t k) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (k % t.sizes()[d]) * t.strides()[d];
    k /= t.sizes()[d];
  }
  return off;
}

double get_elem(const Tensor& t, int64_t k) {
  return dispatch_floating(t.dtype(), "gradcheck", [&](auto tag) {
    using T = decltype(tag);
    return static_cast<double>(static_cast<T*>(t.raw_data())[element_offset(t, k)]);
  });
}

// Writes element k and bumps the version, like any in-place change: caches keyed on versions
// (e.g. folded conv weights) must see the perturbation.
void set_elem(const Tensor& t, int64_t k, double v) {
  dispatch_floating(t.dtype(), "gradcheck", [&](auto tag) {
    using T = decltype(tag);
    static_cast<T*>(t.raw_data())[element_offset(t, k)] = static_cast<T>(v);
  });
  t.bump_version();
}

std::vector<double> values(const Tensor& t) { return t.detach().to_vector<double>(); }

std::vector<double> eval_no_grad(const GradcheckFn& fn, const std::vector<Tensor>& in) {
  NoGradGuard g;
  return values(fn(in));
}

bool close(double a, double n, const GradcheckOptions& o) {
  return std::abs(a - n) <= o.atol + o.rtol * std::abs(n);
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  GradcheckResult res;
  std::ostringstream msg;
  int reported = 0;
  auto mismatch = [&](const std::string& what) {
    res.ok = false;
    if (reported++ < 10) msg << what << "\n";
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined() || !t.requires_grad()) continue;
    EVIT_CHECK(t.is_leaf(), "gradcheck: input ", i, " must be a leaf");
    EVIT_CHECK(opt.fast || t.dtype() == DType::f64, "gradcheck: full mode needs f64 inputs, ",
               "input ", i, " is ", t.desc(), " (use fast mode for f32)");
    for (int64_t s : t.strides())
      EVIT_CHECK(s != 0, "gradcheck: input ", i, " is an expanded (stride 0) tensor");
    t.set_grad(Tensor());
  }

  Tensor y = fn(inputs);
  EVIT_CHECK(y.requires_grad(), "gradcheck: the output does not require grad (", y.desc(), ")");
  const int64_t m = y.numel();

  if (!opt.fast) {
    // Analytic Jacobian, one row per output element.
    std::vector<std::vector<std::vector<double>>> ana(inputs.size());  // [input][out][elem]
    for (int64_t j = 0; j < m; ++j) {
      for (auto& t : inputs)
        if (t.defined() && t.requires_grad()) t.set_grad(Tensor());
      Tensor g = zeros(y.sizes(), {y.dtype()});
      set_elem(g, j, 1.0);
      y.backward(g, /*retain_graph=*/true);
      for (size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& t = inputs[i];
        if (!t.defined() || !t.requires_grad()) continue;
        Tensor gr = t.grad();
        ana[i].push_back(gr.defined() ? values(gr) : std::vector<double>(t.numel(), 0.0));
      }
    }
    // Numerical Jacobian, one column per input element.
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& t = inputs[i];
      if (!t.defined() || !t.requires_grad()) continue;
      for (int64_t k = 0; k < t.numel(); ++k) {
        double orig = get_elem(t, k);
        set_elem(t, k, orig + opt.eps);
        std::vector<double> fp = eval_no_grad(fn, inputs);
        set_elem(t, k, orig - opt.eps);
        std::vector<double> fm = eval_no_grad(fn, inputs);
        set_elem(t, k, orig);
        for (int64_t j = 0; j < m; ++j) {
          double num = (fp[j] - fm[j]) / (2 * opt.eps);
          double a = ana[i][j][k];
          if (!close(a, num, opt)) {
            std::ostringstream w;
            w << "input " << i << " element " << k << ", output " << j << ": analytic " << a
              << " vs numerical " << num;
            mismatch(w.str());
          }
        }
      }
    }
  } else {
    Generator gen(opt.seed);
    for (int rep = 0; rep < opt.fast_repeats; ++rep) {
      // A fresh graph per projection: the previous one saw the perturbations below.
      if (rep > 0) y = fn(inputs);
      Tensor v = randn(y.sizes(), {y.dtype()}, &gen);
      for (auto& t : inputs)
        if (t.defined() && t.requires_grad()) t.set_grad(Tensor());
      y.backward(v, /*retain_graph=*/true);
      std::vector<double> vv = values(v);
      double analytic = 0, numeric = 0;
      std::vector<std::vector<double>> dirs(inputs.size());
      for (size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& t = inputs[i];
        if (!t.defined() || !t.requires_grad()) continue;
        dirs[i] = values(randn(t.sizes(), {DType::f64}, &gen));
        Tensor gr = t.grad();
        if (!gr.defined()) continue;
        std::vector<double> gv = values(gr);
        for (int64_t k = 0; k < t.numel(); ++k) analytic += gv[k] * dirs[i][k];
      }
      auto shift = [&](double sign) {
        for (size_t i = 0; i < inputs.size(); ++i) {
          const Tensor& t = inputs[i];
          if (!t.defined() || !t.requires_grad()) continue;
          for (int64_t k = 0; k < t.numel(); ++k)
            set_elem(t, k, get_elem(t, k) + sign * opt.eps * dirs[i][k]);
        }
      };
      std::vector<double> base_vals;
      for (size_t i = 0; i < inputs.size(); ++i)
        if (inputs[i].defined() && inputs[i].requires_grad()) {
          auto b = values(inputs[i]);
          base_vals.insert(base_vals.end(), b.begin(), b.end());
        }
      shift(+1);
      std::vector<double> fp = eval_no_grad(fn, inputs);
      shift(-2);
      std::vector<double> fm = eval_no_grad(fn, inputs);
      // Restore exactly (repeated shifts would drift in floating point).
      size_t pos = 0;
      for (size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& t = inputs[i];
        if (!t.defined() || !t.requires_grad()) continue;
        for (int64_t k = 0; k < t.numel(); ++k) set_elem(t, k, base_vals[pos++]);
      }
      for (int64_t j = 0; j < m; ++j) numeric += vv[j] * (fp[j] - fm[j]) / (2 * opt.eps);
      if (!close(analytic, numeric, opt)) {
        std::ostringstream w;
        w << "projection " << rep << ": analytic v^T J u = " << analytic << " vs numerical "
          << numeric;
        mismatch(w.str());
      }
    }
  }
  for (auto& t : inputs)
    if (t.defined() && t.requires_grad()) t.set_grad(Tensor());
  res.message = msg.str();
  return res;
}

}  // namespace evit
