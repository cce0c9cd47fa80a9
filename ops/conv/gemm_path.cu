// CUDA twin of gemm_path.cpp: convolution as im2col + cuBLAS GEMM, and the bias kernels.
//
// - 1×1, stride 1, no padding: the input planes are the column matrix; one strided-batched GEMM
//   per image or per group (whichever loop is shorter; the other index is the batch).
// - everything else: im2col columns for a chunk of images (or, when one image's columns exceed
//   the budget, a chunk of output rows of one image), then one strided-batched GEMM per group
//   or image of the chunk.
// - input gradient: GEMM into columns, then col2im written as a gather: each input pixel sums
//   the column entries that read it, taps in (i, j) order, so every element is written by one
//   thread (deterministic, no atomics); chunks are accumulated one after the other.
// - weight gradient: the images of a chunk (all of them for 1×1) are moved inside each channel
//   ([C, N, pixels] copies of the input or columns and of dy), so one GEMM per group reduces over
//   images and pixels at once: a per-image loop of small GEMMs kept the GPU mostly idle. Chunks
//   accumulate with beta = 1 in order; a band of one image's rows is one GEMM as it stands.
// Under autocast the operands arrive as f16/bf16 (im2col copies them as is) and the GEMMs
// write f32.
#include <algorithm>
#include <vector>

#include "core/cuda/cublas.cuh"
#include "ops/conv/cuda_slots.h"

namespace evit {
namespace {

using conv::Geom;

// Elements of one column buffer (all groups of a chunk): 16M, 64 MiB in f32.
constexpr int64_t kColBudget = int64_t(1) << 24;

template <class F>
void dispatch_gemm_input(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::f16: return f(Half{});
    case DType::bf16: return f(BFloat16{});
    default: EVIT_THROW(op, ": unsupported operand dtype ", dtype_name(t));
  }
}

// The plain geometry numbers a kernel needs (Geom's member functions are host-only).
struct KGeom {
  int64_t C, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw;
};
KGeom kgeom(const Geom& g) {
  return {g.C, g.H, g.W, g.OH, g.OW, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}

// A chunk of the column work: images [n0, n0 + nb), output rows [oh0, oh0 + rows).
struct Chunk {
  int64_t n0, nb, oh0, rows;
};

// Chunks covering the N×OH outputs: several whole images when an image's columns fit the
// budget, otherwise bands of output rows of one image.
std::vector<Chunk> make_chunks(const Geom& g) {
  std::vector<Chunk> out;
  const int64_t per_row = std::max<int64_t>(1, g.C * g.KK() * g.OW);
  const int64_t per_image = per_row * std::max<int64_t>(g.OH, 1);
  if (per_image <= kColBudget) {
    const int64_t nb = std::clamp<int64_t>(kColBudget / per_image, 1, std::max<int64_t>(g.N, 1));
    for (int64_t n0 = 0; n0 < g.N; n0 += nb) out.push_back({n0, std::min(nb, g.N - n0), 0, g.OH});
  } else {
    const int64_t rows = std::clamp<int64_t>(kColBudget / per_row, 1, std::max<int64_t>(g.OH, 1));
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t oh0 = 0; oh0 < g.OH; oh0 += rows) out.push_back({n, 1, oh0, std::min(rows, g.OH - oh0)});
  }
  return out;
}

int64_t max_chunk_elems(const Geom& g, const std::vector<Chunk>& chunks) {
  int64_t m = 0;
  for (const Chunk& c : chunks) m = std::max(m, c.nb * g.C * g.KK() * c.rows * g.OW);
  return m;
}

// col [nb, C·KK, rows·OW] (row c·KK + i·KW + j, column (oh - oh0)·OW + ow) of images
// [n0, n0 + nb) of x [N, C, H, W]: the input value under tap (i, j) of output (oh, ow), 0 in
// the padding. One thread per column element; consecutive threads write consecutive columns.
// With kImagesInner the layout is [C·KK, nb, rows·OW] instead: the weight gradient's GEMM
// then reduces over the images and pixels of the chunk as one dimension.
template <class T, bool kImagesInner>
__global__ void im2col_kernel(const T* __restrict x, T* __restrict col, KGeom g, int64_t n0,
                              int64_t nb, int64_t oh0, int64_t rows) {
  const int64_t KK = g.KH * g.KW, cols = rows * g.OW, CKK = g.C * KK;
  const int64_t total = nb * CKK * cols;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = idx % cols;
    const int64_t r = kImagesInner ? idx / (cols * nb) : (idx / cols) % CKK;
    const int64_t nl = kImagesInner ? (idx / cols) % nb : idx / (cols * CKK);
    const int64_t c = r / KK, t = r % KK, ki = t / g.KW, kj = t % g.KW;
    const int64_t oh = oh0 + p / g.OW, ow = p % g.OW;
    const int64_t ih = oh * g.sh - g.ph + ki * g.dh;
    const int64_t iw = ow * g.sw - g.pw + kj * g.dw;
    T v = T(0);
    if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
      v = x[(((n0 + nl) * g.C + c) * g.H + ih) * g.W + iw];
    col[idx] = v;
  }
}

