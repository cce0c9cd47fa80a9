// pad: constant padding with torch.nn.functional.pad's ordering ((before, after) pairs from the
// last dim backwards); negative amounts crop.
//
// Kernel: one pass over the contiguous output, row by row (a row = the last dim). A row whose
// leading index falls into padding is filled; otherwise it is [fill | copy of the input row |
// fill], with the copied span clipped for negative (cropping) pads. Rows are split into fixed
// tasks for parallel_for; every output element is written exactly once.
//
// Backward: the gradient of pad(x, p) is pad(g, -p): it crops away what was padded and puts
// zeros where the forward cropped, and being pad itself it is differentiable again.
#include <algorithm>
#include <cstring>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/shape.h"

namespace evit {
namespace {

template <class T>
void pad_kernel(const T* in, T* out, const Shape& in_sizes, const Shape& out_sizes,
                const std::vector<int64_t>& before, T value) {
  const int64_t nd = static_cast<int64_t>(out_sizes.size());
  const int64_t out_w = out_sizes[nd - 1], in_w = in_sizes[nd - 1];
  const int64_t rows = out_w > 0 ? shape_numel(out_sizes) / out_w : 0;
  const Shape in_strides = contiguous_strides(in_sizes);
  const int64_t left = before[nd - 1];
  // The span of each output row that copies input: [c0, c1), from input column c0 - left.
  const int64_t c0 = std::clamp<int64_t>(left, 0, out_w);
  const int64_t c1 = std::clamp<int64_t>(in_w + left, c0, out_w);
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(out_w, 1));
  parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      T* orow = out + r * out_w;
      // Map the leading output index of this row to the input (or to padding).
      int64_t rem = r, in_off = 0;
      bool inside = true;
      for (int64_t k = nd - 2; k >= 0; --k) {
        const int64_t ik = rem % out_sizes[k] - before[k];
        rem /= out_sizes[k];
        if (ik < 0 || ik >= in_sizes[k]) {
          inside = false;
          break;
        }
        in_off += ik * in_strides[k];
      }
      if (!inside || c1 <= c0) {
        std::fill(orow, orow + out_w, value);
        continue;
      }
      std::fill(orow, orow + c0, value);
      std::copy(in + in_off + (c0 - left), in + in_off + (c1 - left), orow + c0);
      std::fill(orow + c1, orow + out_w, value);
    }
  });
}

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& p, double value) {
  EVIT_CHECK(x.device().is_cpu(), "pad: no ", x.device().str(), " kernel in this build");
  const int64_t nd = x.dim();
  EVIT_CHECK(p.size() % 2 == 0, "pad: the padding must have an even number of values (pairs "
             "from the last dim), got ", p.size(), " for ", x.desc());
  EVIT_CHECK(static_cast<int64_t>(p.size()) / 2 <= nd, "pad: ", p.size(),
             " padding values pad ", p.size() / 2, " dims but the input ", x.desc(), " has ", nd);
  if (nd == 0) return x.clone();
  Shape out_sizes = x.sizes();
  std::vector<int64_t> before(nd, 0);
  for (size_t i = 0; i < p.size() / 2; ++i) {
    const int64_t k = nd - 1 - static_cast<int64_t>(i);
    before[k] = p[2 * i];
    out_sizes[k] = x.sizes()[k] + p[2 * i] + p[2 * i + 1];
    EVIT_CHECK(out_sizes[k] >= 0, "pad: padding (", p[2 * i], ", ", p[2 * i + 1], ") of dim ", k,
               " of ", x.desc(), " gives a negative size ", out_sizes[k]);
  }
  Tensor xc = x.detach().contiguous();
  Tensor y = empty(out_sizes, {x.dtype(), x.device()});
  if (y.numel() > 0) {
    dispatch_all(x.dtype(), "pad", [&](auto tag) {
      using T = decltype(tag);
      pad_kernel<T>(xc.data_ptr<T>(), y.data_ptr<T>(), x.sizes(), out_sizes, before,
                    static_cast<T>(value));
    });
  }
  std::vector<int64_t> neg(p.size());
  for (size_t i = 0; i < p.size(); ++i) neg[i] = -p[i];
  autograd::record("PadBackward", {x}, {y}, {}, [neg](const BackwardContext& ctx) -> std::vector<Tensor> {
    return {pad(ctx.grad_output(0), neg, 0.0)};
  });
  return y;
}

}  // namespace evit
