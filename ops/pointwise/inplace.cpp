// In-place updates for tensors outside the graph: optimizer steps, running statistics, init.
#include "autograd/grad_mode.h"
#include <algorithm>

#include "core/copy.h"
#include "core/cuda.h"
#include "ops/iter/pointwise.h"
#include "ops/pointwise.h"
#include "ops/pointwise/functors.h"

namespace evit {
namespace {

// In-place on a tensor that requires grad while recording would silently break the graph, so
// evit refuses it (PyTorch's view+in-place rebasing is deliberately not supported).
void check_inplace(const Tensor& t, const char* op) {
  EVIT_CHECK(!(GradMode::is_enabled() && t.requires_grad()), op, ": in-place update of ",
             t.desc(), " which requires grad; wrap the update in NoGradGuard or detach() it");
}

// a = op.forward(a, b) elementwise, b broadcast to a.
template <class Op>
void apply_inplace(Tensor& a, const Tensor& b, Op op) {
  const char* name = Op::name;
  check_inplace(a, name);
  check_binary_operands(a, b, name);
  Shape s = broadcast_shapes(a.sizes(), b.sizes(), name);
  EVIT_CHECK(s == a.sizes(), name, ": cannot broadcast ", shape_str(b.sizes()), " into the ",
             "destination of shape ", shape_str(a.sizes()));
  if (a.device().is_cuda()) {
    // Each element is read and written by the same thread, so a may be an input of its own map.
    cuda_binary_forward<Op>()(a, a, b, op);
    a.bump_version();
    return;
  }
  // The strided walk writes through `a`'s strides; reading `a` at the same offsets is safe
  // because each element is read and written by the same iteration.
  dispatch_numeric(a.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    StridedIter<2> it;
    it.sizes = a.sizes();
    it.strides[0] = a.strides();
    it.strides[1] = broadcast_strides(b.sizes(), b.strides(), a.sizes());
    T* pa = static_cast<T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    it.run(kPointwiseGrain, [&](const std::array<int64_t, 2>& off, int64_t n,
                                const std::array<int64_t, 2>& st) {
      for (int64_t j = 0; j < n; ++j) {
        T& x = pa[off[0] + j * st[0]];
        x = op.forward(x, pb[off[1] + j * st[1]]);
      }
    });
  });
  a.bump_version();
}

}  // namespace

Tensor& add_(Tensor& a, const Tensor& b, double alpha) {
  apply_inplace(a, b, pointwise::AddScaledInplaceOp{alpha});
  return a;
}
Tensor& add_(Tensor& a, double b) { return add_(a, scalar_like(a, b)); }
Tensor& mul_(Tensor& a, const Tensor& b) {
  apply_inplace(a, b, pointwise::MulInplaceOp{});
  return a;
}
Tensor& mul_(Tensor& a, double b) { return mul_(a, scalar_like(a, b)); }

Tensor& copy_(Tensor& dst, const Tensor& src) {
  check_inplace(dst, "copy_");
  EVIT_CHECK(dst.device() == src.device(), "copy_: source on ", src.device().str(),
             ", destination on ", dst.device().str());
  Shape s = broadcast_shapes(dst.sizes(), src.sizes(), "copy_");
  EVIT_CHECK(s == dst.sizes(), "copy_: cannot copy ", shape_str(src.sizes()), " into ",
             shape_str(dst.sizes()));
  copy_elements(dst, src);
  dst.bump_version();
  return dst;
}

Tensor& fill_(Tensor& t, double value) {
  check_inplace(t, "fill_");
  if (t.is_contiguous() && t.device().is_cpu()) {
    dispatch_all(t.dtype(), "fill_", [&](auto tag) {
      using T = decltype(tag);
      T* p = static_cast<T*>(t.raw_data());
      const T v = static_cast<T>(value);
      parallel_for(0, t.numel(), kPointwiseGrain, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, v); });
    });
  } else if (t.device().is_cuda()) {
    cuda::cuda_fill(t, value);
  } else {
    copy_elements(t, full({}, value, {t.dtype(), t.device()}));
  }
  t.bump_version();
  return t;
}

Tensor& zero_(Tensor& t) { return fill_(t, 0.0); }

}  // namespace evit