// Fills col with chunk `ch` of x (operands in dtype `in`) on x's stream.
void im2col_chunk(const Tensor& x, const Tensor& col, const Geom& g, const Chunk& ch, DType in,
                  const char* op, bool images_inner = false) {
  dispatch_gemm_input(in, op, [&](auto tag) {
    using T = decltype(tag);
    const int64_t total = ch.nb * g.C * g.KK() * ch.rows * g.OW;
    if (images_inner)
      cuda::launch_elementwise("im2col_kernel", x, total, im2col_kernel<T, true>, x.data_ptr<T>(),
                               col.data_ptr<T>(), kgeom(g), ch.n0, ch.nb, ch.oh0, ch.rows);
    else
      cuda::launch_elementwise("im2col_kernel", x, total, im2col_kernel<T, false>, x.data_ptr<T>(),
                               col.data_ptr<T>(), kgeom(g), ch.n0, ch.nb, ch.oh0, ch.rows);
  });
}

// dst [B, A, L] (contiguous) = src [A, B, L] (A's stride src_stride_a): for NCHW data with
// A = images and B = channels, each channel's planes of all images become one row.
template <class T>
__global__ void images_inside_channels_kernel(const T* __restrict src, T* __restrict dst, int64_t A,
                                              int64_t B, int64_t L, int64_t src_stride_a) {
  const int64_t total = A * B * L;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t l = idx % L, r = idx / L, a = r % A, b = r / A;
    dst[idx] = src[a * src_stride_a + b * L + l];
  }
}

// A [B, A·L] copy of the A images (stride src_stride_a elements) of B channels of L pixels at
// src, in dtype `in`, on like's device and stream.
Tensor images_inside_channels(const void* src, int64_t A, int64_t B, int64_t L, int64_t src_stride_a,
                              DType in, const Tensor& like, const char* op) {
  Tensor dst = empty({B * A * L}, {in, like.device()});
  dispatch_gemm_input(in, op, [&](auto tag) {
    using T = decltype(tag);
    cuda::launch_elementwise("images_inside_channels_kernel", like, A * B * L,
                             images_inside_channels_kernel<T>, static_cast<const T*>(src),
                             dst.data_ptr<T>(), A, B, L, src_stride_a);
  });
  return dst;
}

