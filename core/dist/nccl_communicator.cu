// The job's communicator with CUDA tensors moving from GPU to GPU through NCCL (built when CMake
// finds NCCL in a CUDA build with MPI). MPI still starts the job, carries host memory and ends it
// on errors; NCCL only moves device buffers.
//
// NCCL works on a stream of its own on the rank's GPU. Each transfer first waits there for an
// event recorded on evit's compute stream as it starts, so it carries the values of every kernel
// queued before it. An exchange then runs beside the kernels queued after it (a gradient bucket
// crosses the ranks while backward computes the layers below) and completes with an event the
// caller polls. Broadcasts and all-reduces are waited for before they return.
//
// The summation tree is unchanged: tree_allreduce_sum() exchanges buckets through
// start_exchange_device() and adds them itself, on the GPU, in the tree's order. NCCL's own
// reductions (whose order depends on the ranks and the topology) are used only for
// train.allreduce = "library".
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>

#include "core/cuda/runtime.cuh"
#include "core/dist/communicator.h"
#include "core/error.h"

namespace evit::dist {
namespace {

using Clock = std::chrono::steady_clock;

void check(ncclResult_t rc, const char* call) {
  if (rc == ncclSuccess || rc == ncclInProgress) return;
  EVIT_THROW("NCCL ", call, " failed: ", ncclGetErrorString(rc), " (", ncclGetLastError(nullptr), ")");
}

std::string version_string() {
  int v = 0;
  ncclGetVersion(&v);
  // NCCL_VERSION(X, Y, Z) = X * 10000 + Y * 100 + Z since 2.9.
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

// A CUDA event without timing, destroyed with its owner.
class Event {
 public:
  Event() { EVIT_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  ~Event() {
    if (event_) cudaEventDestroy(event_);
  }
  Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Event& operator=(Event&&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& host, Device device) : host_(host), device_(device) {
    EVIT_CHECK(device.is_cuda(), "NCCL transport: a CUDA device is needed, got ", device.str());
    cuda::DeviceGuard guard(device.index);
    EVIT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    ncclUniqueId id{};
    if (host.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host.broadcast(&id, sizeof id, 0);
    check(ncclCommInitRank(&comm_, host.size(), id, host.rank()), "ncclCommInitRank");
    version_ = version_string();
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);  // after the transfers still queued
    if (stream_) cudaStreamDestroy(stream_);
  }

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  int local_rank() const override { return host_.local_rank(); }
  void exchange(int peer, const void* send, void* recv, size_t bytes) override {
    host_.exchange(peer, send, recv, bytes);
  }
  void broadcast(void* data, size_t bytes, int root) override { host_.broadcast(data, bytes, root); }
  void barrier() override { host_.barrier(); }
  void library_allreduce_sum(float* values, size_t count) override { host_.library_allreduce_sum(values, count); }
  [[noreturn]] void abort(int code) override {
    host_.abort(code);
    std::_Exit(code);  // host_.abort does not return; this tells the compiler so
  }
  std::string describe() const override { return host_.describe(); }
  std::string gpu_transport() const override { return "NCCL " + version_; }
  bool device_exchanges_overlap_compute() const override { return true; }

  // One look at a transfer's `done` event: true once it has completed. Like the MPI communicator
  // with its requests, a transfer past the wait limit since `start` (past_wait_limit) or an error
  // NCCL reports on the way (a peer's connection lost) throws, naming `what`, after aborting the
  // communicator: its peers are gone, and the abort ends the transfers still queued.
  bool finished(const Event& done, const std::string& what, Clock::time_point start) {
    const cudaError_t state = cudaEventQuery(done.get());
    if (state == cudaSuccess) return true;
    if (state != cudaErrorNotReady) EVIT_CUDA_CHECK(state);
    cudaGetLastError();  // "not ready" is no error: keep later launch checks clean
    ncclResult_t async = ncclSuccess;
    if (comm_) check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
    const bool failed = async != ncclSuccess && async != ncclInProgress;
    if (!failed && !past_wait_limit(start)) return false;
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    check(async, what.c_str());
    throw_past_wait_limit("NCCL rank " + std::to_string(rank()), what);
  }

  // Polls finished() until the transfer started at `start` is done.
  void wait(const Event& done, const std::string& what, Clock::time_point start = Clock::now()) {
    poll_until([&] { return finished(done, what, start); });
  }

 protected:
  std::unique_ptr<PendingExchange> start_exchange_device(int peer, const Tensor& send, const Tensor& recv) override;

  void broadcast_device(const Tensor& t, int root) override {
    check_device(t);
    wait(enqueue([&](ncclComm_t comm) {
           check(ncclBroadcast(t.raw_data(), t.raw_data(), t.nbytes(), ncclUint8, root, comm, stream_),
                 "ncclBroadcast");
         }),
         "a broadcast from rank " + std::to_string(root));
  }

  void library_allreduce_device(const Tensor& values) override {
    check_device(values);
    wait(enqueue([&](ncclComm_t comm) {
           check(ncclAllReduce(values.raw_data(), values.raw_data(), static_cast<size_t>(values.numel()),
                               ncclFloat32, ncclSum, comm, stream_),
                 "ncclAllReduce");
         }),
         "an all-reduce");
  }

 private:
  void check_device(const Tensor& t) const {
    EVIT_CHECK(t.device() == device_, "NCCL transport of ", describe(), " runs on ", device_.str(), ", got ",
               t.desc());
  }

  // Queues `transfer` (NCCL calls on stream_, given the communicator) behind everything queued so
  // far on the compute stream, and returns the event that completes with it.
  template <class Transfer>
  Event enqueue(Transfer&& transfer) {
    EVIT_CHECK(comm_, "NCCL rank ", rank(), ": the communicator was aborted after an earlier error");
    cuda::DeviceGuard guard(device_.index);
    Event inputs_ready, done;
    EVIT_CUDA_CHECK(cudaEventRecord(inputs_ready.get(), cuda::stream(device_.index)));
    EVIT_CUDA_CHECK(cudaStreamWaitEvent(stream_, inputs_ready.get(), 0));
    transfer(comm_);
    EVIT_CUDA_CHECK(cudaEventRecord(done.get(), stream_));
    return done;
  }

  Communicator& host_;
  Device device_;
  cudaStream_t stream_ = nullptr;  // NCCL's, beside the compute stream
  ncclComm_t comm_ = nullptr;
  std::string version_;
};

// An exchange queued on NCCL's stream: done when its event is.
class NcclExchange final : public PendingExchange {
 public:
  NcclExchange(NcclCommunicator& comm, Event done, std::string what)
      : comm_(comm), done_(std::move(done)), what_(std::move(what)), start_(Clock::now()) {}
  bool test() override { return finished_ = finished_ || comm_.finished(done_, what_, start_); }
  void wait() override {
    if (!finished_) comm_.wait(done_, what_, start_);
    finished_ = true;
  }
  // The caller frees the buffers after this, and the allocator hands them to the compute stream
  // at once: a transfer still reading or writing them must end first (on an error it is aborted).
  ~NcclExchange() override {
    try {
      wait();
    } catch (...) {
    }
  }

 private:
  NcclCommunicator& comm_;
  Event done_;
  std::string what_;
  Clock::time_point start_;
  bool finished_ = false;
};

std::unique_ptr<PendingExchange> NcclCommunicator::start_exchange_device(int peer, const Tensor& send,
                                                                         const Tensor& recv) {
  check_device(send);
  Event done = enqueue([&](ncclComm_t comm) {
    // One group: both ranks post their send and receive together, so neither waits on the other.
    check(ncclGroupStart(), "ncclGroupStart");
    check(ncclSend(send.raw_data(), send.nbytes(), ncclUint8, peer, comm, stream_), "ncclSend");
    check(ncclRecv(recv.raw_data(), recv.nbytes(), ncclUint8, peer, comm, stream_), "ncclRecv");
    check(ncclGroupEnd(), "ncclGroupEnd");
  });
  return std::make_unique<NcclExchange>(*this, std::move(done), "an exchange with rank " + std::to_string(peer));
}

}  // namespace

bool nccl_available() { return true; }

std::shared_ptr<Communicator> make_nccl_communicator(Communicator& host, Device device) {
  return std::make_shared<NcclCommunicator>(host, device);
}

}  // namespace evit::dist
