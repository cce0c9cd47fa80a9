#include "core/dist/communicator.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace evit::dist {

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

#ifndef EVIT_WITH_MPI
bool mpi_available() { return false; }
std::shared_ptr<Communicator> make_mpi_world() {
  EVIT_THROW("evit was built without MPI (CMake option EVIT_DIST found no MPI library)");
}
#endif

}  // namespace evit::dist
