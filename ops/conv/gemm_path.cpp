// GEMM-based convolution: 1×1 stride-1 convs use the input planes directly as the column matrix
// (a batch of small images regrouped into one matrix first, see fold_batch);
// other geometries build im2col columns for a bounded chunk of output rows at a time (one group
// of one image), so the buffer never exceeds kColBudget elements whatever the image size.
// Each GEMM splits itself over the thread pool (ops/linalg/gemm.h); im2col / col2im / fills are
// parallel over rows or channels, each output element written by one task in a fixed order
// (deterministic).
#include <algorithm>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "core/scratch.h"
#include "ops/conv/bias_activation.h"
#include "ops/conv/kernels.h"
#include "ops/linalg/gemm.h"
#include "ops/linalg/small_products.h"
#include "ops/pointwise/activation_functor.h"

namespace evit::conv {
namespace {

constexpr int64_t kColBudget = int64_t(1) << 21;  // elements of one column chunk

// Output rows per column chunk.
int64_t chunk_rows(const Geom& g) {
  const int64_t per_row = std::max<int64_t>(1, g.Cg() * g.KK() * g.OW);
  return std::clamp<int64_t>(kColBudget / per_row, 1, std::max<int64_t>(g.OH, 1));
}

// The output columns [lo, hi) whose input column ow·sw + off lies inside [0, W).
inline void valid_cols(int64_t off, int64_t sw, int64_t W, int64_t OW, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
  hi = W - 1 - off >= 0 ? (W - 1 - off) / sw + 1 : 0;
  hi = std::min(hi, OW);
  lo = std::min(lo, hi);
}

// col [Cg·KK, rows·OW] for output rows [oh0, oh0 + rows) from xg [Cg, H, W].
template <class T>
void im2col(const Geom& g, const T* xg, int64_t oh0, int64_t rows, T* col) {
  const int64_t KK = g.KK(), cols = rows * g.OW, nrows = g.Cg() * KK;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(cols, 1));
  parallel_for(0, nrows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t c = r / KK, i = (r % KK) / g.KW, j = r % g.KW;
      const T* plane = xg + c * g.H * g.W;
      const int64_t off = j * g.dw - g.pw;
      int64_t lo, hi;
      valid_cols(off, g.sw, g.W, g.OW, lo, hi);
      T* dst = col + r * cols;
      for (int64_t oh = oh0; oh < oh0 + rows; ++oh, dst += g.OW) {
        const int64_t ih = oh * g.sh - g.ph + i * g.dh;
        if (ih < 0 || ih >= g.H) {
          std::fill(dst, dst + g.OW, T(0));
          continue;
        }
        const T* src = plane + ih * g.W + off;
        std::fill(dst, dst + lo, T(0));
        if (g.sw == 1) {
          std::memcpy(dst + lo, src + lo, sizeof(T) * (hi - lo));
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.sw];
        }
        std::fill(dst + hi, dst + g.OW, T(0));
      }
    }
  });
}

// The adjoint: dxg [Cg, H, W] += col scattered back. Parallel over input rows (c, ih): each row
// gathers the taps (i, j) that reach it from this chunk's output rows, in a fixed order, so
// every element is written by one task (deterministic, no races).
template <class T>
void col2im(const Geom& g, const T* col, int64_t oh0, int64_t rows, T* dxg) {
  const int64_t KK = g.KK(), cols = rows * g.OW;
  // The input rows this chunk touches.
  const int64_t ih_lo = std::max<int64_t>(0, oh0 * g.sh - g.ph);
  const int64_t ih_hi = std::min<int64_t>(g.H, (oh0 + rows - 1) * g.sh - g.ph + (g.KH - 1) * g.dh + 1);
  if (ih_hi <= ih_lo) return;
  const int64_t nrows = ih_hi - ih_lo;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(g.W * g.KK(), 1));
  parallel_for(0, g.Cg() * nrows, grain, [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t c = task / nrows, ih = ih_lo + task % nrows;
      T* dst_row = dxg + (c * g.H + ih) * g.W;
      for (int64_t i = 0; i < g.KH; ++i) {
        const int64_t num = ih + g.ph - i * g.dh;  // = oh · sh
        if (num < 0 || num % g.sh != 0) continue;
        const int64_t oh = num / g.sh;
        if (oh < oh0 || oh >= oh0 + rows) continue;
        for (int64_t j = 0; j < g.KW; ++j) {
          const int64_t off = j * g.dw - g.pw;
          int64_t lo, hi;
          valid_cols(off, g.sw, g.W, g.OW, lo, hi);
          const T* src = col + (c * KK + i * g.KW + j) * cols + (oh - oh0) * g.OW;
          T* dst = dst_row + off;
          if (g.sw == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.sw] += src[ow];
          }
        }
      }
    }
  });
}