// dx[n0 + nl, c, ih, iw] += Σ over taps (i, j) in order of the column entries (this chunk's
// output rows) that im2col filled from (c, ih, iw). One thread per input element of the
// input rows [ih_lo, ih_lo + nrows) the chunk touches.
template <class T>
__global__ void col2im_kernel(const T* __restrict col, T* __restrict dx, KGeom g, int64_t n0,
                              int64_t nb, int64_t oh0, int64_t rows, int64_t ih_lo, int64_t nrows) {
  const int64_t KK = g.KH * g.KW, cols = rows * g.OW, CKK = g.C * KK;
  const int64_t total = nb * g.C * nrows * g.W;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t iw = idx % g.W;
    const int64_t ih = ih_lo + (idx / g.W) % nrows;
    const int64_t c = (idx / (g.W * nrows)) % g.C;
    const int64_t nl = idx / (g.W * nrows * g.C);
    const T* cbase = col + nl * CKK * cols + c * KK * cols;
    T acc = T(0);
    for (int64_t ki = 0; ki < g.KH; ++ki) {
      const int64_t num = ih + g.ph - ki * g.dh;  // = oh · sh when tap row ki reads ih
      if (num < 0 || num % g.sh != 0) continue;
      const int64_t oh = num / g.sh;
      if (oh < oh0 || oh >= oh0 + rows) continue;
      for (int64_t kj = 0; kj < g.KW; ++kj) {
        const int64_t numw = iw + g.pw - kj * g.dw;
        if (numw < 0 || numw % g.sw != 0) continue;
        const int64_t ow = numw / g.sw;
        if (ow >= g.OW) continue;
        acc += cbase[(ki * g.KW + kj) * cols + (oh - oh0) * g.OW + ow];
      }
    }
    dx[(((n0 + nl) * g.C + c) * g.H + ih) * g.W + iw] += acc;
  }
}

// y[i] = bias[channel] (accumulate: y[i] += bias[channel]) for y [N, C, HW].
template <class T>
__global__ void bias_kernel(T* __restrict y, const T* __restrict bias, int64_t total, int64_t C,
                            int64_t HW, bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const T b = bias[(i / HW) % C];
    y[i] = accumulate ? y[i] + b : b;
  }
}

constexpr int kReduceThreads = 256;

// db[c] = Σ_{n, p} dy[n, c, p]: one block per channel; each thread sums a fixed strided subset
// in order (double), then a fixed shared-memory tree combines the threads.
template <class T>
__global__ void bias_backward_kernel(const T* __restrict dy, T* __restrict db, int64_t N,
                                     int64_t C, int64_t HW) {
  __shared__ double red[kReduceThreads];
  const int64_t per = N * HW;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double acc = 0;
    for (int64_t j = threadIdx.x; j < per; j += kReduceThreads) {
      const int64_t n = j / HW, p = j % HW;
      acc += static_cast<double>(dy[(n * C + c) * HW + p]);
    }
    red[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned s = kReduceThreads / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) db[c] = static_cast<T>(red[0]);
    __syncthreads();  // red is reused by the next channel
  }
}

void set_or_add_bias(const Tensor& y, const Tensor& bias, int64_t N, int64_t C, int64_t HW,
                     bool accumulate) {
  const int64_t total = N * C * HW;
  if (total == 0) return;
  cuda::DeviceGuard guard(y);
  dispatch_floating(y.dtype(), "conv (bias)", [&](auto tag) {
    using T = decltype(tag);
    bias_kernel<T><<<cuda::blocks_for(total), 256, 0, cuda::stream_of(y)>>>(
        y.data_ptr<T>(), bias.data_ptr<T>(), total, C, HW, accumulate);
    EVIT_CUDA_LAUNCH_CHECK("bias_kernel");
  });
}

// A GEMM operand of a doubly batched product: element strides between groups and images.
struct Operand {
  const void* p;
  int64_t ld, per_group, per_image;
};

const void* advance(const void* p, int64_t elems, size_t esize) {
  return static_cast<const char*>(p) + elems * static_cast<int64_t>(esize);
}

