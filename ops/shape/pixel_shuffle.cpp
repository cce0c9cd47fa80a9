// pixel_shuffle / pixel_unshuffle: [*, C*r*r, H, W] <-> [*, C, H*r, W*r] with
//   shuffled[b, c, h*r + i, w*r + j] = x[b, c*r*r + i*r + j, h, w].
//
// Direct kernels rather than reshape/permute/reshape: the permuted copy would walk memory with a
// stride of H*W in its innermost dim. Here each task produces whole contiguous output rows and
// reads r contiguous input rows (shuffle) or one input row with stride r (unshuffle), so every
// access stays within a few cache lines. They only move elements, so they work on the raw bytes
// of any dtype and are deterministic.
//
// Each is the other's inverse permutation, so the backward of one is the other applied to the
// gradient (and hence differentiable again).
#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/shape.h"
#include "ops/shape/cuda_slots.h"

namespace evit {
namespace {

// Copies elements of byte size sizeof(T); T is an unsigned integer of the element's width.
template <class T>
void shuffle_kernel(const T* in, T* out, int64_t batch, int64_t c, int64_t h, int64_t w, int64_t r) {
  const int64_t ow = w * r;
  const int64_t rows = batch * c * h * r;  // output rows (b, c, oh)
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(ow, 1));
  parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t oh = row % (h * r), bc = row / (h * r);  // bc = batch * c + channel
      const int64_t hh = oh / r, i = oh % r;
      T* orow = out + row * ow;
      for (int64_t j = 0; j < r; ++j) {
        const T* irow = in + ((bc * r * r + i * r + j) * h + hh) * w;
        for (int64_t x = 0; x < w; ++x) orow[x * r + j] = irow[x];
      }
    }
  });
}

template <class T>
void unshuffle_kernel(const T* in, T* out, int64_t batch, int64_t c, int64_t h, int64_t w,
                      int64_t r) {
  // in: [batch, c, h*r, w*r], out: [batch, c*r*r, h, w]; one task unit = one input row.
  const int64_t iw = w * r;
  const int64_t rows = batch * c * h * r;  // input rows (b, c, ih)
  const int64_t grain = std::max<int64_t>(1, kPointwiseGrain / std::max<int64_t>(iw, 1));
  parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t ih = row % (h * r), bc = row / (h * r);
      const int64_t hh = ih / r, i = ih % r;
      const T* irow = in + row * iw;
      for (int64_t j = 0; j < r; ++j) {
        T* orow = out + ((bc * r * r + i * r + j) * h + hh) * w;
        for (int64_t x = 0; x < w; ++x) orow[x] = irow[x * r + j];
      }
    }
  });
}

template <class F>
void dispatch_width(DType t, F&& f) {
  switch (dtype_size(t)) {
    case 1: f(uint8_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: EVIT_THROW("pixel_shuffle: unsupported element size for ", dtype_name(t));
  }
}

void check_common(const Tensor& x, int64_t r, const char* op) {
  EVIT_CHECK(x.dim() >= 3, op, ": input must be at least 3-D [*, C, H, W], got ", x.desc());
  EVIT_CHECK(r >= 1, op, ": factor must be >= 1, got ", r);
}

Tensor shuffle_impl(const Tensor& x, int64_t r, bool forward) {
  const char* op = forward ? "pixel_shuffle" : "pixel_unshuffle";
  check_common(x, r, op);
  const int64_t nd = x.dim();
  const int64_t C = x.sizes()[nd - 3], H = x.sizes()[nd - 2], W = x.sizes()[nd - 1];
  int64_t batch = 1;
  for (int64_t k = 0; k < nd - 3; ++k) batch *= x.sizes()[k];
  Shape out_sizes = x.sizes();
  int64_t c, h, w;  // the shuffled-side channel count and the unshuffled-side spatial size
  if (forward) {
    EVIT_CHECK(C % (r * r) == 0, op, ": channels (", C, ") must be divisible by r*r = ", r * r,
               " for ", x.desc());
    c = C / (r * r);
    h = H;
    w = W;
    out_sizes[nd - 3] = c;
    out_sizes[nd - 2] = H * r;
    out_sizes[nd - 1] = W * r;
  } else {
    EVIT_CHECK(H % r == 0 && W % r == 0, op, ": height (", H, ") and width (", W,
               ") must be divisible by r = ", r, " for ", x.desc());
    c = C;
    h = H / r;
    w = W / r;
    out_sizes[nd - 3] = C * r * r;
    out_sizes[nd - 2] = h;
    out_sizes[nd - 1] = w;
  }
  Tensor xc = x.detach().contiguous();
  Tensor y = empty(out_sizes, {x.dtype(), x.device()});
  if (x.device().is_cuda()) {
    pixel_shuffle_cuda(xc, y, batch, c, h, w, r, forward);
  } else if (y.numel() > 0) {
    dispatch_width(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* in = static_cast<const T*>(xc.raw_data());
      T* out = static_cast<T*>(y.raw_data());
      if (forward)
        shuffle_kernel<T>(in, out, batch, c, h, w, r);
      else
        unshuffle_kernel<T>(in, out, batch, c, h, w, r);
    });
  }
  autograd::record(forward ? "PixelShuffleBackward" : "PixelUnshuffleBackward", {x}, {y}, {},
                   [r, forward](const BackwardContext& ctx) -> std::vector<Tensor> {
                     return {shuffle_impl(ctx.grad_output(0), r, !forward)};
                   });
  return y;
}

}  // namespace

Tensor pixel_shuffle(const Tensor& x, int64_t r) { return shuffle_impl(x, r, true); }

Tensor pixel_unshuffle(const Tensor& x, int64_t r) { return shuffle_impl(x, r, false); }

}  // namespace evit