template <class T>
void fill_parallel(T* p, int64_t n, T v) {
  parallel_for(0, n, kPointwiseGrain, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, v); });
}

}  // namespace

template <class T>
void add_bias(int64_t N, int64_t C, int64_t HW, const T* bias, T* y) {
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(HW, 1));
  parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const T v = bias[p % C];
      T* dst = y + p * HW;
      for (int64_t k = 0; k < HW; ++k) dst[k] += v;
    }
  });
}

template <class T>
void bias_backward(int64_t N, int64_t C, int64_t HW, const T* dy, T* db) {
  std::vector<double> part(N * C);
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(HW, 1));
  parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      // Eight independent lanes (vectorizable), combined in a fixed order.
      double lanes[8] = {};
      const T* src = dy + p * HW;
      int64_t k = 0;
      for (; k + 8 <= HW; k += 8)
        for (int l = 0; l < 8; ++l) lanes[l] += src[k + l];
      double acc = 0;
      for (; k < HW; ++k) acc += src[k];
      for (int l = 0; l < 8; ++l) acc += lanes[l];
      part[p] = acc;
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    double acc = 0;
    for (int64_t n = 0; n < N; ++n) acc += part[n * C + c];
    db[c] = static_cast<T>(acc);
  }
}

// Whether the products of a 1×1 convolution — one per image n and group gr, each M x N x K — run
// side by side, each whole on one thread, instead of one after another with each split over the
// pool: when there are more products than one product has pieces (detail::gemm_split). A training
// batch of 14×14 or 28×28 planes is a series of products too small to split (B0's 64->256 at
// 14×14: 3.2M multiply-adds), each of which would otherwise leave all but one thread idle. A
// product's pieces are a function of its shape, and a product run inside a parallel task computes
// the same pieces in the same order, so this choice changes no bit of y or dx.
bool products_side_by_side(const Geom& g, int64_t M, int64_t N, int64_t K) {
  const int64_t products = g.N * g.groups;
  return products > 1 && detail::gemm_split(M, N, K).tasks() < products;
}

// A 1×1 product this small — LiteMLA's grouped 16 -> 16 over 49 or 196 positions — costs a BLAS
// call's fixed overhead several times over; it runs in evit's register-tiled kernels
// (ops/linalg/small_products.h) instead: B1's inference 10.4-10.7 -> 10.0-10.2 ms. Larger ones stay
// with the BLAS, whose packed kernels win once the positions are many (the same grouped 16 -> 16
// over 2048 positions, forward + backward: 1.3 ms through the BLAS, 2.9 ms here).
constexpr int64_t kSmallProductMacs = int64_t{1} << 17;  // below gemm_split's one-piece size

bool small_product(int64_t M, int64_t N, int64_t K) { return M * N * K <= kSmallProductMacs; }

// Calls fn(n, gr) for every image n and group gr of a 1×1 convolution whose per-group product is
// M x N x K; each call writes only its own slice.
template <class Fn>
void for_each_image_group(const Geom& g, int64_t M, int64_t N, int64_t K, Fn&& fn) {
  if (products_side_by_side(g, M, N, K)) {
    parallel_for(0, g.N * g.groups, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) fn(p / g.groups, p % g.groups);
    });
    return;
  }
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t gr = 0; gr < g.groups; ++gr) fn(n, gr);
}

// A 1×1 convolution of a batch of small images is ONE product over all images: the planes are
// regrouped from [N, C, HW] to [C, N·HW] (a copy), so the weight is packed once instead of once
// per image, and the weight gradient sums over N·HW in one product instead of N read-modify-write
// passes over dw with a depth of HW each. That pays only where the per-image products are very
// thin: at EfficientViT's 7×7 stage (bs16, 128->512: 4.2 -> 2.6 ms forward + backward on 2
// threads) but not at 14×14 or 28×28, where the regrouping copies cost more than they save
// (6.8 -> 9.7 ms, 7.7 -> 12.5 ms).
constexpr int64_t kFoldHW = 100;