// For every group gr < G and image n < NB: C(gr, n) = op(A(gr, n)) · op(B(gr, n)) + beta · C.
// Loops over the shorter of the two indices and batches the other through cuBLAS.
void gemm_groups_images(bool ta, bool tb, int64_t m, int64_t n, int64_t k, Operand A, Operand B,
                        double beta, Operand C, int64_t G, int64_t NB, DType in, DType out,
                        int device) {
  const size_t ei = dtype_size(in), eo = dtype_size(out);
  if (G >= NB) {
    for (int64_t i = 0; i < NB; ++i)
      cuda::gemm_strided_batched(ta, tb, m, n, k, 1.0, advance(A.p, i * A.per_image, ei), A.ld,
                                 A.per_group, advance(B.p, i * B.per_image, ei), B.ld, B.per_group,
                                 beta, const_cast<void*>(advance(C.p, i * C.per_image, eo)), C.ld,
                                 C.per_group, G, in, out, device);
  } else {
    for (int64_t gr = 0; gr < G; ++gr)
      cuda::gemm_strided_batched(ta, tb, m, n, k, 1.0, advance(A.p, gr * A.per_group, ei), A.ld,
                                 A.per_image, advance(B.p, gr * B.per_group, ei), B.ld, B.per_image,
                                 beta, const_cast<void*>(advance(C.p, gr * C.per_group, eo)), C.ld,
                                 C.per_image, NB, in, out, device);
  }
}

void check_operands(const char* op, const Tensor& a, const Tensor& b, const Tensor& out) {
  cuda::check_same_cuda_device(op, {&a, &b, &out});
  EVIT_CHECK(a.dtype() == b.dtype(), op, ": operand dtypes differ: ", a.desc(), " and ", b.desc());
  EVIT_CHECK(a.is_contiguous() && b.is_contiguous() && out.is_contiguous(), op,
             ": expected contiguous tensors");
}

void forward_launch(const Geom& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                    const Tensor& y) {
  const char* op = "conv2d (cuda)";
  check_operands(op, x, w, y);
  const int dev = y.device().index;
  const DType in = x.dtype(), out = y.dtype();
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, Cg = g.Cg(), Og = g.Og(), Kr = Cg * g.KK();
  if (y.numel() == 0) return;
  if (bias.defined()) set_or_add_bias(y, bias, g.N, g.O, OHW, false);
  const double beta = bias.defined() ? 1.0 : 0.0;
  if (Kr == 0) {  // no input channels: y is the bias, or zeros
    if (!bias.defined()) cuda::cuda_fill(y, 0.0);
    return;
  }
  if (g.pointwise()) {
    // y[n, gr] [Og, HW] = w_g [Og, Cg] · x[n, gr] [Cg, HW]
    gemm_groups_images(false, false, Og, OHW, Cg, {w.raw_data(), Cg, Og * Cg, 0},
                       {x.raw_data(), HW, Cg * HW, g.C * HW}, beta,
                       {y.raw_data(), OHW, Og * OHW, g.O * OHW}, g.groups, g.N, in, out, dev);
    return;
  }
  const std::vector<Chunk> chunks = make_chunks(g);
  Tensor col = empty({max_chunk_elems(g, chunks)}, {in, y.device()});
  const size_t eo = dtype_size(out);
  cuda::DeviceGuard guard(y);
  for (const Chunk& ch : chunks) {
    const int64_t cols = ch.rows * g.OW, per_image_col = g.C * g.KK() * cols;
    im2col_chunk(x, col, g, ch, in, op);
    // y[n, gr, oh0:] [Og, cols] (ld OHW) = w_g [Og, Kr] · col[nl, gr] [Kr, cols]
    gemm_groups_images(
        false, false, Og, cols, Kr, {w.raw_data(), Kr, Og * Kr, 0},
        {col.raw_data(), cols, Kr * cols, per_image_col}, beta,
        {advance(y.raw_data(), ch.n0 * g.O * OHW + ch.oh0 * g.OW, eo), OHW, Og * OHW, g.O * OHW},
        g.groups, ch.nb, in, out, dev);
  }
}

