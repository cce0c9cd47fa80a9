// CUDA twin of GradScaler::unscale_: one fused multi-tensor launch (per element type) that
// multiplies every gradient by 1/scale and raises a flag for any non-finite value.
#include "optim/cuda_slots.h"
#include "optim/multi_tensor.cuh"

namespace evit::optim {
namespace {

// ptr[0]: gradient. The flag is set by a plain store of 1 from every thread that sees a
// non-finite value: all writers store the same value, so the result is deterministic.
template <class T>
struct UnscaleOp {
  T inv_scale;
  int32_t* found_inf;
  __device__ void operator()(const mt::MTEntry& e, int64_t i) const {
    T* g = static_cast<T*>(e.ptr[0]);
    const T x = g[i];
    if (!isfinite(x)) *found_inf = 1;
    g[i] = x * inv_scale;
  }
};

bool unscale_grads_launch(const std::vector<Tensor>& grads, float inv_scale) {
  if (grads.empty()) return true;
  const Device device = grads[0].device();
  Tensor found = zeros({1}, {DType::i32, device});
  std::vector<DType> dtypes;
  for (const Tensor& g : grads) dtypes.push_back(g.dtype());
  mt::by_dtype(dtypes, "GradScaler.unscale_", [&](auto tag, const std::vector<size_t>& idx) {
    using T = decltype(tag);
    std::vector<mt::MTEntry> entries;
    for (size_t i : idx) {
      mt::MTEntry e{};
      e.ptr[0] = grads[i].data_ptr<T>();
      e.n = grads[i].numel();
      entries.push_back(e);
    }
    mt::launch<T>(std::move(entries), device,
                  UnscaleOp<T>{static_cast<T>(inv_scale), found.data_ptr<int32_t>()},
                  "GradScaler.unscale_ multi_tensor_kernel");
  });
  return found.item<int32_t>() == 0;  // waits for the launch
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(unscale_grads_cuda, unscale_grads_launch);

}  // namespace evit::optim
