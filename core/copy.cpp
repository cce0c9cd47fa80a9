#include "core/copy.h"

#include <cstring>

#include "core/cuda.h"
#include "core/strided_loop.h"

namespace evit {

void copy_elements(const Tensor& dst, const Tensor& src) {
  if (!dst.device().is_cpu() || !src.device().is_cpu()) {
    cuda::cuda_copy_elements(dst, src);  // host<->device and device<->device
    return;
  }
  broadcast_shapes(src.sizes(), dst.sizes(), "copy");
  StridedIter<2> it;
  it.sizes = dst.sizes();
  it.strides[0] = dst.strides();
  it.strides[1] = broadcast_strides(src.sizes(), src.strides(), dst.sizes());
  dispatch_all(dst.dtype(), "copy", [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_all(src.dtype(), "copy", [&](auto stag) {
      using S = decltype(stag);
      D* d = static_cast<D*>(dst.raw_data());
      const S* s = static_cast<const S*>(src.raw_data());
      it.run(kPointwiseGrain, [&](const std::array<int64_t, 2>& off, int64_t n,
                                  const std::array<int64_t, 2>& st) {
        D* dp = d + off[0];
        const S* sp = s + off[1];
        if constexpr (std::is_same_v<D, S>) {
          if (st[0] == 1 && st[1] == 1) {
            std::memcpy(dp, sp, n * sizeof(D));
            return;
          }
        }
        for (int64_t j = 0; j < n; ++j) dp[j * st[0]] = convert_value<D>(sp[j * st[1]]);
      });
    });
  });
}

}  // namespace evit
