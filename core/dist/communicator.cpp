#include "core/dist/communicator.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/copy.h"
#include "core/error.h"

namespace evit::dist {
namespace {
void check_contiguous(const char* what, const Tensor& t) {
  EVIT_CHECK(t.is_contiguous(), what, ": tensors must be contiguous, got ", t.desc());
}

struct CompletedExchange final : PendingExchange {
  bool test() override { return true; }
  void wait() override {}
};
}  // namespace

std::unique_ptr<PendingExchange> Communicator::start_exchange(int peer, const void* send, void* recv, size_t bytes) {
  exchange(peer, send, recv, bytes);
  return std::make_unique<CompletedExchange>();
}

std::unique_ptr<PendingExchange> Communicator::start_exchange_tensor(int peer, const Tensor& send, const Tensor& recv) {
  check_contiguous("exchange", send);
  check_contiguous("exchange", recv);
  EVIT_CHECK(send.sizes() == recv.sizes() && send.dtype() == recv.dtype() && send.device() == recv.device(),
             "exchange: sends ", send.desc(), " but receives into ", recv.desc());
  EVIT_CHECK(peer >= 0 && peer < size(), "exchange: rank ", peer, " is outside the job's ", size(), " ranks");
  if (send.device().is_cpu()) return start_exchange(peer, send.raw_data(), recv.raw_data(), send.nbytes());
  return start_exchange_device(peer, send, recv);
}

void Communicator::exchange_tensor(int peer, const Tensor& send, const Tensor& recv) {
  start_exchange_tensor(peer, send, recv)->wait();
}

void Communicator::broadcast_tensor(const Tensor& t, int root) {
  check_contiguous("broadcast", t);
  if (t.device().is_cpu()) return broadcast(t.raw_data(), t.nbytes(), root);
  broadcast_device(t, root);
}

void Communicator::library_allreduce_tensor(const Tensor& values) {
  check_contiguous("all-reduce", values);
  EVIT_CHECK(values.dtype() == DType::f32, "all-reduce: f32 values expected, got ", values.desc());
  if (values.device().is_cpu())
    return library_allreduce_sum(values.data_ptr<float>(), static_cast<size_t>(values.numel()));
  library_allreduce_device(values);
}

// MPI reaches host memory everywhere: by default CUDA tensors go through host copies.
std::unique_ptr<PendingExchange> Communicator::start_exchange_device(int peer, const Tensor& send, const Tensor& recv) {
  const Tensor out = send.to(kCPU);
  const Tensor in = empty(recv.sizes(), recv.dtype());
  exchange_tensor(peer, out, in);
  copy_elements(recv, in);
  return std::make_unique<CompletedExchange>();
}

void Communicator::broadcast_device(const Tensor& t, int root) {
  const Tensor host = t.to(kCPU);
  broadcast_tensor(host, root);
  copy_elements(t, host);
}

void Communicator::library_allreduce_device(const Tensor& values) {
  const Tensor host = values.to(kCPU);
  library_allreduce_tensor(host);
  copy_elements(values, host);
}

double wait_limit_seconds() {
  const char* v = std::getenv("EVIT_DIST_TIMEOUT");
  if (!v || !*v) return 1800;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  EVIT_CHECK(end && *end == 0 && s > 0, "EVIT_DIST_TIMEOUT: expected a positive number of seconds, got '", v, "'");
  return s;
}

void poll_until(const std::function<bool()>& finished) {
  const auto spin_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  while (!finished())
    if (std::chrono::steady_clock::now() >= spin_until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

bool past_wait_limit(std::chrono::steady_clock::time_point start) {
  static const double limit_s = wait_limit_seconds();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > limit_s;
}

void throw_past_wait_limit(const std::string& who, const std::string& what) {
  EVIT_THROW(who, ": ", what, " has waited ", wait_limit_seconds(),
             " s (EVIT_DIST_TIMEOUT) for another rank, which may have stopped or died");
}

void SingleProcess::exchange(int peer, const void* send, void* recv, size_t bytes) {
  EVIT_CHECK(peer == 0, "exchange: rank ", peer, " does not exist in a single-process run");
  if (send != recv && bytes > 0) std::memmove(recv, send, bytes);
}

void SingleProcess::broadcast(void*, size_t, int root) {
  EVIT_CHECK(root == 0, "broadcast: root rank ", root, " does not exist in a single-process run");
}

void SingleProcess::abort(int code) { std::_Exit(code); }

bool launched_by_mpi_launcher() {
  // Open MPI's mpirun, MPICH's Hydra and PMIx launchers (srun --mpi=pmix) each export these to the
  // processes they start.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (const char* v = std::getenv(name); v && *v) return true;
  return false;
}

namespace {
std::mutex world_mutex;
std::shared_ptr<Communicator>& world_slot() {
  static std::shared_ptr<Communicator> comm;
  return comm;
}
}  // namespace

Communicator& world() {
  std::lock_guard<std::mutex> lock(world_mutex);
  auto& comm = world_slot();
  if (!comm) {
    if (launched_by_mpi_launcher()) {
      EVIT_CHECK(mpi_available(),
                 "this process was started by an MPI launcher (mpirun) but evit was built without MPI: install "
                 "libopenmpi-dev and rebuild (CMake option EVIT_DIST), or run evit without mpirun");
      comm = make_mpi_world();
    } else {
      comm = std::make_shared<SingleProcess>();
    }
  }
  return *comm;
}

Communicator* world_if_started() {
  std::lock_guard<std::mutex> lock(world_mutex);
  return world_slot().get();
}

std::shared_ptr<Communicator> set_world(std::shared_ptr<Communicator> comm) {
  std::lock_guard<std::mutex> lock(world_mutex);
  std::swap(world_slot(), comm);
  return comm;
}

#ifndef EVIT_WITH_NCCL
bool nccl_available() { return false; }
std::shared_ptr<Communicator> make_nccl_communicator(Communicator&, Device) {
  EVIT_THROW("evit was built without NCCL (a CUDA build finds it next to the CUDA toolkit, with MPI to start it)");
}
#endif

#ifndef EVIT_WITH_MPI
bool mpi_available() { return false; }
std::shared_ptr<Communicator> make_mpi_world() {
  EVIT_THROW("evit was built without MPI (CMake option EVIT_DIST found no MPI library)");
}
#endif

}  // namespace evit::dist