bool fold_batch(const Geom& g) { return g.pointwise() && g.groups == 1 && g.N > 1 && g.H * g.W < kFoldHW; }

// y[i] += r[i], i < n: a residual added after the batch-folded product's regrouping.
template <class T>
void add_in_place(int64_t n, const T* r, T* y) {
  parallel_for(0, n, kPointwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] += r[i];
  });
}

// dst [C, N, HW] from src [N, C, HW] (to_rows), or src [C, N, HW] back to dst [N, C, HW].
template <class T>
void regroup(const T* src, int64_t N, int64_t C, int64_t HW, T* dst, bool to_rows) {
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(HW, 1));
  parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {  // p = n·C + c
      const int64_t n = p / C, c = p % C;
      const T* from = to_rows ? src + p * HW : src + (c * N + n) * HW;
      T* to = to_rows ? dst + (c * N + n) * HW : dst + p * HW;
      std::memcpy(to, from, sizeof(T) * HW);
    }
  });
}

template <class T>
Scratch<T> batch_as_rows(const T* src, int64_t N, int64_t C, int64_t HW) {
  Scratch<T> rows(static_cast<size_t>(N * C * HW));
  regroup(src, N, C, HW, rows.data(), true);
  return rows;
}

// The folded backward products, from the output gradient already regrouped (dyr [O, N·HW]).
template <class T>
void folded_backward_input(const Geom& g, const T* dyr, const T* w, T* dx) {
  const int64_t HW = g.H * g.W, cols = g.N * HW;
  Scratch<T> dxr(static_cast<size_t>(g.C * cols));
  detail::gemm(true, false, g.C, cols, g.O, T(1), w, g.C, dyr, cols, T(0), dxr.data(), cols);
  regroup(dxr.data(), g.N, g.C, HW, dx, false);
}

template <class T>
void folded_backward_weight(const Geom& g, const T* x, const T* dyr, T* dw) {
  const int64_t HW = g.H * g.W, depth = g.N * HW;
  const Scratch<T> xr = batch_as_rows(x, g.N, g.C, HW);
  detail::gemm(false, true, g.O, g.C, depth, T(1), dyr, depth, xr.data(), depth, T(0), dw, g.C);
}

template <class T>
void gemm_forward(const Geom& g, const T* x, const T* w, const T* bias, T* y, ActivationKind act, const T* residual) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, Cg = g.Cg(), Og = g.Og();
  // The epilogue of a product whose top-left element is `c` (inside y) and whose row 0 is output
  // channel o0; the residual's element at the same offset is added to c's.
  auto epilogue = [&](T* c, int64_t ld, int64_t o0) {
    return bias_activation_epilogue<T>(c, ld, bias ? bias + o0 : nullptr, act, residual ? residual + (c - y) : nullptr);
  };
  const int64_t Kr = Cg * g.KK();
  const bool pw = g.pointwise();
  const int64_t crows = chunk_rows(g);
  Scratch<T> col(pw ? 0 : static_cast<size_t>(Kr * crows * g.OW));
  if (fold_batch(g) && Kr > 0) {
    const Scratch<T> xr = batch_as_rows(x, g.N, g.C, HW);
    Scratch<T> yr(static_cast<size_t>(g.O * g.N * HW));
    const int64_t cols = g.N * HW;
    // yr is not laid out as y: the residual is added after the regrouping.
    const auto ep = bias_activation_epilogue<T>(yr.data(), cols, bias, act);
    detail::gemm(false, false, g.O, cols, g.C, T(1), w, g.C, xr.data(), cols, T(0), yr.data(), cols,
                 ep ? &*ep : nullptr);
    regroup(yr.data(), g.N, g.O, HW, y, false);
    if (residual) add_in_place(g.N * g.O * OHW, residual, y);
    return;
  }
  if (pw && Kr > 0) {
    const bool small = small_product(Og, OHW, Cg);
    for_each_image_group(g, Og, OHW, Cg, [&](int64_t n, int64_t gr) {
      T* yg = y + n * g.O * OHW + gr * Og * OHW;
      const T *wg = w + gr * Og * Kr, *xg = x + n * g.C * HW + gr * Cg * HW;
      const auto ep = epilogue(yg, OHW, gr * Og);
      if (small) {
        detail::small_products::small_mm(wg, Cg, 1, Og, Cg, xg, HW, yg, OHW, OHW);
        if (ep) (*ep)(0, Og, 0, OHW);
      } else {
        detail::gemm(false, false, Og, OHW, Cg, T(1), wg, Cg, xg, HW, T(0), yg, OHW, ep ? &*ep : nullptr);
      }
    });
    return;
  }
  for (int64_t n = 0; n < g.N; ++n) {
    const T* xn = x + n * g.C * HW;
    T* yn = y + n * g.O * OHW;
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const T* wg = w + gr * Og * Kr;
      T* yg = yn + gr * Og * OHW;
      if (Kr == 0) {
        std::fill(yg, yg + Og * OHW, T(0));
        if (const auto ep = epilogue(yg, OHW, gr * Og)) (*ep)(0, Og, 0, OHW);
        continue;
      }
      for (int64_t oh0 = 0; oh0 < g.OH; oh0 += crows) {
        const int64_t rows = std::min(crows, g.OH - oh0), cols = rows * g.OW;
        im2col(g, xn + gr * Cg * HW, oh0, rows, col.data());
        const auto ep = epilogue(yg + oh0 * g.OW, OHW, gr * Og);
        detail::gemm(false, false, Og, cols, Kr, T(1), wg, Kr, col.data(), cols, T(0), yg + oh0 * g.OW, OHW,
                     ep ? &*ep : nullptr);
      }
    }
  }
}

