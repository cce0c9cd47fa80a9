// cuBLAS context and row-major GEMM helpers (see cublas.cuh).
#include "core/cuda/cublas.cuh"

#include <algorithm>
#include <climits>
#include <memory>
#include <mutex>
#include <vector>

namespace evit::cuda {

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unknown cublasStatus_t";
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  ::evit::detail::throw_error(file, line, "cuBLAS error in ", call, ": ", cublas_status_name(status),
                              " (", static_cast<int>(status), ")");
}

namespace {

// cuBLAS needs a workspace for its fastest kernels on Hopper (and for run-to-run determinism
// it must not allocate one itself per call); 32 MiB is NVIDIA's recommendation for sm_90.
constexpr int64_t kWorkspaceBytes = int64_t(32) << 20;

struct HandleState {
  cublasHandle_t handle = nullptr;
  Tensor workspace;  // from the caching allocator, alive as long as the handle
};

std::mutex g_handle_mu;

}  // namespace

cublasHandle_t cublas_handle(int device) {
  cudaStream_t s = stream(device);  // validates `device` and creates its runtime state first
  // Deliberately never destroyed: handles and workspaces live until the process exits, so no
  // static destructor runs cublasDestroy or frees to the allocator after the CUDA runtime or
  // the allocator is gone.
  static auto* states = new std::vector<HandleState*>(static_cast<size_t>(device_count()), nullptr);
  std::lock_guard<std::mutex> lock(g_handle_mu);
  HandleState*& st = (*states)[static_cast<size_t>(device)];
  if (!st) {
    auto fresh = std::make_unique<HandleState>();
    DeviceGuard g(device);
    EVIT_CUBLAS_CHECK(cublasCreate(&fresh->handle));
    EVIT_CUBLAS_CHECK(cublasSetStream(fresh->handle, s));
    fresh->workspace = empty({kWorkspaceBytes}, {DType::u8, Device(DeviceType::cuda, device)});
    EVIT_CUBLAS_CHECK(cublasSetWorkspace(fresh->handle, fresh->workspace.raw_data(),
                                         static_cast<size_t>(kWorkspaceBytes)));
    st = fresh.release();
  }
  return st->handle;
}

namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32: return CUDA_R_32F;
    case DType::f64: return CUDA_R_64F;
    case DType::f16: return CUDA_R_16F;
    case DType::bf16: return CUDA_R_16BF;
    default: EVIT_THROW("cuda gemm: unsupported dtype ", dtype_name(t));
  }
}

int to_int(int64_t v, const char* what) {
  EVIT_CHECK(v >= 0 && v <= INT_MAX, "cuda gemm: ", what, " = ", v, " does not fit cuBLAS's int");
  return static_cast<int>(v);
}

// Leading dimension of a row-major [rows, cols] operand as cuBLAS wants it: a one-row matrix
// may carry any ld (it is never stepped), but cuBLAS still requires ld >= cols.
int64_t fix_ld(int64_t rows, int64_t cols, int64_t ld, const char* what) {
  if (rows <= 1) return std::max<int64_t>({ld, cols, 1});
  EVIT_CHECK(ld >= cols && ld >= 1, "cuda gemm: leading dimension of ", what, " (", ld,
             ") is smaller than its row length ", cols);
  return ld;
}

template <class T>
__global__ void scale_matrices_kernel(int64_t total, int64_t m, int64_t n, T* c, int64_t ldc,
                                      int64_t stride_c, T beta) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / (m * n), r = (i / n) % m, col = i % n;
    T* p = c + b * stride_c + r * ldc + col;
    *p = beta == T(0) ? T(0) : *p * beta;  // beta = 0 overwrites (C may hold garbage/NaN)
  }
}

// C = beta · C for the k == 0 product (cuBLAS would do the same; done here so every dtype
// and the beta = 0 "C is uninitialised" case are certain).
void scale_c(int64_t m, int64_t n, double beta, void* C, int64_t ldc, int64_t stride_c,
             int64_t batch, DType out_dtype, int device) {
  const int64_t total = m * n * batch;
  DeviceGuard g(device);
  cudaStream_t s = stream(device);
  if (out_dtype == DType::f32) {
    scale_matrices_kernel<float><<<blocks_for(total), 256, 0, s>>>(
        total, m, n, static_cast<float*>(C), ldc, stride_c, static_cast<float>(beta));
  } else if (out_dtype == DType::f64) {
    scale_matrices_kernel<double><<<blocks_for(total), 256, 0, s>>>(
        total, m, n, static_cast<double*>(C), ldc, stride_c, beta);
  } else {
    EVIT_THROW("cuda gemm: unsupported output dtype ", dtype_name(out_dtype));
  }
  EVIT_CUDA_LAUNCH_CHECK("scale_matrices_kernel");
}

