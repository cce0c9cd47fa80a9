// Communicator: the ranks of a data-parallel job and the few messages they exchange.
//
// evit never moves training data between processes itself: an MPI library (Open MPI, MPICH)
// carries the bytes; this interface is the small part of it the trainer needs. Every rank
// calls the same operations in the same order. The reductions built on it (core/dist/tree_reduce.h)
// fix the order of every floating-point sum, so results do not depend on the number of ranks.
//
//   dist::Communicator& comm = dist::world();   // MPI's ranks under mpirun, else one process
//   if (comm.rank() == 0) write_checkpoint(...);
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace evit::dist {

// An exchange under way (Communicator::start_exchange): its buffers must stay alive until it is done.
class PendingExchange {
 public:
  virtual ~PendingExchange() = default;
  // Lets the transfer progress without waiting; true once both directions are complete.
  virtual bool test() = 0;
  // Waits until both directions are complete.
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // This rank's index among the ranks on its machine (picks its GPU: cuda:<local rank>).
  virtual int local_rank() const = 0;
  // Sends `bytes` bytes to `peer` and receives as many from it; both ranks call it with each other
  // as the peer, and neither waits on the other's receive to send (no deadlock).
  virtual void exchange(int peer, const void* send, void* recv, size_t bytes) = 0;
  // The same exchange, started and left to progress while the caller computes: the data moves
  // during later test() and wait() calls (MPI moves messages only inside its calls). Exchanges
  // with one peer complete in the order both ranks started them. The default completes the
  // exchange before it returns (no overlap, same bits); MPI overrides it.
  virtual std::unique_ptr<PendingExchange> start_exchange(int peer, const void* send, void* recv, size_t bytes);
  // Rank `root`'s `bytes` bytes at `data` copied to every rank's `data`.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Sums `count` floats over all ranks, in place, with the library's own collective (MPI's ring
  // or tree algorithms): fast, but its order of additions depends on the number of ranks, so the
  // bits do too. Data-parallel steps use it only when asked (train.allreduce = "library"); the
  // fixed tree of tree_reduce.h is the default.
  virtual void library_allreduce_sum(float* values, size_t count) = 0;

  // The same operations on tensors: contiguous; `send` and `recv` of one shape, dtype and device;
  // f32 for the all-reduce. They check their arguments, run CPU tensors through the byte
  // operations above and hand CUDA tensors to the *_device operations below.
  void exchange_tensor(int peer, const Tensor& send, const Tensor& recv);
  // exchange_tensor() left to progress like start_exchange(). CUDA tensors go through
  // start_exchange_device(): the transfer starts after the kernels already queued on the compute
  // stream (those that produce `send`), and `recv` may be read once the exchange is done.
  std::unique_ptr<PendingExchange> start_exchange_tensor(int peer, const Tensor& send, const Tensor& recv);
  void broadcast_tensor(const Tensor& t, int root);
  void library_allreduce_tensor(const Tensor& values);
  // How CUDA tensors travel ("host memory", "NCCL 2.27.3"), for logs.
  virtual std::string gpu_transport() const { return "host memory"; }
  // Whether an exchange of CUDA tensors runs beside the compute stream once started (NCCL on a
  // stream of its own), so that starting it in the middle of backward costs the GPU nothing.
  // Through host memory it does not: the copy to the host waits for every kernel queued so far.
  virtual bool device_exchanges_overlap_compute() const { return false; }

 protected:
  // CUDA tensors, already checked. These defaults pass them through host memory and the byte
  // operations (the exchange is complete when it returns); a communicator with a GPU transport
  // (NCCL: make_nccl_communicator below) moves them from GPU to GPU instead. The bits that arrive
  // are the same either way.
  virtual std::unique_ptr<PendingExchange> start_exchange_device(int peer, const Tensor& send, const Tensor& recv);
  virtual void broadcast_device(const Tensor& t, int root);
  virtual void library_allreduce_device(const Tensor& values);

 public:
  // Ends every rank of the job with `code`: an error on one rank must not leave the others
  // waiting for a message that never comes.
  [[noreturn]] virtual void abort(int code) = 0;
  // "1 process", "MPI rank 1 of 4 (Open MPI v4.1.4)", ... for logs and errors.
  virtual std::string describe() const = 0;
};

// The one-rank communicator of a process not launched as part of a job: exchanges with itself
// are copies, broadcasts and barriers do nothing.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  void exchange(int peer, const void* send, void* recv, size_t bytes) override;
  void broadcast(void*, size_t, int root) override;
  void barrier() override {}
  void library_allreduce_sum(float*, size_t) override {}
  [[noreturn]] void abort(int code) override;
  std::string describe() const override { return "1 process"; }
};

// True when this process was started by an MPI launcher (mpirun, mpiexec, srun): its environment
// names a rank and a job size.
bool launched_by_mpi_launcher();

// Whether this build has MPI support (CMake's EVIT_DIST found an MPI library).
bool mpi_available();

// The job this process belongs to: on first use, MPI is initialised when the process was started
// by a launcher, and a single process otherwise (a plain run needs no MPI at all). Fails with a
// clear message when a launcher started it but this build has no MPI.
Communicator& world();

// world() if something has called it already, else null (error paths use it to stop a job
// without starting MPI).
Communicator* world_if_started();

// Replaces world() (tests run several in-process ranks on threads; see in_process_group.h).
// Returns the previous communicator.
std::shared_ptr<Communicator> set_world(std::shared_ptr<Communicator> comm);

// Creates the MPI communicator (only in builds with MPI; world() calls it).
std::shared_ptr<Communicator> make_mpi_world();

// Whether this build has NCCL (a CUDA build with MPI that found it next to the CUDA toolkit).
bool nccl_available();

// `host` (the job: MPI's ranks, or one process) with CUDA tensors moving from GPU to GPU through
// NCCL on `device`, this rank's GPU; everything else, CPU tensors included, still goes through
// `host`, which must outlive the result. Every rank calls it together (rank 0's NCCL id travels
// through `host`), each with a GPU of its own: NCCL refuses two ranks on one GPU.
std::shared_ptr<Communicator> make_nccl_communicator(Communicator& host, Device device);

// How long a rank waits for another before it stops the job: EVIT_DIST_TIMEOUT seconds (default
// 30 minutes, longer than any evaluation or checkpoint the others may be waiting on).
double wait_limit_seconds();

// The waits of the transports (MPI requests, NCCL events) share these. poll_until() calls
// `finished` until it returns true: without pause for the first 100 ms (the short waits inside a
// step), then once a millisecond, so a rank waiting on a slower one leaves the CPU to the others.
// A wait that is past_wait_limit() — a peer that stopped without dying, which the launcher cannot
// see — ends with throw_past_wait_limit(), which names `who` and `what`, instead of hanging the job.
void poll_until(const std::function<bool()>& finished);
bool past_wait_limit(std::chrono::steady_clock::time_point start);
[[noreturn]] void throw_past_wait_limit(const std::string& who, const std::string& what);

}  // namespace evit::dist
