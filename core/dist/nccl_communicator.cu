// The job's communicator with CUDA tensors moving from GPU to GPU through NCCL (built when CMake
// finds NCCL in a CUDA build with MPI). MPI still starts the job, carries host memory and ends it
// on errors; NCCL only moves device buffers, on evit's compute stream of the rank's GPU, so a
// transfer is ordered after the kernels that produced its data and before those that read it.
//
// The summation tree is unchanged: tree_allreduce_sum() exchanges buckets through exchange_device()
// and adds them itself, on the GPU, in the tree's order. NCCL's own reductions (whose order
// depends on the ranks and the topology) are used only for train.allreduce = "library".
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/cuda/runtime.cuh"
#include "core/dist/communicator.h"
#include "core/error.h"

namespace evit::dist {
namespace {

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

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& host, Device device) : host_(host), device_(device) {
    EVIT_CHECK(device.is_cuda(), "NCCL transport: a CUDA device is needed, got ", device.str());
    cuda::DeviceGuard guard(device.index);
    ncclUniqueId id{};
    if (host.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host.broadcast(&id, sizeof id, 0);
    check(ncclCommInitRank(&comm_, host.size(), id, host.rank()), "ncclCommInitRank");
    version_ = version_string();
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
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

 protected:
  void exchange_device(int peer, const Tensor& send, const Tensor& recv) override {
    cuda::DeviceGuard guard(device_.index);
    cudaStream_t stream = stream_for(send);
    // One group: both ranks post their send and receive together, so neither waits on the other.
    check(ncclGroupStart(), "ncclGroupStart");
    check(ncclSend(send.raw_data(), send.nbytes(), ncclUint8, peer, comm_, stream), "ncclSend");
    check(ncclRecv(recv.raw_data(), recv.nbytes(), ncclUint8, peer, comm_, stream), "ncclRecv");
    check(ncclGroupEnd(), "ncclGroupEnd");
    wait(stream, "an exchange with rank " + std::to_string(peer));
  }

  void broadcast_device(const Tensor& t, int root) override {
    cuda::DeviceGuard guard(device_.index);
    cudaStream_t stream = stream_for(t);
    check(ncclBroadcast(t.raw_data(), t.raw_data(), t.nbytes(), ncclUint8, root, comm_, stream), "ncclBroadcast");
    wait(stream, "a broadcast from rank " + std::to_string(root));
  }

  void library_allreduce_device(const Tensor& values) override {
    cuda::DeviceGuard guard(device_.index);
    cudaStream_t stream = stream_for(values);
    check(ncclAllReduce(values.raw_data(), values.raw_data(), static_cast<size_t>(values.numel()), ncclFloat32,
                        ncclSum, comm_, stream),
          "ncclAllReduce");
    wait(stream, "an all-reduce");
  }

 private:
  // The compute stream of this rank's GPU, where `t` must live.
  cudaStream_t stream_for(const Tensor& t) const {
    EVIT_CHECK(t.device() == device_, "NCCL transport of ", describe(), " runs on ", device_.str(), ", got ",
               t.desc());
    return cuda::stream(device_.index);
  }

  // Waits for the stream's NCCL work like the MPI communicator waits for its requests: polling,
  // so that a peer that stopped without dying (which the launcher cannot see) ends the job after
  // EVIT_DIST_TIMEOUT instead of hanging it, and an NCCL error on the way (a peer's connection
  // lost) is reported as such. Either way the communicator is aborted: its peers are gone.
  void wait(cudaStream_t stream, const std::string& what) {
    using Clock = std::chrono::steady_clock;
    static const double limit_s = wait_limit_seconds();
    const auto start = Clock::now();
    const auto spin_until = start + std::chrono::milliseconds(100);
    for (;;) {
      const cudaError_t state = cudaStreamQuery(stream);
      if (state == cudaSuccess) return;
      if (state != cudaErrorNotReady) EVIT_CUDA_CHECK(state);
      ncclResult_t async = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
      const bool failed = async != ncclSuccess && async != ncclInProgress;
      const bool too_long = std::chrono::duration<double>(Clock::now() - start).count() > limit_s;
      if (failed || too_long) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        check(async, what.c_str());
        EVIT_THROW("NCCL rank ", rank(), ": ", what, " has waited ", limit_s,
                   " s (EVIT_DIST_TIMEOUT) for another rank, which may have stopped or died");
      }
      if (Clock::now() < spin_until) continue;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  Communicator& host_;
  Device device_;
  ncclComm_t comm_ = nullptr;
  std::string version_;
};

}  // namespace

bool nccl_available() { return true; }

std::shared_ptr<Communicator> make_nccl_communicator(Communicator& host, Device device) {
  return std::make_shared<NcclCommunicator>(host, device);
}

}  // namespace evit::dist
