// CUDA twin of AdamW::step: every parameter of a device in one multi-tensor launch (per
// element type), the same per-element formula as the CPU loop in adamw.cpp.
#include "optim/cuda_slots.h"
#include "optim/multi_tensor.cuh"

namespace evit::optim {
namespace {

// ptr: param, grad, exp_avg, exp_avg_sq; s: step_size, bc2_sqrt, decay.
template <class T>
struct AdamWOp {
  T b1, b2, eps;
  __device__ void operator()(const mt::MTEntry& e, int64_t i) const {
    T* w = static_cast<T*>(e.ptr[0]);
    const T* gr = static_cast<const T*>(e.ptr[1]);
    T* m = static_cast<T*>(e.ptr[2]);
    T* v = static_cast<T*>(e.ptr[3]);
    const T ss = static_cast<T>(e.s[0]), c2 = static_cast<T>(e.s[1]), dec = static_cast<T>(e.s[2]);
    const T g = gr[i];
    T wi = w[i] * dec;  // decoupled weight decay first
    const T mi = b1 * m[i] + (T(1) - b1) * g;
    const T vi = b2 * v[i] + (T(1) - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    wi -= ss * mi / (sqrt(vi) / c2 + eps);  // eps outside the square root, as torch
    w[i] = wi;
  }
};

void adamw_step_launch(const std::vector<AdamWCudaItem>& items, double beta1, double beta2,
                       double eps) {
  if (items.empty()) return;
  const Device device = items[0].param.device();
  std::vector<DType> dtypes;
  for (const AdamWCudaItem& it : items) dtypes.push_back(it.param.dtype());
  mt::by_dtype(dtypes, "AdamW", [&](auto tag, const std::vector<size_t>& idx) {
    using T = decltype(tag);
    std::vector<mt::MTEntry> entries;
    for (size_t i : idx) {
      const AdamWCudaItem& it = items[i];
      mt::MTEntry e{};
      e.ptr[0] = it.param.data_ptr<T>();
      e.ptr[1] = it.grad.data_ptr<T>();
      e.ptr[2] = it.exp_avg.data_ptr<T>();
      e.ptr[3] = it.exp_avg_sq.data_ptr<T>();
      e.n = it.param.numel();
      e.s[0] = it.step_size;
      e.s[1] = it.bc2_sqrt;
      e.s[2] = it.decay;
      entries.push_back(e);
    }
    mt::launch<T>(std::move(entries), device,
                  AdamWOp<T>{static_cast<T>(beta1), static_cast<T>(beta2), static_cast<T>(eps)},
                  "AdamW multi_tensor_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(adamw_step_cuda, adamw_step_launch);

}  // namespace evit::optim
