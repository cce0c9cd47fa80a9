// The Communicator over MPI (built when CMake's EVIT_DIST finds an MPI library).
// The C API only: Open MPI's and MPICH's mpi.h otherwise pull in the removed C++ bindings, which
// live in a library (libmpi_cxx) evit does not link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/dist/communicator.h"
#include "core/error.h"

namespace evit::dist {
namespace {

// MPI counts are ints: larger messages go in pieces of 1 GiB.
constexpr size_t kPiece = size_t{1} << 30;

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  EVIT_THROW("MPI ", what, " failed: ", std::string(text, static_cast<size_t>(len)));
}

// Completes `n` requests, polling MPI (which makes the transfers progress) through poll_until(),
// and gives up past the wait limit (communicator.h).
void wait_all(int n, MPI_Request* requests, const std::string& what, int rank) {
  const auto start = std::chrono::steady_clock::now();
  poll_until([&] {
    int done = 0;
    check(MPI_Testall(n, requests, &done, MPI_STATUSES_IGNORE), what.c_str());
    if (!done && past_wait_limit(start)) throw_past_wait_limit("MPI rank " + std::to_string(rank), what);
    return done != 0;
  });
}

// Receives and sends posted with MPI_Irecv / MPI_Isend, completed by test() or wait().
struct MpiExchange final : PendingExchange {
  MpiExchange(int rank, int peer) : rank(rank), peer(peer) {}
  ~MpiExchange() override {
    if (done) return;
    // Only on an error path (the job is stopping): nothing may write into freed buffers later.
    for (size_t i = 0; i < requests.size(); ++i) {
      if (requests[i] == MPI_REQUEST_NULL) continue;
      if (i % 2 == 0) MPI_Cancel(&requests[i]);
      MPI_Request_free(&requests[i]);
    }
  }
  bool test() override {
    if (!done) {
      int complete = 0;
      check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &complete, MPI_STATUSES_IGNORE),
            "exchange");
      done = complete != 0;
    }
    return done;
  }
  void wait() override {
    if (done) return;
    wait_all(static_cast<int>(requests.size()), requests.data(), "an exchange with rank " + std::to_string(peer), rank);
    done = true;
  }
  int rank, peer;
  std::vector<MPI_Request> requests;
  bool done = false;
};

class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      // Only the training thread calls MPI; loader threads never do.
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "initialisation");
      owns_mpi_ = true;
    }
    // Errors come back as codes that check() turns into exceptions naming the call.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    // The ranks that share this machine's memory: their order gives each its local index.
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "node split");
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_free(&node);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    library_ = std::string(version, static_cast<size_t>(len));
    if (auto comma = library_.find(','); comma != std::string::npos) library_.resize(comma);
  }
  ~MpiWorld() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_mpi_ && !finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }

  void exchange(int peer, const void* send, void* recv, size_t bytes) override {
    start_exchange(peer, send, recv, bytes)->wait();
  }

  std::unique_ptr<PendingExchange> start_exchange(int peer, const void* send, void* recv, size_t bytes) override {
    EVIT_CHECK(peer >= 0 && peer < size_, "exchange: rank ", peer, " is outside the job's ", size_, " ranks");
    auto pending = std::make_unique<MpiExchange>(rank_, peer);
    auto* out = static_cast<const char*>(send);
    auto* in = static_cast<char*>(recv);
    // Every piece is posted at once; MPI matches them in order on both sides.
    for (size_t done = 0; done < bytes; done += kPiece) {
      const int n = static_cast<int>(std::min(kPiece, bytes - done));
      pending->requests.emplace_back();
      check(MPI_Irecv(in + done, n, MPI_BYTE, peer, 0, MPI_COMM_WORLD, &pending->requests.back()), "exchange");
      pending->requests.emplace_back();
      check(MPI_Isend(out + done, n, MPI_BYTE, peer, 0, MPI_COMM_WORLD, &pending->requests.back()), "exchange");
    }
    return pending;
  }

  void broadcast(void* data, size_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (size_t done = 0; done < bytes; done += kPiece) {
      MPI_Request request;
      check(MPI_Ibcast(p + done, static_cast<int>(std::min(kPiece, bytes - done)), MPI_BYTE, root, MPI_COMM_WORLD,
                       &request),
            "broadcast");
      wait_all(1, &request, "a broadcast from rank " + std::to_string(root), rank_);
    }
  }

  void library_allreduce_sum(float* values, size_t count) override {
    const size_t piece = kPiece / sizeof(float);
    for (size_t done = 0; done < count; done += piece) {
      MPI_Request request;
      check(MPI_Iallreduce(MPI_IN_PLACE, values + done, static_cast<int>(std::min(piece, count - done)), MPI_FLOAT,
                           MPI_SUM, MPI_COMM_WORLD, &request),
            "all-reduce");
      wait_all(1, &request, "an all-reduce", rank_);
    }
  }

  void barrier() override {
    MPI_Request request;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "barrier");
    wait_all(1, &request, "a barrier", rank_);
  }

  void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

  std::string describe() const override {
    return "MPI rank " + std::to_string(rank_) + " of " + std::to_string(size_) + " (" + library_ + ")";
  }

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  bool owns_mpi_ = false;
  std::string library_;
};

}  // namespace

bool mpi_available() { return true; }

std::shared_ptr<Communicator> make_mpi_world() { return std::make_shared<MpiWorld>(); }

}  // namespace evit::dist
