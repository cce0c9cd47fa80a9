// dropout, dropout2d and drop_path: one keep mask over `groups` units (elements, channels or
// samples), each unit covering `unit` consecutive elements of the contiguous input.
//
// Unit i is kept when the 24-bit uniform from Philox word (i % 4) of counter (base + i / 4) is
// below 1 - p; the generator reserves ceil(groups / 4) counters per call. The mask is kept as u8
// (on the input's device) for backward: grad_x = grad_y * mask * scale. CUDA tensors draw the
// mask on the device from the same Philox counters (dropout.cu), so it equals the CPU's.
#include <cmath>
#include <vector>

#include "autograd/node.h"
#include "core/generator.h"
#include "core/parallel.h"
#include "ops/dropout.h"
#include "ops/dropout/cuda_slots.h"

namespace evit {
namespace {

Tensor make_mask(int64_t groups, double keep, Generator* gen, Device device) {
  Generator& g = gen ? *gen : default_generator();
  const uint64_t base = g.reserve(static_cast<uint64_t>((groups + 3) / 4));
  const uint64_t seed = g.seed();
  if (device.is_cuda()) {  // drawn on the device from the same Philox stream
    Tensor mask = empty({groups}, {DType::u8, device});
    dropout_mask_cuda(mask, seed, base, keep);
    return mask;
  }
  Tensor mask = empty({groups}, DType::u8);
  uint8_t* m = mask.data_ptr<uint8_t>();
  // chunks of whole counters (multiples of 4 units)
  parallel_for(0, (groups + 3) / 4, kPointwiseGrain / 4, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const auto w = Generator::philox(seed, base + static_cast<uint64_t>(c));
      for (int64_t l = 0; l < 4 && c * 4 + l < groups; ++l)
        m[c * 4 + l] = static_cast<double>(Generator::to_unit_float(w[l])) < keep ? 1 : 0;
    }
  });
  return mask;
}

// y[i] = x[i] * mask[i / unit] * scale over n elements (x, y contiguous).
template <class T>
void apply_mask(const T* x, const uint8_t* m, T* y, int64_t n, int64_t unit, T scale) {
  parallel_for(0, n, kPointwiseGrain, [&](int64_t b, int64_t e) {
    if (unit == 1) {
      for (int64_t i = b; i < e; ++i) y[i] = m[i] ? x[i] * scale : T(0);
    } else {
      for (int64_t i = b; i < e; ++i) y[i] = m[i / unit] ? x[i] * scale : T(0);
    }
  });
}

Tensor masked_scale(const Tensor& x_in, double p, int64_t groups, int64_t unit, Generator* gen,
                    const char* name, const char* bname) {
  const double keep = 1.0 - p;
  Tensor x = x_in.contiguous();
  Tensor mask = make_mask(groups, keep, gen, x.device());
  const double scale = keep > 0 ? 1.0 / keep : 0.0;
  Tensor y = empty(x.sizes(), {x.dtype(), x.device()});
  if (x.device().is_cuda()) {
    dropout_apply_cuda(x, mask, y, unit, scale);
  } else {
    dispatch_floating(x.dtype(), name, [&](auto tag) {
      using T = decltype(tag);
      apply_mask<T>(x.data_ptr<T>(), mask.data_ptr<uint8_t>(), y.data_ptr<T>(), x.numel(), unit,
                    static_cast<T>(scale));
    });
  }
  autograd::record(bname, {x_in}, {y}, {mask},
                   [unit, scale](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& m = ctx.saved(0);
                     Tensor g = ctx.grad_output(0).contiguous();
                     Tensor gx = empty(g.sizes(), {g.dtype(), g.device()});
                     if (g.device().is_cuda()) {
                       dropout_apply_cuda(g, m, gx, unit, scale);
                       return {gx};
                     }
                     dispatch_floating(g.dtype(), "dropout backward", [&](auto tag) {
                       using T = decltype(tag);
                       apply_mask<T>(g.data_ptr<T>(), m.data_ptr<uint8_t>(), gx.data_ptr<T>(),
                                     g.numel(), unit, static_cast<T>(scale));
                     });
                     return {gx};
                   });
  return y;
}

void check_common(const Tensor& x, double p, const char* name) {
  EVIT_CHECK(p >= 0.0 && p <= 1.0, name, ": p must be in [0, 1], got ", p);
  EVIT_CHECK(is_floating(x.dtype()), name, ": expected a floating dtype (f32 or f64), got ",
             x.desc());
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_common(x, p, "dropout");
  if (!training || p == 0.0) return x;
  return masked_scale(x, p, x.numel(), 1, gen, "dropout", "DropoutBackward");
}

Tensor dropout2d(const Tensor& x, double p, bool training, Generator* gen) {
  check_common(x, p, "dropout2d");
  EVIT_CHECK(x.dim() >= 3, "dropout2d: expected [N, C, H, W] (at least 3-D), got ", x.desc());
  if (!training || p == 0.0) return x;
  const int64_t groups = x.size(0) * x.size(1);
  const int64_t unit = groups == 0 ? 1 : std::max<int64_t>(1, x.numel() / groups);
  return masked_scale(x, p, groups, unit, gen, "dropout2d", "Dropout2dBackward");
}

Tensor drop_path(const Tensor& x, double p, bool training, Generator* gen) {
  check_common(x, p, "drop_path");
  EVIT_CHECK(x.dim() >= 1, "drop_path: expected a batch dimension, got ", x.desc());
  if (!training || p == 0.0) return x;
  const int64_t groups = x.size(0);
  const int64_t unit = groups == 0 ? 1 : std::max<int64_t>(1, x.numel() / groups);
  return masked_scale(x, p, groups, unit, gen, "drop_path", "DropPathBackward");
}

}  // namespace evit
