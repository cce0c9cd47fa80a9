// matmul: 1-D/2-D/batched products on OpenBLAS.
//
// The batch loop runs GEMM per matrix (BLAS threads inside each call); batch dims are walked
// through their strides, so broadcast (stride-0) batches are never materialised. Backward is
// two more products on transposed views (transpose flags, no copies): dA = dC·Bᵀ, dB = Aᵀ·dC;
// the broadcast-shaped gradients are reduced to the operand shapes by the engine's sum_to.
#include <atomic>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/linalg.h"
#include "ops/linalg/common.h"
#include "ops/linalg/gemm.h"
#include "ops/pointwise.h"
#include "ops/shape.h"

namespace evit {
namespace detail {
namespace {
std::atomic<int64_t> g_operand_copies{0};
}  // namespace

void count_operand_copy() { g_operand_copies.fetch_add(1); }

BlasMatrix blas_matrix(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  BlasMatrix m;
  // Row-major: unit column stride (irrelevant with one column) and rows that do not overlap.
  if ((cs == 1 || cols <= 1) && (rows <= 1 || rs >= std::max<int64_t>(cols, 1))) {
    m.ok = true;
    m.trans = false;
    m.ld = rows <= 1 ? std::max<int64_t>(cols, 1) : rs;
    return m;
  }
  // Column-major, i.e. the transpose of a row-major [cols, rows].
  if ((rs == 1 || rows <= 1) && (cols <= 1 || cs >= std::max<int64_t>(rows, 1))) {
    m.ok = true;
    m.trans = true;
    m.ld = cols <= 1 ? std::max<int64_t>(rows, 1) : cs;
    return m;
  }
  return m;
}

Tensor transpose_last2(const Tensor& t) {
  Shape sizes = t.sizes(), strides = t.strides();
  const size_t d = sizes.size();
  std::swap(sizes[d - 1], sizes[d - 2]);
  std::swap(strides[d - 1], strides[d - 2]);
  return make_view(t, sizes, strides, t.storage_offset());
}

namespace {

// Strides of `t`'s batch dims (all but the last two) aligned to `batch`: 0 where broadcast.
Shape batch_strides(const Tensor& t, const Shape& batch) {
  const int64_t nb = static_cast<int64_t>(batch.size());
  const int64_t tb = t.dim() - 2;
  Shape s(nb, 0);
  for (int64_t i = 0; i < tb; ++i) {
    int64_t bi = nb - tb + i;
    s[bi] = t.size(i) == 1 ? 0 : t.stride(i);
  }
  return s;
}

template <class T>
void run_batched(const Tensor& a, const Tensor& b, Tensor& c, const Shape& batch,
                 const BlasMatrix& ma, const BlasMatrix& mb, int64_t M, int64_t N, int64_t K) {
  const Shape sa = batch_strides(a, batch), sb = batch_strides(b, batch);
  const T* pa = a.data_ptr<T>();
  const T* pb = b.data_ptr<T>();
  T* pc = c.data_ptr<T>();
  const int64_t nbatch = shape_numel(batch);
  const int64_t nd = static_cast<int64_t>(batch.size());
  std::vector<int64_t> idx(nd, 0);
  int64_t off_a = 0, off_b = 0;
  for (int64_t n = 0; n < nbatch; ++n) {
    detail::gemm(ma.trans, mb.trans, M, N, K, T(1), pa + off_a, ma.ld, pb + off_b, mb.ld, T(0),
                 pc + n * M * N, N);
    // Odometer increment of the batch index, keeping the operand offsets in step.
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++idx[d] < batch[d]) {
        off_a += sa[d];
        off_b += sb[d];
        break;
      }
      off_a -= sa[d] * (batch[d] - 1);
      off_b -= sb[d] * (batch[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace

Tensor matmul_kernel(Tensor a, Tensor b, const char* op) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  EVIT_INTERNAL_ASSERT(b.size(-2) == K);
  Shape ba(a.sizes().begin(), a.sizes().end() - 2), bb(b.sizes().begin(), b.sizes().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, op);
  BlasMatrix ma = blas_matrix(M, K, a.stride(-2), a.stride(-1));
  if (!ma.ok) {
    a = a.contiguous();
    count_operand_copy();
    ma = blas_matrix(M, K, a.stride(-2), a.stride(-1));
  }
  BlasMatrix mb = blas_matrix(K, N, b.stride(-2), b.stride(-1));
  if (!mb.ok) {
    b = b.contiguous();
    count_operand_copy();
    mb = blas_matrix(K, N, b.stride(-2), b.stride(-1));
  }
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor c = empty(out_shape, {a.dtype(), a.device()});
  if (c.numel() == 0) return c;
  if (K == 0) {
    fill_(c, 0.0);
    return c;
  }
  dispatch_floating(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    run_batched<T>(a, b, c, batch, ma, mb, M, N, K);
  });
  return c;
}

}  // namespace detail

namespace linalg_stats {
int64_t operand_copies() { return detail::g_operand_copies.load(); }
}  // namespace linalg_stats

namespace {

// The differentiable core: a [..., M, K] · b [..., K, N], both at least 2-D.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  Tensor c = detail::matmul_kernel(a, b, "matmul");
  autograd::record("MatmulBackward", {a, b}, {c}, {a, b},
                   [](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     const Tensor& sa = ctx.saved(0);
                     const Tensor& sb = ctx.saved(1);
                     Tensor ga, gb;
                     if (ctx.needs_input_grad(0))
                       ga = detail::matmul_kernel(g, detail::transpose_last2(sb), "matmul");
                     if (ctx.needs_input_grad(1))
                       gb = detail::matmul_kernel(detail::transpose_last2(sa), g, "matmul");
                     return {ga, gb};
                   });
  return c;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  EVIT_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dim, got ",
             a.desc(), " and ", b.desc());
  EVIT_CHECK(a.dtype() == b.dtype(), "matmul: dtypes differ: ", a.desc(), " and ", b.desc());
  EVIT_CHECK(is_floating(a.dtype()), "matmul: expected a floating dtype (f32 or f64), got ",
             a.desc());
  EVIT_CHECK(a.device().is_cpu() && b.device().is_cpu(), "matmul: no ", a.device().str(),
             " kernel in this build");
  const int64_t ka = a.size(-1);
  const int64_t kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  EVIT_CHECK(ka == kb, "matmul: shapes ", shape_str(a.sizes()), " and ", shape_str(b.sizes()),
             " cannot be multiplied (", ka, " != ", kb, ")");
  if (a.dim() == 1 && b.dim() == 1) return reshape(matmul_nd(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  if (a.dim() == 1) return squeeze(matmul_nd(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul_nd(a, unsqueeze(b, 1)), -1);
  if (a.dim() >= 3 && b.dim() == 2 && a.is_contiguous()) {
    // Fold the batch into M: one large GEMM (and one for each gradient) instead of many.
    // (A non-contiguous a, e.g. a transposed batch, takes the batched path: no copy.)
    Shape out = a.sizes();
    out.back() = b.size(1);
    Tensor a2 = reshape(a, {-1, ka});
    return reshape(matmul_nd(a2, b), out);
  }
  return matmul_nd(a, b);
}

}  // namespace evit