void backward_input_launch(const Geom& g, const Tensor& dy, const Tensor& w, const Tensor& dx) {
  const char* op = "conv2d backward (input, cuda)";
  check_operands(op, dy, w, dx);
  const int dev = dx.device().index;
  const DType in = dy.dtype(), out = dx.dtype();
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, Cg = g.Cg(), Og = g.Og(), Kr = Cg * g.KK();
  if (dx.numel() == 0) return;
  if (Og == 0 || OHW == 0) {
    cuda::cuda_fill(dx, 0.0);
    return;
  }
  if (g.pointwise()) {
    // dx[n, gr] [Cg, HW] = w_gᵀ [Cg, Og] · dy[n, gr] [Og, HW]
    gemm_groups_images(true, false, Cg, HW, Og, {w.raw_data(), Cg, Og * Cg, 0},
                       {dy.raw_data(), OHW, Og * OHW, g.O * OHW}, 0.0,
                       {dx.raw_data(), HW, Cg * HW, g.C * HW}, g.groups, g.N, in, out, dev);
    return;
  }
  cuda::cuda_fill(dx, 0.0);
  const std::vector<Chunk> chunks = make_chunks(g);
  Tensor col = empty({max_chunk_elems(g, chunks)}, {out, dx.device()});
  const size_t ei = dtype_size(in);
  cuda::DeviceGuard guard(dx);
  cudaStream_t s = cuda::stream_of(dx);
  for (const Chunk& ch : chunks) {
    const int64_t cols = ch.rows * g.OW, per_image_col = g.C * g.KK() * cols;
    // col[nl, gr] [Kr, cols] = w_gᵀ [Kr, Og] · dy[n, gr, oh0:] [Og, cols] (ld OHW)
    gemm_groups_images(true, false, Kr, cols, Og, {w.raw_data(), Kr, Og * Kr, 0},
                       {advance(dy.raw_data(), ch.n0 * g.O * OHW + ch.oh0 * g.OW, ei), OHW,
                        Og * OHW, g.O * OHW},
                       0.0, {col.raw_data(), cols, Kr * cols, per_image_col}, g.groups, ch.nb, in,
                       out, dev);
    // The input rows this chunk's output rows read.
    const int64_t ih_lo = std::max<int64_t>(0, ch.oh0 * g.sh - g.ph);
    const int64_t ih_hi =
        std::min<int64_t>(g.H, (ch.oh0 + ch.rows - 1) * g.sh - g.ph + (g.KH - 1) * g.dh + 1);
    if (ih_hi <= ih_lo) continue;
    const int64_t nrows = ih_hi - ih_lo;
    dispatch_floating(out, op, [&](auto tag) {
      using T = decltype(tag);
      const int64_t total = ch.nb * g.C * nrows * g.W;
      col2im_kernel<T><<<cuda::blocks_for(total), 256, 0, s>>>(
          col.data_ptr<T>(), dx.data_ptr<T>(), kgeom(g), ch.n0, ch.nb, ch.oh0, ch.rows, ih_lo, nrows);
      EVIT_CUDA_LAUNCH_CHECK("col2im_kernel");
    });
  }
}

