// Softmax family: softmax, log_softmax and scaled dot-product (softmax) attention.
#pragma once
#include <optional>

#include "core/tensor.h"

namespace evit {

// softmax(x)_i = exp(x_i - max) / sum_j exp(x_j - max) along `dim` (negative counts from the
// end). Any shape, f32/f64, numerically stable (the row maximum is subtracted; sums accumulate
// in f64). Differentiable. Deterministic for any thread count.
Tensor softmax(const Tensor& x, int64_t dim);
// log_softmax(x)_i = x_i - max - log(sum_j exp(x_j - max)).
Tensor log_softmax(const Tensor& x, int64_t dim);

// Scaled dot-product attention for [B, H, Nq, d] queries, [B, H, Nk, d] keys and
// [B, H, Nk, dv] values (the SAM two-way transformer's layout):
//   out = softmax(q k^T * scale) v,  scale defaults to 1 / sqrt(d).
// Returns [B, H, Nq, dv]. Materialises the Nq x Nk probabilities (kept for backward).
// Differentiable in q, k and v. Parallel over (batch, head, query rows); deterministic.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    std::optional<double> scale = std::nullopt);

}  // namespace evit