template <class T>
void gemm_backward_input(const Geom& g, const T* dy, const T* w, T* dx) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, Cg = g.Cg(), Og = g.Og();
  const int64_t Kr = Cg * g.KK();
  const bool pw = g.pointwise();
  if (!pw || Og == 0) fill_parallel(dx, g.N * g.C * HW, T(0));
  if (Og == 0) return;
  if (fold_batch(g)) return folded_backward_input(g, batch_as_rows(dy, g.N, g.O, HW).data(), w, dx);
  const int64_t crows = chunk_rows(g);
  Scratch<T> col(pw ? 0 : static_cast<size_t>(Kr * crows * g.OW));
  if (pw) {
    const bool small = small_product(Cg, HW, Og);
    for_each_image_group(g, Cg, HW, Og, [&](int64_t n, int64_t gr) {
      const T *wg = w + gr * Og * Kr, *dyg = dy + n * g.O * OHW + gr * Og * OHW;
      T* dxg = dx + n * g.C * HW + gr * Cg * HW;
      if (small)
        detail::small_products::small_mm(wg, 1, Cg, Cg, Og, dyg, OHW, dxg, HW, HW);  // wg transposed
      else
        detail::gemm(true, false, Cg, HW, Og, T(1), wg, Cg, dyg, OHW, T(0), dxg, HW);
    });
    return;
  }
  for (int64_t n = 0; n < g.N; ++n) {
    const T* dyn = dy + n * g.O * OHW;
    T* dxn = dx + n * g.C * HW;
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const T* wg = w + gr * Og * Kr;
      const T* dyg = dyn + gr * Og * OHW;
      for (int64_t oh0 = 0; oh0 < g.OH; oh0 += crows) {
        const int64_t rows = std::min(crows, g.OH - oh0), cols = rows * g.OW;
        detail::gemm(true, false, Kr, cols, Og, T(1), wg, Kr, dyg + oh0 * g.OW, OHW, T(0),
                     col.data(), cols);
        col2im(g, col.data(), oh0, rows, dxn + gr * Cg * HW);
      }
    }
  }
}

