// pad: constant padding with torch.nn.functional.pad's ordering ((before, after) pairs from the
// last dim backwards); negative amounts crop.
//
// Kernel: one pass over the contiguous output, plane by plane (a plane = the last two dims). A
// plane whose leading index falls into padding is filled; otherwise it is fill rows on top, rows
// of [fill | copy of the input row | fill], fill rows below, with the copied spans clipped for
// negative (cropping) pads. Planes are split into fixed tasks for parallel_for; every output
// element is written exactly once.
//
// Backward: the gradient of pad(x, p) is pad(g, -p): it crops away what was padded and puts
// zeros where the forward cropped, and being pad itself it is differentiable again.
#include <algorithm>
#include <cstring>

#include "autograd/node.h"
#include "core/copy.h"
#include "core/parallel.h"
#include "ops/shape.h"

namespace evit {
namespace {

template <class T>
void pad_kernel(const T* in, T* out, const Shape& in_sizes, const Shape& out_sizes,
                const std::vector<int64_t>& before, T value) {
  // Views: output [planes, oh, ow], input [..., ih, iw] (a 1-D tensor is one plane of one row).
  const int64_t nd = static_cast<int64_t>(out_sizes.size());
  const int64_t ow = out_sizes[nd - 1], iw = in_sizes[nd - 1];
  const int64_t oh = nd >= 2 ? out_sizes[nd - 2] : 1, ih = nd >= 2 ? in_sizes[nd - 2] : 1;
  const int64_t top = nd >= 2 ? before[nd - 2] : 0, left = before[nd - 1];
  const int64_t plane = oh * ow;
  const int64_t planes = plane > 0 ? shape_numel(out_sizes) / plane : 0;
  const int64_t lead = std::max<int64_t>(nd - 2, 0);  // dims that index planes
  const Shape in_strides = contiguous_strides(in_sizes);
  // Output columns [c0, c1) copy input columns [c0 - left, c1 - left); rows [r0, r1) likewise.
  const int64_t c0 = std::clamp<int64_t>(left, 0, ow);
  const int64_t c1 = std::clamp<int64_t>(iw + left, c0, ow);
  const int64_t r0 = std::clamp<int64_t>(top, 0, oh);
  const int64_t r1 = std::clamp<int64_t>(ih + top, r0, oh);
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(plane, 1));
  parallel_for(0, planes, grain, [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      T* op = out + pl * plane;
      // The input plane this output plane reads, if any (a handful of divisions per plane).
      int64_t in_off = 0, rem = pl;
      bool inside = c1 > c0 && r1 > r0;
      for (int64_t k = lead - 1; k >= 0 && inside; --k) {
        const int64_t ik = rem % out_sizes[k] - before[k];
        rem /= out_sizes[k];
        inside = ik >= 0 && ik < in_sizes[k];
        in_off += ik * in_strides[k];
      }
      if (!inside) {
        std::fill(op, op + plane, value);
        continue;
      }
      std::fill(op, op + r0 * ow, value);
      const T* ip = in + in_off + (r0 - top) * iw + (c0 - left);
      for (int64_t r = r0; r < r1; ++r, ip += iw) {
        T* orow = op + r * ow;
        for (int64_t j = 0; j < c0; ++j) orow[j] = value;
        std::memcpy(orow + c0, ip, (c1 - c0) * sizeof(T));
        for (int64_t j = c1; j < ow; ++j) orow[j] = value;
      }
      std::fill(op + r1 * ow, op + plane, value);
    }
  });
}

// Device tensors: a fill with `value`, then one strided device copy of the part of the input
// that survives the (possibly negative) padding into its window of the output. Every output
// element is written once by the fill and at most once by the copy (no kernel of its own).
Tensor pad_on_device(const Tensor& x, const Shape& out_sizes, const std::vector<int64_t>& before,
                     double value) {
  Tensor y = full(out_sizes, value, {x.dtype(), x.device()});
  if (y.numel() == 0) return y;
  Tensor src = x.detach(), dst = y;
  for (int64_t k = 0; k < x.dim(); ++k) {
    const int64_t o0 = std::clamp<int64_t>(before[k], 0, out_sizes[k]);
    const int64_t o1 = std::clamp<int64_t>(before[k] + x.sizes()[k], o0, out_sizes[k]);
    if (o1 == o0) return y;  // nothing of the input remains
    dst = slice(dst, k, o0, o1);
    src = slice(src, k, o0 - before[k], o1 - before[k]);
  }
  copy_elements(dst, src);
  return y;
}

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& p, double value) {
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
  Tensor y;
  if (x.device().is_cuda()) {
    y = pad_on_device(x, out_sizes, before, value);
  } else {
    Tensor xc = x.detach().contiguous();
    y = empty(out_sizes, {x.dtype(), x.device()});
    if (y.numel() > 0) {
      dispatch_all(x.dtype(), "pad", [&](auto tag) {
        using T = decltype(tag);
        pad_kernel<T>(xc.data_ptr<T>(), y.data_ptr<T>(), x.sizes(), out_sizes, before,
                      static_cast<T>(value));
      });
    }
  }
  std::vector<int64_t> neg(p.size());
  for (size_t i = 0; i < p.size(); ++i) neg[i] = -p[i];
  autograd::record("PadBackward", {x}, {y}, {}, [neg](const BackwardContext& ctx) -> std::vector<Tensor> {
    return {pad(ctx.grad_output(0), neg, 0.0)};
  });
  return y;
}

}  // namespace evit
