// The CUDA device runtime: streams, the caching allocator on cudaMalloc, copies between host
// and device, fills, pinned memory. It fills the slots declared in core/cuda.h.
#include "core/cuda/runtime.cuh"

#include <atomic>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/copy.h"
#include "core/cuda/elementwise.cuh"

namespace evit::cuda {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a sticky launch error so later calls report their own
  ::evit::detail::throw_error(file, line, "CUDA error in ", call, ": ", cudaGetErrorName(err), " (",
                      cudaGetErrorString(err), ")");
}

namespace {

bool sync_after_each_op() {
  static const bool on = [] {
    const char* v = std::getenv("EVIT_CUDA_SYNC");
    return v && std::string(v) != "0" && std::string(v) != "";
  }();
  return on;
}

int count_devices() {
  static const int n = [] {
    int c = 0;
    if (cudaGetDeviceCount(&c) != cudaSuccess) {
      cudaGetLastError();
      return 0;  // no driver or no GPU: the backend is built but nothing is visible
    }
    return c;
  }();
  return n;
}

// cudaMalloc behind the caching allocator's device-memory interface.
class CudaDeviceMemory final : public DeviceMemory {
 public:
  explicit CudaDeviceMemory(int device) : device_(device) {}
  void* raw_alloc(size_t bytes) override {
    DeviceGuard g(device_);
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return nullptr;  // the allocator frees its cache and retries, then reports OOM
    }
    EVIT_CUDA_CHECK(e);
    return p;
  }
  void raw_free(void* p) override {
    DeviceGuard g(device_);
    // Blocks are only reused on this device's single stream, but cudaFree of a segment must
    // not race kernels still reading it.
    EVIT_CUDA_CHECK(cudaDeviceSynchronize());
    EVIT_CUDA_CHECK(cudaFree(p));
  }
  std::pair<size_t, size_t> mem_info() override {
    DeviceGuard g(device_);
    size_t free_b = 0, total_b = 0;
    EVIT_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return {free_b, total_b};
  }

 private:
  int device_;
};

// Keeps a pinned host buffer alive until the asynchronous copy reading it has finished.
struct PendingCopy {
  cudaEvent_t done;
  std::shared_ptr<Storage> source;
};

struct DeviceState {
  cudaStream_t stream = nullptr;
  std::unique_ptr<CudaDeviceMemory> memory;
  std::unique_ptr<CachingAllocator> allocator;
  std::deque<PendingCopy> pending;
};

std::mutex g_mu;

DeviceState& state(int device) {
  const int n = count_devices();
  EVIT_CHECK(n > 0, "cuda:", device, " requested, but no CUDA GPU is visible to this process");
  EVIT_CHECK(device >= 0 && device < n, "cuda:", device, " requested, but only ", n,
             " CUDA device(s) are visible");
  // Never destroyed: tensors in static objects may free their blocks after main() returns.
  // Every launch asks for its stream here, so an initialised device is found without the lock.
  static auto* states = new std::vector<std::atomic<DeviceState*>>(n);
  std::atomic<DeviceState*>& slot = (*states)[device];
  if (DeviceState* ready = slot.load(std::memory_order_acquire)) return *ready;
  std::lock_guard<std::mutex> lock(g_mu);
  if (DeviceState* ready = slot.load(std::memory_order_relaxed)) return *ready;
  auto st = std::make_unique<DeviceState>();
  DeviceGuard g(device);
  EVIT_CUDA_CHECK(cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking));
  st->memory = std::make_unique<CudaDeviceMemory>(device);
  CachingAllocatorOptions opt;
  opt.device_name = "cuda:" + std::to_string(device);
  st->allocator = std::make_unique<CachingAllocator>(*st->memory, opt);
  slot.store(st.get(), std::memory_order_release);
  return *st.release();
}

// Releases the pinned buffers of finished copies (all of them when `wait`).
void reap_pending(DeviceState& st, bool wait) {
  std::lock_guard<std::mutex> lock(g_mu);
  while (!st.pending.empty()) {
    PendingCopy& p = st.pending.front();
    if (wait) EVIT_CUDA_CHECK(cudaEventSynchronize(p.done));
    cudaError_t q = cudaEventQuery(p.done);
    if (q == cudaErrorNotReady) {
      cudaGetLastError();  // not an error: the copy is still running (keep launch checks clean)
      break;
    }
    EVIT_CUDA_CHECK(q);
    EVIT_CUDA_CHECK(cudaEventDestroy(p.done));
    st.pending.pop_front();
  }
}

std::shared_ptr<void> cuda_allocate(size_t nbytes, int device) {
  DeviceState& st = state(device);
  void* p = st.allocator->allocate(nbytes);
  CachingAllocator* alloc = st.allocator.get();
  return std::shared_ptr<void>(p, [alloc](void* q) {
    if (q) alloc->free(q);
  });
}

