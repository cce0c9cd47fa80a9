// The Communicator over MPI (built when CMake's EVIT_DIST finds an MPI library).
// The C API only: Open MPI's and MPICH's mpi.h otherwise pull in the removed C++ bindings, which
// live in a library (libmpi_cxx) evit does not link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <string>

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
    EVIT_CHECK(peer >= 0 && peer < size_, "exchange: rank ", peer, " is outside the job's ", size_, " ranks");
    auto* out = static_cast<const char*>(send);
    auto* in = static_cast<char*>(recv);
    for (size_t done = 0; done < bytes; done += kPiece) {
      const int n = static_cast<int>(std::min(kPiece, bytes - done));
      check(MPI_Sendrecv(out + done, n, MPI_BYTE, peer, 0, in + done, n, MPI_BYTE, peer, 0, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE),
            "exchange");
    }
  }

  void broadcast(void* data, size_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (size_t done = 0; done < bytes; done += kPiece)
      check(MPI_Bcast(p + done, static_cast<int>(std::min(kPiece, bytes - done)), MPI_BYTE, root, MPI_COMM_WORLD),
            "broadcast");
  }

  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "barrier"); }

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
