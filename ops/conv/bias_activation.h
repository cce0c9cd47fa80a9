// Internal: a convolution's bias and activation as a GEMM epilogue. Used by the GEMM path
// (gemm_path.cpp) and the fused inverted bottleneck (inverted_bottleneck.cpp), whose products
// have output channels as rows.
#pragma once
#include <cstdint>
#include <optional>
#include <type_traits>

#include "ops/activation.h"
#include "ops/linalg/gemm.h"
#include "ops/pointwise/activation_functor.h"

namespace evit::conv {

// For a product whose top-left element is `c` (leading dimension ld, row m = the output channel
// with bias b[m]; b may be null): act(c + b) + r on each finished block, while it is still in
// cache — no pass that fills the output with the bias before the product, none that applies the
// activation after it, none that adds a residual block's shortcut. r (may be null) has c's
// layout: r[m·ld + n] is added to c[m·ld + n], after the activation, as add(act(...), r) would.
// Blocks of one product may run on different threads, each on its own. Nothing (nullopt) when
// there is neither a bias, an activation nor a residual.
template <class T>
std::optional<detail::GemmEpilogue> bias_activation_epilogue(T* c, int64_t ld, const T* b, ActivationKind act,
                                                             const T* r = nullptr) {
  if (act == ActivationKind::none && !b && !r) return std::nullopt;
  return detail::GemmEpilogue([c, act, ld, b, r](int64_t m0, int64_t rows, int64_t n0, int64_t cols) {
    with_activation_functor(act, [&](auto fn) {
      constexpr bool kAct = !std::is_same_v<decltype(fn), NoActivation>;
      for (int64_t m = m0; m < m0 + rows; ++m) {
        T* row = c + m * ld + n0;
        if (b) {
          const T bm = b[m];
          if constexpr (kAct) {
            for (int64_t j = 0; j < cols; ++j) row[j] = fn.forward(row[j] + bm);
          } else {
            for (int64_t j = 0; j < cols; ++j) row[j] += bm;
          }
        } else if constexpr (kAct) {
          for (int64_t j = 0; j < cols; ++j) row[j] = fn.forward(row[j]);
        }
        // A loop of its own (the row is in L1): in one expression the compiler could contract
        // the activation's last product and this sum into one FMA, which rounds differently.
        if (r) {
          const T* add = r + m * ld + n0;
          for (int64_t j = 0; j < cols; ++j) row[j] += add[j];
        }
      }
    });
  });
}

}  // namespace evit::conv