struct Prepared {
  cublasHandle_t handle;
  cublasComputeType_t compute;
  cudaDataType_t in, out;
  bool f64;
};

Prepared prepare(DType in_dtype, DType out_dtype, int device) {
  const bool ok = (in_dtype == out_dtype && (in_dtype == DType::f32 || in_dtype == DType::f64)) ||
                  (is_half(in_dtype) && out_dtype == DType::f32);
  EVIT_CHECK(ok, "cuda gemm: unsupported dtypes: inputs ", dtype_name(in_dtype), ", output ",
             dtype_name(out_dtype), " (f32/f32, f64/f64, f16/f32 and bf16/f32 are supported)");
  Prepared p;
  p.handle = cublas_handle(device);
  const bool tf32 = allow_tf32();
  // Math mode per call: allow_tf32() may change between calls.
  EVIT_CUBLAS_CHECK(cublasSetMathMode(p.handle, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  p.in = cuda_type(in_dtype);
  p.out = cuda_type(out_dtype);
  p.f64 = in_dtype == DType::f64;
  if (p.f64) p.compute = CUBLAS_COMPUTE_64F;
  else if (in_dtype == DType::f32 && tf32) p.compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  else p.compute = CUBLAS_COMPUTE_32F;  // f32, and f16/bf16 with f32 accumulation
  return p;
}

}  // namespace

void gemm_strided_batched(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                          const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb,
                          int64_t stride_b, double beta, void* C, int64_t ldc, int64_t stride_c,
                          int64_t batch, DType in_dtype, DType out_dtype, int device) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  const Prepared p = prepare(in_dtype, out_dtype, device);
  ldc = fix_ld(m, n, ldc, "C");
  if (k <= 0) return scale_c(m, n, beta, C, ldc, stride_c, batch, out_dtype, device);
  // Row-major op(A)[m,k] is stored as [m,k] (or [k,m] with trans); same for B.
  lda = ta ? fix_ld(k, m, lda, "A") : fix_ld(m, k, lda, "A");
  ldb = tb ? fix_ld(n, k, ldb, "B") : fix_ld(k, n, ldb, "B");
  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major matrix read
  // column-major is its transpose: so cuBLAS gets (B, A) with the same transpose flags and the
  // dimensions (n, m, k).
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int im = to_int(m, "m"), in_ = to_int(n, "n"), ik = to_int(k, "k");
  const int ilda = to_int(lda, "lda"), ildb = to_int(ldb, "ldb"), ildc = to_int(ldc, "ldc");
  DeviceGuard g(device);
  const float af = static_cast<float>(alpha), bf = static_cast<float>(beta);
  const void* pa = p.f64 ? static_cast<const void*>(&alpha) : static_cast<const void*>(&af);
  const void* pb = p.f64 ? static_cast<const void*>(&beta) : static_cast<const void*>(&bf);
  if (batch == 1) {
    EVIT_CUBLAS_CHECK(cublasGemmEx(p.handle, opb, opa, in_, im, ik, pa, B, p.in, ildb, A, p.in, ilda,
                                   pb, C, p.out, ildc, p.compute, CUBLAS_GEMM_DEFAULT));
  } else {
    EVIT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        p.handle, opb, opa, in_, im, ik, pa, B, p.in, ildb, static_cast<long long>(stride_b), A,
        p.in, ilda, static_cast<long long>(stride_a), pb, C, p.out, ildc,
        static_cast<long long>(stride_c), to_int(batch, "batch"), p.compute, CUBLAS_GEMM_DEFAULT));
  }
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void* A,
          int64_t lda, const void* B, int64_t ldb, double beta, void* C, int64_t ldc,
          DType in_dtype, DType out_dtype, int device) {
  gemm_strided_batched(ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, in_dtype,
                       out_dtype, device);
}

}  // namespace evit::cuda
