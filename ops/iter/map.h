// cpu_map: the elementwise CPU kernel behind every pointwise op.
//
//   cpu_map<Out, In...>(out, f, in...)  sets out[i] = f(in[i]...)
//
// `out` is contiguous and owns the iteration shape; inputs are broadcast to it (stride 0) and
// may have any strides. Runs on the deterministic pool in fixed chunks. The all-unit-stride case
// is a plain loop the compiler vectorizes.
#pragma once
#include <array>
#include <tuple>
#include <utility>

#include "core/strided_loop.h"
#include "core/tensor.h"

namespace evit {

namespace detail {
// One `const Tensor&` parameter per input type.
template <class T, class> using Repeat = T;

template <class Out, class... In, class F, size_t... I>
void cpu_map_impl(const Tensor& out, const F& f, std::index_sequence<I...>,
                  const Repeat<Tensor, In>&... ins) {
  constexpr size_t N = 1 + sizeof...(In);
  StridedIter<N> it;
  it.sizes = out.sizes();
  it.strides[0] = out.strides();
  const Tensor* in_ptrs[] = {&ins...};
  for (size_t k = 0; k < sizeof...(In); ++k)
    it.strides[k + 1] = broadcast_strides(in_ptrs[k]->sizes(), in_ptrs[k]->strides(), out.sizes());
  Out* o = static_cast<Out*>(out.raw_data());
  std::tuple<const In*...> bases{static_cast<const In*>(ins.raw_data())...};
  it.run(kPointwiseGrain, [&](const std::array<int64_t, N>& off, int64_t n,
                              const std::array<int64_t, N>& st) {
    Out* __restrict op = o + off[0];
    bool unit = ((st[I + 1] == 1) && ...) && st[0] == 1;
    if (unit) {
      std::tuple<const In* __restrict...> p{(std::get<I>(bases) + off[I + 1])...};
      for (int64_t j = 0; j < n; ++j) op[j] = f(std::get<I>(p)[j]...);
    } else {
      for (int64_t j = 0; j < n; ++j)
        op[j * st[0]] = f(std::get<I>(bases)[off[I + 1] + j * st[I + 1]]...);
    }
  });
}
}  // namespace detail

template <class Out, class... In, class F>
void cpu_map(const Tensor& out, const F& f, const detail::Repeat<Tensor, In>&... ins) {
  EVIT_CHECK(out.device().is_cpu(), "cpu_map: output is on ", out.device().str());
  detail::cpu_map_impl<Out, In...>(out, f, std::index_sequence_for<In...>{}, ins...);
}

}  // namespace evit
