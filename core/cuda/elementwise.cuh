// cuda_map: the elementwise CUDA kernel behind pointwise ops, casts, fills and copies; the twin
// of cpu_map (ops/iter/map.h) with the same contract:
//
//   cuda_map<Out, In...>(out, f, in...)  sets out[i] = f(in[i]...)
//
// `out` owns the iteration shape and may have any strides; inputs are broadcast to it (stride
// 0). `f` is a __host__ __device__ functor or an extended __device__ lambda. Contiguous,
// non-broadcast operands take a flat-index kernel; anything else goes through an offset
// calculator over (coalesced) dimensions.
#pragma once
#include <array>
#include <utility>

#include "core/cuda/runtime.cuh"
#include "core/shape.h"
#include "core/strided_loop.h"

namespace evit::cuda {

inline constexpr int kMaxMapDims = 10;

// Per-operand strides (in elements) over a shared iteration shape, innermost dimension last.
template <int N>
struct OffsetCalculator {
  int ndim = 0;
  int64_t sizes[kMaxMapDims];
  int64_t strides[N][kMaxMapDims];

  __device__ __forceinline__ void offsets(int64_t linear, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t idx = linear % sizes[d];
      linear /= sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

// Builds the calculator for `sizes` and the operands' strides, merging adjacent dimensions that
// are contiguous with each other in every operand (fewer divisions per element).
template <int N>
OffsetCalculator<N> make_offset_calculator(const Shape& sizes, const std::array<Shape, N>& strides,
                                           const char* op) {
  OffsetCalculator<N> c;
  std::vector<int64_t> sz;
  std::vector<std::array<int64_t, N>> st;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;  // a size-1 dimension adds nothing to any offset
    std::array<int64_t, N> s{};
    for (int k = 0; k < N; ++k) s[k] = strides[k][d];
    if (!sz.empty()) {
      bool merge = true;
      for (int k = 0; k < N; ++k) merge &= st.back()[k] == s[k] * sizes[d];
      if (merge) {
        sz.back() *= sizes[d];
        st.back() = s;
        continue;
      }
    }
    sz.push_back(sizes[d]);
    st.push_back(s);
  }
  EVIT_CHECK(static_cast<int>(sz.size()) <= kMaxMapDims, op, ": more than ", kMaxMapDims,
             " non-mergeable dimensions in a CUDA elementwise kernel (shape ", shape_str(sizes), ")");
  c.ndim = static_cast<int>(sz.size());
  for (int d = 0; d < c.ndim; ++d) {
    c.sizes[d] = sz[d];
    for (int k = 0; k < N; ++k) c.strides[k][d] = st[d][k];
  }
  return c;
}

template <int N>
struct PointerArray {
  const void* p[N > 0 ? N : 1];
};

namespace detail {

template <class F, class Out, class... In, size_t... I>
__device__ __forceinline__ Out call_contiguous(const F& f, const PointerArray<sizeof...(In)>& in,
                                               int64_t i, std::index_sequence<I...>) {
  return static_cast<Out>(f(static_cast<const In*>(in.p[I])[i]...));
}

template <class F, class Out, class... In, size_t N, size_t... I>
__device__ __forceinline__ Out call_strided(const F& f, const PointerArray<sizeof...(In)>& in,
                                            const int64_t (&off)[N], std::index_sequence<I...>) {
  return static_cast<Out>(f(static_cast<const In*>(in.p[I])[off[I + 1]]...));
}

template <class Out, class F, class... In>
__global__ void map_contiguous_kernel(int64_t n, Out* out, PointerArray<sizeof...(In)> in, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = call_contiguous<F, Out, In...>(f, in, i, std::index_sequence_for<In...>{});
}

template <class Out, class F, class... In>
__global__ void map_strided_kernel(int64_t n, Out* out, PointerArray<sizeof...(In)> in,
                                   OffsetCalculator<1 + sizeof...(In)> calc, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[1 + sizeof...(In)];
    calc.offsets(i, off);
    out[off[0]] = call_strided<F, Out, In...>(f, in, off, std::index_sequence_for<In...>{});
  }
}

template <class T> struct Repeat1 { using type = const Tensor&; };

}  // namespace detail

template <class Out, class... In, class F>
void cuda_map(const Tensor& out, const F& f, typename detail::Repeat1<In>::type... ins) {
  constexpr int N = 1 + sizeof...(In);
  const char* op = "cuda_map";
  check_same_cuda_device(op, {&out, &ins...});
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out);
  PointerArray<sizeof...(In)> in{};
  {
    int k = 0;
    ((in.p[k++] = ins.raw_data()), ...);
  }
  Out* o = static_cast<Out*>(out.raw_data());
  bool flat = out.is_contiguous();
  ((flat = flat && ins.is_contiguous() && ins.sizes() == out.sizes()), ...);
  const unsigned blocks = blocks_for(n);
  cudaStream_t s = stream_of(out);
  if (flat) {
    detail::map_contiguous_kernel<Out, F, In...><<<blocks, 256, 0, s>>>(n, o, in, f);
  } else {
    std::array<Shape, N> strides;
    strides[0] = out.strides();
    {
      int k = 1;
      ((strides[k++] = broadcast_strides(ins.sizes(), ins.strides(), out.sizes())), ...);
    }
    auto calc = make_offset_calculator<N>(out.sizes(), strides, op);
    detail::map_strided_kernel<Out, F, In...><<<blocks, 256, 0, s>>>(n, o, in, calc, f);
  }
  EVIT_CUDA_LAUNCH_CHECK("cuda_map");
}

}  // namespace evit::cuda