bool is_pinned(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

// A contiguous tensor of `like`'s shape on `device` in `dtype`, holding src's values (broadcast
// and converted); src itself when it already is one.
Tensor dense_copy(const Tensor& src, const Shape& shape, DType dtype, Device device) {
  if (src.device() == device && src.dtype() == dtype && src.sizes() == shape && src.is_contiguous())
    return src;
  Tensor t = empty(shape, {dtype, device});
  copy_elements(t, src);
  return t;
}

template <class D, class S>
struct CastOp {
  __device__ D operator()(S v) const { return convert_value<D>(v); }
};

// Same device: one conversion kernel (or a memcpy when nothing changes).
void copy_on_device(const Tensor& dst, const Tensor& src) {
  DeviceGuard g(dst);
  cudaStream_t s = stream_of(dst);
  if (dst.dtype() == src.dtype() && dst.sizes() == src.sizes() && dst.is_contiguous() &&
      src.is_contiguous()) {
    EVIT_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(),
                                    dst.numel() * dtype_size(dst.dtype()), cudaMemcpyDeviceToDevice, s));
    return;
  }
  dispatch_all(dst.dtype(), "copy", [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_all(src.dtype(), "copy", [&](auto stag) {
      using S = decltype(stag);
      cuda_map<D, S>(dst, CastOp<D, S>{}, src);
    });
  });
}

void copy_elements_cuda(const Tensor& dst, const Tensor& src) {
  EVIT_CHECK(broadcast_shapes(src.sizes(), dst.sizes(), "copy") == dst.sizes(), "copy: cannot copy ",
             shape_str(src.sizes()), " into ", shape_str(dst.sizes()));
  if (dst.numel() == 0) return;
  const Device dd = dst.device(), sd = src.device();
  if (dd.is_cuda() && sd.is_cuda()) {
    if (dd == sd) return copy_on_device(dst, src);
    // Between GPUs: through a contiguous buffer of dst's dtype on the source device.
    Tensor a = dense_copy(src, dst.sizes(), dst.dtype(), sd);
    Tensor b = dst.is_contiguous() ? dst : empty(dst.sizes(), {dst.dtype(), dd});
    synchronize(sd.index);
    // Not cudaMemcpyPeer: it runs on the legacy default stream, which does not order with our
    // cudaStreamNonBlocking streams, so it could overwrite dst (or a block just reused from
    // dd's cache) while dd's stream still reads it, and return before `a` (freed to sd's cache
    // on return, reusable at once) has been read. Copy on dd's stream (after its pending work)
    // and wait for it.
    DeviceGuard g(dd.index);
    cudaStream_t ds = stream(dd.index);
    EVIT_CUDA_CHECK(cudaMemcpyPeerAsync(b.raw_data(), dd.index, a.raw_data(), sd.index,
                                        b.numel() * dtype_size(b.dtype()), ds));
    EVIT_CUDA_CHECK(cudaStreamSynchronize(ds));
    if (!b.is_same(dst)) copy_on_device(dst, b);
    return;
  }
  const size_t bytes = dst.numel() * dtype_size(dst.dtype());
  if (dd.is_cuda()) {  // host -> device: convert/broadcast on the host, one transfer
    Tensor h = dense_copy(src, dst.sizes(), dst.dtype(), kCPU);
    Tensor d = dst.is_contiguous() ? dst : empty(dst.sizes(), {dst.dtype(), dd});
    DeviceState& st = state(dd.index);
    DeviceGuard g(dd.index);
    EVIT_CUDA_CHECK(cudaMemcpyAsync(d.raw_data(), h.raw_data(), bytes, cudaMemcpyHostToDevice, st.stream));
    if (is_pinned(h.raw_data())) {
      // Asynchronous for real: keep the host buffer until the copy has run.
      PendingCopy p{nullptr, h.impl().storage};
      EVIT_CUDA_CHECK(cudaEventCreateWithFlags(&p.done, cudaEventDisableTiming));
      EVIT_CUDA_CHECK(cudaEventRecord(p.done, st.stream));
      {
        std::lock_guard<std::mutex> lock(g_mu);
        st.pending.push_back(std::move(p));
      }
      reap_pending(st, false);
    }
    if (!d.is_same(dst)) copy_on_device(dst, d);
    return;
  }
  // device -> host: convert/broadcast on the device, one transfer, wait for it.
  Tensor d = dense_copy(src, dst.sizes(), dst.dtype(), sd);
  Tensor h = dst.is_contiguous() ? dst : empty(dst.sizes(), {dst.dtype(), kCPU});
  DeviceGuard g(sd.index);
  cudaStream_t s = stream(sd.index);
  EVIT_CUDA_CHECK(cudaMemcpyAsync(h.raw_data(), d.raw_data(), bytes, cudaMemcpyDeviceToHost, s));
  EVIT_CUDA_CHECK(cudaStreamSynchronize(s));
  if (!h.is_same(dst)) copy_elements(dst, h);
}

