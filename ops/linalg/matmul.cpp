// matmul: 1-D/2-D/batched products on OpenBLAS.
//
// The batch loop runs GEMM per matrix (BLAS threads inside each call); batch dims are walked
// through their strides, so broadcast (stride-0) batches are never materialised. Backward is
// two more products on transposed views (transpose flags, no copies): dA = dC·Bᵀ, dB = Aᵀ·dC;
// the broadcast-shaped gradients are reduced to the operand shapes by the engine's sum_to.
// On CUDA the same layout decisions feed cuBLAS (ops/linalg/cuda_slots.h): the batch dims whose
// strides are uniform become one strided-batched GEMM, any others are looped over; under
// autocast the operands are read as f16/bf16 and the product stays f32, in the backward too.
#include <atomic>

#include "autograd/node.h"
#include "core/copy.h"
#include "core/parallel.h"
#include "ops/autocast.h"
#include "ops/linalg.h"
#include "ops/linalg/common.h"
#include "ops/linalg/cuda_slots.h"
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

std::optional<DType> gemm_autocast(const Tensor& x) {
  if (x.dtype() != DType::f32) return std::nullopt;
  return autocast_dtype(x.device());
}

Tensor gemm_operand(const Tensor& t, std::optional<DType> compute) {
  if (!compute || !t.defined() || t.dtype() == *compute) return t;
  Tensor out = empty(t.sizes(), {*compute, t.device()});
  copy_elements(out, t);
  return out;
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

// Odometer increment of the first idx.size() batch dims (the last one fastest), keeping the
// operand offsets in step.
void next_batch_index(std::vector<int64_t>& idx, const Shape& batch, const Shape& sa, const Shape& sb,
                      int64_t& off_a, int64_t& off_b) {
  for (int64_t d = static_cast<int64_t>(idx.size()) - 1; d >= 0; --d) {
    if (++idx[d] < batch[d]) {
      off_a += sa[d];
      off_b += sb[d];
      return;
    }
    off_a -= sa[d] * (batch[d] - 1);
    off_b -= sb[d] * (batch[d] - 1);
    idx[d] = 0;
  }
}

template <class T>
void run_batched(const Tensor& a, const Tensor& b, Tensor& c, const Shape& batch,
                 const BlasMatrix& ma, const BlasMatrix& mb, int64_t M, int64_t N, int64_t K) {
  const Shape sa = batch_strides(a, batch), sb = batch_strides(b, batch);
  const T* pa = a.data_ptr<T>();
  const T* pb = b.data_ptr<T>();
  T* pc = c.data_ptr<T>();
  const int64_t nbatch = shape_numel(batch);
  std::vector<int64_t> idx(batch.size(), 0), offs(2 * nbatch);
  int64_t off_a = 0, off_b = 0;
  for (int64_t n = 0; n < nbatch; ++n) {
    offs[2 * n] = off_a, offs[2 * n + 1] = off_b;
    next_batch_index(idx, batch, sa, sb, off_a, off_b);
  }
  // Products too small to be split (detail::gemm_split) run side by side, a batch element per
  // task; larger ones split themselves. Either way each element is one fixed set of BLAS calls.
  const int64_t macs = std::max<int64_t>(1, M * N * K);
  const int64_t grain = detail::gemm_split(M, N, K).tasks() == 1 ? std::max<int64_t>(1, (int64_t{1} << 20) / macs) : nbatch;
  parallel_for(0, nbatch, grain, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n)
      detail::gemm(ma.trans, mb.trans, M, N, K, T(1), pa + offs[2 * n], ma.ld, pb + offs[2 * n + 1], mb.ld, T(0),
                   pc + n * M * N, N);
  });
}

// CUDA: the longest run of trailing batch dims over which a and b each advance by one fixed
// stride is one strided-batched GEMM; the leading batch dims (if any) are walked like the CPU
// loop. Size-1 batch dims never break a run.
void run_batched_cuda(const Tensor& a, const Tensor& b, const Tensor& c, const Shape& batch,
                      const BlasMatrix& ma, const BlasMatrix& mb, int64_t M, int64_t N, int64_t K) {
  const Shape sa = batch_strides(a, batch), sb = batch_strides(b, batch);
  const int64_t nd = static_cast<int64_t>(batch.size());
  int64_t split = nd, inner = 1, stride_a = 0, stride_b = 0;
  for (int64_t d = nd - 1; d >= 0; --d) {
    if (batch[d] == 1) {
      split = d;
      continue;
    }
    if (inner == 1) {
      stride_a = sa[d];
      stride_b = sb[d];
    } else if (sa[d] != stride_a * inner || sb[d] != stride_b * inner) {
      break;
    }
    inner *= batch[d];
    split = d;
  }
  DeviceGemm p = DeviceGemm::single(ma.trans, mb.trans, M, N, K, ma.ld, mb.ld, N);
  p.stride_a = stride_a;
  p.stride_b = stride_b;
  p.stride_c = M * N;
  p.batch = inner;
  const int64_t outer = shape_numel(Shape(batch.begin(), batch.begin() + split));
  std::vector<int64_t> idx(split, 0);
  int64_t off_a = 0, off_b = 0;
  for (int64_t o = 0; o < outer; ++o) {
    p.offset_a = off_a;
    p.offset_b = off_b;
    p.offset_c = o * inner * M * N;
    linalg_gemm_cuda(p, a, b, c);
    next_batch_index(idx, batch, sa, sb, off_a, off_b);
  }
}

}  // namespace

Tensor matmul_kernel(Tensor a, Tensor b, const char* op, std::optional<DType> compute) {
  const DType out_dtype = a.dtype();
  if (compute && a.device().is_cuda()) {
    a = gemm_operand(a, compute);
    b = gemm_operand(b, compute);
  }
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
  Tensor c = empty(out_shape, {out_dtype, a.device()});
  if (c.numel() == 0) return c;
  if (K == 0) {
    fill_(c, 0.0);
    return c;
  }
  if (c.device().is_cuda()) {
    run_batched_cuda(a, b, c, batch, ma, mb, M, N, K);
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
  // Autocast is decided here and captured, so the gradient GEMMs use the forward's precision.
  const std::optional<DType> ac = detail::gemm_autocast(a);
  Tensor c = detail::matmul_kernel(a, b, "matmul", ac);
  autograd::record("MatmulBackward", {a, b}, {c}, {a, b},
                   [ac](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     const Tensor& sa = ctx.saved(0);
                     const Tensor& sb = ctx.saved(1);
                     Tensor ga, gb;
                     if (ctx.needs_input_grad(0))
                       ga = detail::matmul_kernel(g, detail::transpose_last2(sb), "matmul", ac);
                     if (ctx.needs_input_grad(1))
                       gb = detail::matmul_kernel(detail::transpose_last2(sa), g, "matmul", ac);
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
  EVIT_CHECK(a.device() == b.device(), "matmul: operands on different devices: ",
             a.device().str(), " and ", b.device().str());
  EVIT_CHECK(a.device().is_cpu() || a.device().is_cuda(), "matmul: no ", a.device().str(),
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