template <class T>
void gemm_backward_weight(const Geom& g, const T* x, const T* dy, T* dw) {
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, Cg = g.Cg(), Og = g.Og();
  const int64_t Kr = Cg * g.KK();
  const bool pw = g.pointwise();
  // Accumulate over images and chunks in order (beta = 1 onto zeros): deterministic.
  std::fill(dw, dw + g.O * Kr, T(0));
  if (Kr == 0 || OHW == 0) return;
  if (fold_batch(g)) return folded_backward_weight(g, x, batch_as_rows(dy, g.N, g.O, HW).data(), dw);
  const int64_t crows = chunk_rows(g);
  Scratch<T> col(pw ? 0 : static_cast<size_t>(Kr * crows * g.OW));
  if (pw) {
    // A small product overwrites dwg rather than adding to it: side by side, each (image, group)
    // has its own partial; one after another, there is only one product (a small one is below
    // gemm_split's one-piece size, so more than one would have run side by side).
    const bool small = small_product(Og, Cg, OHW);
    const auto image_group_product = [&](int64_t n, int64_t gr, T beta, T* dwg) {
      const T *dyg = dy + n * g.O * OHW + gr * Og * OHW, *xg = x + n * g.C * HW + gr * Cg * HW;
      if (small)
        detail::small_products::gram(dyg, OHW, Og, xg, HW, Cg, OHW, dwg, Cg);
      else
        detail::gemm(false, true, Og, Cg, OHW, T(1), dyg, OHW, xg, HW, beta, dwg, Cg);
    };
    if (!products_side_by_side(g, Og, Cg, OHW)) {  // one after another: accumulate into dw in order
      for_each_image_group(g, Og, Cg, OHW, [&](int64_t n, int64_t gr) {
        image_group_product(n, gr, T(1), dw + gr * Og * Kr);
      });
      return;
    }
    // Each image's products into its own partial dw, side by side; then the images' partials
    // summed in order, element by element: every bit fixed by the shape.
    const int64_t per_image = g.O * Cg;
    Scratch<T> part(static_cast<size_t>(g.N * per_image));
    for_each_image_group(g, Og, Cg, OHW, [&](int64_t n, int64_t gr) {
      image_group_product(n, gr, T(0), part.data() + n * per_image + gr * Og * Cg);
    });
    // A block of elements at a time, images in the outer loop: each element's sum keeps its order
    // (image 0 first), and the inner loop runs along contiguous memory, so it vectorizes.
    parallel_for(0, per_image, std::max<int64_t>(1, kPointwiseGrain / g.N), [&](int64_t b, int64_t e) {
      constexpr int64_t kBlock = 256;
      double acc[kBlock];
      for (int64_t i0 = b; i0 < e; i0 += kBlock) {
        const int64_t len = std::min(kBlock, e - i0);
        std::fill_n(acc, len, 0.0);
        for (int64_t n = 0; n < g.N; ++n) {
          const T* p = part.data() + n * per_image + i0;
          for (int64_t j = 0; j < len; ++j) acc[j] += p[j];
        }
        for (int64_t j = 0; j < len; ++j) dw[i0 + j] = static_cast<T>(acc[j]);
      }
    });
    return;
  }
  for (int64_t n = 0; n < g.N; ++n) {
    const T* xn = x + n * g.C * HW;
    const T* dyn = dy + n * g.O * OHW;
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const T* dyg = dyn + gr * Og * OHW;
      T* dwg = dw + gr * Og * Kr;
      for (int64_t oh0 = 0; oh0 < g.OH; oh0 += crows) {
        const int64_t rows = std::min(crows, g.OH - oh0), cols = rows * g.OW;
        im2col(g, xn + gr * Cg * HW, oh0, rows, col.data());
        detail::gemm(false, true, Og, Kr, cols, T(1), dyg + oh0 * g.OW, OHW, col.data(), cols,
                     T(1), dwg, Kr);
      }
    }
  }
}

template <class T>
void gemm_backward(const Geom& g, const T* x, const T* dy, const T* w, T* dx, T* dw) {
  if (dx && dw && fold_batch(g) && g.O > 0 && g.C > 0) {  // one regrouping of dy for both
    const Scratch<T> dyr = batch_as_rows(dy, g.N, g.O, g.H * g.W);
    folded_backward_input(g, dyr.data(), w, dx);
    folded_backward_weight(g, x, dyr.data(), dw);
    return;
  }
  if (dx) gemm_backward_input(g, dy, w, dx);
  if (dw) gemm_backward_weight(g, x, dy, dw);
}

#define EVIT_CONV_INSTANTIATE(T)                                                          \
  template void gemm_forward<T>(const Geom&, const T*, const T*, const T*, T*, ActivationKind, const T*); \
  template void gemm_backward_input<T>(const Geom&, const T*, const T*, T*);             \
  template void gemm_backward_weight<T>(const Geom&, const T*, const T*, T*);            \
  template void gemm_backward<T>(const Geom&, const T*, const T*, const T*, T*, T*);      \
  template void bias_backward<T>(int64_t, int64_t, int64_t, const T*, T*);               \
  template void add_bias<T>(int64_t, int64_t, int64_t, const T*, T*);
EVIT_CONV_INSTANTIATE(float)
EVIT_CONV_INSTANTIATE(double)
#undef EVIT_CONV_INSTANTIATE

}  // namespace evit::conv