template <class T>
struct FillOp {
  T value;
  __device__ T operator()() const { return value; }
};

void fill_cuda(const Tensor& dst, double value) {
  if (dst.numel() == 0) return;
  DeviceGuard g(dst);
  if (value == 0.0 && dst.is_contiguous()) {
    EVIT_CUDA_CHECK(cudaMemsetAsync(dst.raw_data(), 0, dst.numel() * dtype_size(dst.dtype()),
                                    stream_of(dst)));
    return;
  }
  dispatch_all(dst.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    cuda_map<T>(dst, FillOp<T>{static_cast<T>(value)});
  });
}

// Page-locked host blocks are cached by power-of-two size class: cudaHostAlloc and cudaFreeHost
// are slow and synchronise the device, which would stall the pipeline once per batch. A block
// returns to the cache when its tensor dies; a copy still reading it holds the tensor (see
// PendingCopy), so a cached block is never reused under an in-flight copy.
class PinnedCache {
 public:
  std::shared_ptr<void> take(size_t bytes) {
    size_t cls = 4096;
    while (cls < bytes) cls <<= 1;
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& list = free_[cls];
      if (!list.empty()) p = list.back(), list.pop_back();
    }
    if (!p) EVIT_CUDA_CHECK(cudaHostAlloc(&p, cls, cudaHostAllocDefault));
    return std::shared_ptr<void>(p, [this, cls](void* q) {
      std::lock_guard<std::mutex> lock(mu_);
      free_[cls].push_back(q);
    });
  }

 private:
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
};

Tensor pin_memory_cuda(const Tensor& t) {
  static auto* cache = new PinnedCache();  // never destroyed: blocks may die after main()
  const size_t bytes = t.numel() * dtype_size(t.dtype());
  std::shared_ptr<void> owner = cache->take(bytes);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(owner.get(), bytes, kCPU, owner);
  impl->sizes = t.sizes();
  impl->strides = contiguous_strides(t.sizes());
  impl->dtype = t.dtype();
  Tensor out(impl);
  copy_elements(out, t);
  return out;
}

void synchronize_impl(int device) {
  const int n = count_devices();
  for (int d = 0; d < n; ++d) {
    if (device >= 0 && d != device) continue;
    DeviceState& st = state(d);
    DeviceGuard g(d);
    EVIT_CUDA_CHECK(cudaStreamSynchronize(st.stream));
    reap_pending(st, true);
  }
}

}  // namespace

void check_launch(const char* kernel, const char* file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda_error(e, kernel, file, line);
  if (sync_after_each_op()) {
    e = cudaDeviceSynchronize();
    if (e != cudaSuccess) throw_cuda_error(e, kernel, file, line);
  }
}

cudaStream_t stream(int device) { return state(device).stream; }

DeviceGuard::DeviceGuard(int device) {
  EVIT_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) EVIT_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
}

const cudaDeviceProp& properties(int device) {
  static std::vector<std::unique_ptr<cudaDeviceProp>> props(count_devices());
  EVIT_CHECK(device >= 0 && device < static_cast<int>(props.size()), "no CUDA device ", device);
  std::lock_guard<std::mutex> lock(g_mu);
  if (!props[device]) {
    props[device] = std::make_unique<cudaDeviceProp>();
    EVIT_CUDA_CHECK(cudaGetDeviceProperties(props[device].get(), device));
  }
  return *props[device];
}

void check_same_cuda_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    EVIT_CHECK(t->device().is_cuda(), op, ": expected CUDA tensors, got ", t->desc());
    if (!first) first = t;
    EVIT_CHECK(t->device() == first->device(), op, ": tensors on different devices (",
               first->desc(), " and ", t->desc(), ")");
  }
}

EVIT_REGISTER_CUDA_KERNEL(cuda_device_count_impl, count_devices);
EVIT_REGISTER_CUDA_KERNEL(cuda_synchronize_impl, synchronize_impl);
EVIT_REGISTER_CUDA_KERNEL(cuda_memory_stats_impl, [](int d) { return state(d).allocator->memory_stats(); });
EVIT_REGISTER_CUDA_KERNEL(cuda_reset_peak_impl, [](int d) { state(d).allocator->reset_peak_stats(); });
EVIT_REGISTER_CUDA_KERNEL(cuda_empty_cache_impl, [](int d) {
  synchronize_impl(d);
  state(d).allocator->empty_cache();
});
EVIT_REGISTER_CUDA_KERNEL(cuda_pin_memory_impl, pin_memory_cuda);
EVIT_REGISTER_CUDA_KERNEL(cuda_copy_elements, copy_elements_cuda);
EVIT_REGISTER_CUDA_KERNEL(cuda_fill, fill_cuda);

namespace {
[[maybe_unused]] const bool g_allocator_registered =
    (register_allocator(DeviceType::cuda, cuda_allocate), true);
}

}  // namespace evit::cuda