void backward_weight_launch(const Geom& g, const Tensor& x, const Tensor& dy, const Tensor& dw) {
  const char* op = "conv2d backward (weight, cuda)";
  check_operands(op, x, dy, dw);
  const int dev = dw.device().index;
  const DType in = x.dtype(), out = dw.dtype();
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW, Cg = g.Cg(), Og = g.Og(), Kr = Cg * g.KK();
  if (dw.numel() == 0) return;
  // Accumulated over images and chunks in order (beta = 1 onto zeros): deterministic.
  cuda::cuda_fill(dw, 0.0);
  if (Kr == 0 || OHW == 0 || g.N == 0) return;
  const size_t ei = dtype_size(in);
  cuda::DeviceGuard guard(dw);
  if (g.pointwise()) {
    // dw_g [Og, Cg] = dy_g [Og, N·HW] · x_g [Cg, N·HW]ᵀ with the images inside the channels;
    // groups batched.
    const int64_t NP = g.N * OHW;
    Tensor dyt = images_inside_channels(dy.raw_data(), g.N, g.O, OHW, g.O * OHW, in, dw, op);
    Tensor xt = images_inside_channels(x.raw_data(), g.N, g.C, HW, g.C * HW, in, dw, op);
    cuda::gemm_strided_batched(false, true, Og, Cg, NP, 1.0, dyt.raw_data(), NP, Og * NP,
                               xt.raw_data(), NP, Cg * NP, 1.0, dw.raw_data(), Cg, Og * Cg,
                               g.groups, in, out, dev);
    return;
  }
  const std::vector<Chunk> chunks = make_chunks(g);
  Tensor col = empty({max_chunk_elems(g, chunks)}, {in, dw.device()});
  for (const Chunk& ch : chunks) {
    const int64_t cols = ch.rows * g.OW, per_image_col = g.C * g.KK() * cols;
    if (ch.nb > 1) {  // whole images (cols == OHW): one GEMM per group over images and pixels
      const int64_t NP = ch.nb * cols;
      im2col_chunk(x, col, g, ch, in, op, /*images_inner=*/true);
      Tensor dyt = images_inside_channels(advance(dy.raw_data(), ch.n0 * g.O * OHW, ei), ch.nb, g.O,
                                          OHW, g.O * OHW, in, dw, op);
      // dw_g [Og, Kr] += dy_g [Og, nb·OHW] · col_g [Kr, nb·OHW]ᵀ
      cuda::gemm_strided_batched(false, true, Og, Kr, NP, 1.0, dyt.raw_data(), NP, Og * NP,
                                 col.raw_data(), NP, Kr * NP, 1.0, dw.raw_data(), Kr, Og * Kr,
                                 g.groups, in, out, dev);
      continue;
    }
    im2col_chunk(x, col, g, ch, in, op);
    // dw_g [Og, Kr] += dy[n, gr, oh0:] [Og, cols] (ld OHW) · col[nl, gr]ᵀ [cols, Kr]
    for (int64_t nl = 0; nl < ch.nb; ++nl)
      cuda::gemm_strided_batched(
          false, true, Og, Kr, cols, 1.0,
          advance(dy.raw_data(), (ch.n0 + nl) * g.O * OHW + ch.oh0 * g.OW, ei), OHW, Og * OHW,
          advance(col.raw_data(), nl * per_image_col, ei), cols, Kr * cols, 1.0, dw.raw_data(), Kr,
          Og * Kr, g.groups, in, out, dev);
  }
}

void bias_backward_launch(int64_t N, int64_t C, int64_t HW, const Tensor& dy, const Tensor& db) {
  cuda::check_same_cuda_device("conv (bias gradient)", {&dy, &db});
  if (C == 0) return;
  cuda::DeviceGuard guard(db);
  dispatch_floating(db.dtype(), "conv (bias gradient)", [&](auto tag) {
    using T = decltype(tag);
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(C, 65535));
    bias_backward_kernel<T><<<blocks, kReduceThreads, 0, cuda::stream_of(db)>>>(
        dy.data_ptr<T>(), db.data_ptr<T>(), N, C, HW);
    EVIT_CUDA_LAUNCH_CHECK("bias_backward_kernel");
  });
}

void add_bias_launch(int64_t N, int64_t C, int64_t HW, const Tensor& bias, const Tensor& y) {
  cuda::check_same_cuda_device("conv (bias)", {&bias, &y});
  set_or_add_bias(y, bias, N, C, HW, true);
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(conv_gemm_forward_cuda, forward_launch);
EVIT_REGISTER_CUDA_KERNEL(conv_gemm_backward_input_cuda, backward_input_launch);
EVIT_REGISTER_CUDA_KERNEL(conv_gemm_backward_weight_cuda, backward_weight_launch);
EVIT_REGISTER_CUDA_KERNEL(conv_bias_backward_cuda, bias_backward_launch);
EVIT_REGISTER_CUDA_KERNEL(conv_add_bias_cuda, add_bias_launch);

}  // namespace evit
