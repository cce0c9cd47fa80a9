#include "train/sam_mask_loss.h"

#include <algorithm>
#include <numeric>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "ops/ops.h"

namespace evit::train {

Tensor sample_uncertain_points(const Tensor& logits, const SamMaskLossOptions& o, Generator& g) {
  EVIT_CHECK(logits.dim() == 4 && logits.size(1) == 1, "sam mask loss: logits must be [M, 1, H, W], got ",
             logits.desc());
  EVIT_CHECK(o.points >= 1 && o.oversample >= 1 && o.importance >= 0 && o.importance <= 1,
             "sam mask loss: points must be >= 1, oversample >= 1 and importance in [0, 1]; got ", o.points, ", ",
             o.oversample, ", ", o.importance);
  NoGradGuard no_grad;
  const int64_t M = logits.size(0);
  const int64_t candidates = static_cast<int64_t>(static_cast<double>(o.points) * o.oversample);
  const int64_t uncertain = static_cast<int64_t>(o.importance * static_cast<double>(o.points));
  const int64_t uniform = o.points - uncertain;
  const TensorOptions host{logits.dtype(), kCPU};
  // Drawn on the host so CPU and CUDA runs pick the same points.
  const Tensor cand = rand({M, candidates, 2}, host, &g);
  const Tensor certainty = abs(point_sample(logits.detach(), cand.to(logits.device()))).to(kCPU).to(DType::f64);
  Tensor picked = empty({M, uncertain, 2}, host);
  dispatch_floating(logits.dtype(), "sam mask loss", [&](auto tag) {
    using T = decltype(tag);
    const T* c = cand.data_ptr<T>();
    const double* u = certainty.data_ptr<double>();
    T* out = picked.data_ptr<T>();
    std::vector<int64_t> order(static_cast<size_t>(candidates));
    for (int64_t m = 0; m < M; ++m) {
      const double* um = u + m * candidates;
      std::iota(order.begin(), order.end(), 0);
      // The most uncertain first (smallest |logit|); ties by index, so the choice is reproducible.
      std::partial_sort(order.begin(), order.begin() + uncertain, order.end(),
                        [um](int64_t a, int64_t b) { return um[a] < um[b] || (um[a] == um[b] && a < b); });
      for (int64_t i = 0; i < uncertain; ++i) {
        out[(m * uncertain + i) * 2] = c[(m * candidates + order[i]) * 2];
        out[(m * uncertain + i) * 2 + 1] = c[(m * candidates + order[i]) * 2 + 1];
      }
    }
  });
  if (uniform > 0) picked = cat({picked, rand({M, uniform, 2}, host, &g)}, 1);
  return picked.to(logits.device());
}

Tensor sam_point_loss(const Tensor& logits, const Tensor& targets, const Tensor& coords, double bce_weight) {
  EVIT_CHECK(logits.dim() == 4 && logits.size(1) == 1 && targets.sizes() == logits.sizes(),
             "sam mask loss: logits and targets must both be [M, 1, H, W], got ", logits.desc(), " and ",
             targets.desc());
  const Tensor pl = squeeze(point_sample(logits, coords), 1);  // [M, P]
  Tensor pt;
  {
    NoGradGuard no_grad;
    pt = squeeze(point_sample(targets.detach(), coords), 1);
  }
  const Tensor bce = mean(binary_cross_entropy_with_logits(pl, pt, Tensor(), Reduction::none), {1});
  const Tensor p = sigmoid(pl);
  const Tensor numerator = add(mul(sum(mul(p, pt), {1}), 2.0), 1.0);
  const Tensor denominator = add(add(sum(p, {1}), sum(pt, {1})), 1.0);
  const Tensor dice = neg(sub(div(numerator, denominator), 1.0));
  return add(mul(bce, bce_weight), dice);
}

Tensor sam_finetune_loss(const Tensor& low_res_logits, const Tensor& targets, const SamMaskLossOptions& o,
                         Generator& g) {
  EVIT_CHECK(low_res_logits.dim() == 4, "sam mask loss: predicted logits must be [M, K, h, w], got ",
             low_res_logits.desc());
  EVIT_CHECK(targets.dim() == 3 && targets.size(0) == low_res_logits.size(0) && targets.size(1) == targets.size(2),
             "sam mask loss: targets must be [M, S, S] with M = ", low_res_logits.size(0), ", got ", targets.desc());
  const int64_t S = targets.size(1), K = low_res_logits.size(1);
  const Tensor t = unsqueeze(targets.to(low_res_logits.dtype()), 1);
  std::vector<Tensor> per_mask;
  for (int64_t k = 0; k < K; ++k) {
    const Tensor up = interpolate(slice(low_res_logits, 1, k, k + 1), {S, S}, {}, InterpolateMode::bilinear, false);
    const Tensor coords = sample_uncertain_points(up, o, g);
    per_mask.push_back(unsqueeze(sam_point_loss(up, t, coords, o.bce_weight), 1));
  }
  return mean(min(cat(per_mask, 1), 1).first);
}

}  // namespace evit::train
