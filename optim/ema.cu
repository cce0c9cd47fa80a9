// CUDA twin of EMA::update: every floating state entry of a device in one multi-tensor launch
// (per element type), ema -= (1 - decay_t) * (ema - model) as in ema.cpp.
#include "optim/cuda_slots.h"
#include "optim/multi_tensor.cuh"

namespace evit::optim {
namespace {

// ptr: shadow, model.
template <class T>
struct EMAOp {
  T a;  // 1 - decay_t in the tensor's type, as the CPU loop
  __device__ void operator()(const mt::MTEntry& e, int64_t i) const {
    T* ep = static_cast<T*>(e.ptr[0]);
    const T* mp = static_cast<const T*>(e.ptr[1]);
    ep[i] -= a * (ep[i] - mp[i]);
  }
};

void ema_update_launch(const std::vector<Tensor>& shadow, const std::vector<Tensor>& model,
                       double one_minus_decay) {
  EVIT_CHECK(shadow.size() == model.size(), "EMA: ", shadow.size(), " shadow entries, ",
             model.size(), " model entries");
  if (shadow.empty()) return;
  const Device device = shadow[0].device();
  std::vector<DType> dtypes;
  for (const Tensor& t : shadow) dtypes.push_back(t.dtype());
  mt::by_dtype(dtypes, "EMA", [&](auto tag, const std::vector<size_t>& idx) {
    using T = decltype(tag);
    std::vector<mt::MTEntry> entries;
    for (size_t i : idx) {
      mt::MTEntry e{};
      e.ptr[0] = shadow[i].data_ptr<T>();
      e.ptr[1] = model[i].data_ptr<T>();
      e.n = shadow[i].numel();
      entries.push_back(e);
    }
    mt::launch<T>(std::move(entries), device, EMAOp<T>{static_cast<T>(one_minus_decay)},
                  "EMA multi_tensor_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(ema_update_cuda, ema_update_launch);

}  // namespace evit::optim
