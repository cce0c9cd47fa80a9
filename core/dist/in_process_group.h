// An in-process job: N communicators that ranks running on N threads of one process use to talk
// to each other through shared memory. Tests drive the reductions with it, with no MPI installed.
// Its exchanges behave as MPI's nonblocking ones: start_exchange() returns at once, and the
// exchange completes in a later test() or wait() once the peer has started its side, the peer
// reading the sender's buffer until then.
//
//   auto ranks = dist::in_process_group(4);
//   std::vector<std::thread> threads;
//   for (int r = 0; r < 4; ++r) threads.emplace_back([&, r] { tree_allreduce_sum(*ranks[r], data[r]); });
#pragma once
#include <memory>
#include <vector>

#include "core/dist/communicator.h"

namespace evit::dist {

std::vector<std::shared_ptr<Communicator>> in_process_group(int size);

}  // namespace evit::dist
