// cat, split, split_with_sizes, chunk.
//
// cat copies: with the inputs contiguous, input i viewed as [outer, n_i * inner] lands in the
// output [outer, N * inner] at column offset off_i * inner, so the kernel is a set of row
// memcpy's (dtype-agnostic), split into fixed tasks of rows for parallel_for. Its backward hands
// each input the matching slice of the gradient.
//
// On CUDA, cat is one strided device copy per input into its slice of the output.
//
// split/chunk return views (slice()), so they cost nothing and are differentiable through
// slice's backward.
#include <cstring>

#include "autograd/node.h"
#include "core/copy.h"
#include "core/parallel.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace evit {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  EVIT_CHECK(!xs.empty(), "cat: expected a non-empty list of tensors");
  const Tensor& first = xs[0];
  EVIT_CHECK(first.defined(), "cat: tensor 0 is undefined");
  EVIT_CHECK(first.dim() > 0, "cat: zero-dimensional tensor 0 (", first.desc(),
             ") cannot be concatenated");
  const int64_t nd = first.dim();
  const int64_t d = wrap_dim(dim, nd, "cat");
  Shape out_shape = first.sizes();
  out_shape[d] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    EVIT_CHECK(t.defined(), "cat: tensor ", i, " is undefined");
    EVIT_CHECK(t.dtype() == first.dtype(), "cat: tensor ", i, " has dtype ",
               dtype_name(t.dtype()), " but tensor 0 has ", dtype_name(first.dtype()), " (",
               t.desc(), " vs ", first.desc(), ")");
    EVIT_CHECK(t.device() == first.device(), "cat: tensor ", i, " is on ", t.device().str(),
               " but tensor 0 is on ", first.device().str());
    EVIT_CHECK(t.dim() == nd, "cat: tensor ", i, " has ", t.dim(), " dims (", t.desc(),
               ") but tensor 0 has ", nd, " (", first.desc(), ")");
    for (int64_t k = 0; k < nd; ++k)
      EVIT_CHECK(k == d || t.sizes()[k] == first.sizes()[k], "cat: sizes must match except in dim ",
                 d, ", but tensor ", i, " is ", shape_str(t.sizes()), " and tensor 0 is ",
                 shape_str(first.sizes()), " (mismatch in dim ", k, ")");
    out_shape[d] += t.sizes()[d];
  }
  Tensor y = empty(out_shape, {first.dtype(), first.device()});

  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= out_shape[k];
  for (int64_t k = d + 1; k < nd; ++k) inner *= out_shape[k];
  const size_t esz = dtype_size(first.dtype());
  const int64_t out_row = out_shape[d] * inner;  // elements per output row
  std::vector<Tensor> cs;
  std::vector<int64_t> offsets, sizes;
  int64_t off = 0;
  for (const Tensor& t : xs) {
    // the device copy below reads any strides; the CPU row memcpy needs contiguous inputs
    cs.push_back(first.device().is_cuda() ? t.detach() : t.detach().contiguous());
    offsets.push_back(off);
    sizes.push_back(t.sizes()[d]);
    off += t.sizes()[d];
  }
  if (y.device().is_cuda()) {
    // One strided device copy per input into its slice of the output (no kernel of its own).
    for (size_t i = 0; i < cs.size(); ++i)
      if (sizes[i] > 0 && y.numel() > 0)
        copy_elements(slice(y, d, offsets[i], offsets[i] + sizes[i]), cs[i]);
  } else if (y.numel() > 0) {
    char* out = static_cast<char*>(y.raw_data());
    const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(out_row, 1));
    parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
      for (size_t i = 0; i < cs.size(); ++i) {
        const int64_t row = sizes[i] * inner;
        if (row == 0) continue;
        const char* in = static_cast<const char*>(cs[i].raw_data());
        for (int64_t o = b; o < e; ++o)
          std::memcpy(out + (o * out_row + offsets[i] * inner) * esz, in + o * row * esz,
                      row * esz);
      }
    });
  }
  autograd::record("CatBackward", xs, {y}, {},
                   [d, offsets, sizes](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     std::vector<Tensor> gs(offsets.size());
                     for (size_t i = 0; i < gs.size(); ++i)
                       if (ctx.needs_input_grad(i))
                         gs[i] = slice(g, d, offsets[i], offsets[i] + sizes[i]);
                     return gs;
                   });
  return y;
}

std::vector<Tensor> split_with_sizes(const Tensor& x, const std::vector<int64_t>& sizes,
                                     int64_t dim) {
  EVIT_CHECK(x.dim() > 0, "split_with_sizes: cannot split a zero-dimensional tensor ", x.desc());
  const int64_t d = wrap_dim(dim, x.dim(), "split_with_sizes");
  int64_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    EVIT_CHECK(sizes[i] >= 0, "split_with_sizes: size ", i, " is negative (", sizes[i], ")");
    total += sizes[i];
  }
  EVIT_CHECK(total == x.sizes()[d], "split_with_sizes: sizes ", shape_str(sizes), " add up to ",
             total, " but dim ", d, " of ", x.desc(), " has size ", x.sizes()[d]);
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(x, d, start, start + s));
    start += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim) {
  EVIT_CHECK(x.dim() > 0, "split: cannot split a zero-dimensional tensor ", x.desc());
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  const int64_t n = x.sizes()[d];
  EVIT_CHECK(size > 0 || (size == 0 && n == 0), "split: split size must be positive, got ", size,
             " for dim ", d, " of ", x.desc());
  if (n == 0) return {slice(x, d, 0, 0)};  // as PyTorch: one empty piece
  std::vector<Tensor> out;
  for (int64_t start = 0; start < n; start += size)
    out.push_back(slice(x, d, start, std::min(n, start + size)));
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  EVIT_CHECK(chunks > 0, "chunk: number of chunks must be positive, got ", chunks);
  EVIT_CHECK(x.dim() > 0, "chunk: cannot chunk a zero-dimensional tensor ", x.desc());
  const int64_t d = wrap_dim(dim, x.dim(), "chunk");
  const int64_t n = x.sizes()[d];
  if (n == 0)  // as PyTorch: `chunks` empty pieces
    return split_with_sizes(x, std::vector<int64_t>(chunks, 0), d);
  // Pieces of ceil(n / chunks): fewer than `chunks` pieces when n is not large enough.
  return split(x, (n + chunks - 1) / chunks, d);
}

}  // namespace evit
