// CUDA twin of SGD::step: every parameter of a device in one multi-tensor launch (per element
// type), the same per-element formula as the CPU loop in sgd.cpp.
#include "optim/cuda_slots.h"
#include "optim/multi_tensor.cuh"

namespace evit::optim {
namespace {

constexpr int32_t kFirst = 1;        // the momentum buffer takes the (decayed) gradient
constexpr int32_t kHasMomentum = 2;  // ptr[2] is the momentum buffer

// ptr: param, grad, momentum buffer; s: lr, weight_decay.
template <class T>
struct SGDOp {
  T mom, one_minus_damp;
  bool nesterov, maximize;
  __device__ void operator()(const mt::MTEntry& e, int64_t i) const {
    T* w = static_cast<T*>(e.ptr[0]);
    const T* gr = static_cast<const T*>(e.ptr[1]);
    const T lr = static_cast<T>(e.s[0]), wd = static_cast<T>(e.s[1]);
    T d = maximize ? -gr[i] : gr[i];
    if (e.s[1] != 0.0) d = d + wd * w[i];
    if (e.flags & kHasMomentum) {
      T* b = static_cast<T*>(e.ptr[2]);
      const T bi = (e.flags & kFirst) ? d : b[i] * mom + one_minus_damp * d;
      b[i] = bi;
      d = nesterov ? d + mom * bi : bi;
    }
    w[i] = w[i] + (-lr) * d;
  }
};

void sgd_step_launch(const std::vector<SGDCudaItem>& items, double momentum, double dampening,
                     bool nesterov, bool maximize) {
  if (items.empty()) return;
  const Device device = items[0].param.device();
  std::vector<DType> dtypes;
  for (const SGDCudaItem& it : items) dtypes.push_back(it.param.dtype());
  mt::by_dtype(dtypes, "SGD", [&](auto tag, const std::vector<size_t>& idx) {
    using T = decltype(tag);
    std::vector<mt::MTEntry> entries;
    for (size_t i : idx) {
      const SGDCudaItem& it = items[i];
      mt::MTEntry e{};
      e.ptr[0] = it.param.data_ptr<T>();
      e.ptr[1] = it.grad.data_ptr<T>();
      if (it.momentum_buffer.defined()) {
        e.ptr[2] = it.momentum_buffer.data_ptr<T>();
        e.flags |= kHasMomentum;
        if (it.first) e.flags |= kFirst;
      }
      e.n = it.param.numel();
      e.s[0] = it.lr;
      e.s[1] = it.weight_decay;
      entries.push_back(e);
    }
    // Scalars rounded to the parameter's type, as the CPU loop (and torch) do.
    SGDOp<T> op{static_cast<T>(momentum), static_cast<T>(1.0 - dampening), nesterov, maximize};
    mt::launch<T>(std::move(entries), device, op, "SGD multi_tensor_kernel");
  });
}

}  // namespace

EVIT_REGISTER_CUDA_KERNEL(sgd_step_cuda, sgd_step_launch);

}  // namespace evit::optim
