// The cross-rank half of tree_allreduce_sum (tree_reduce.h) for pieces of a tensor that become
// final one after another: gradient buckets, while backward is still computing the gradients of
// the layers below.
//
//   dist::TreeAllreduceInFlight tree(comm);
//   tree.push(bucket);   // as soon as the bucket's values are final; returns at once
//   tree.poll();         // now and then, between pieces of other work
//   tree.wait();         // every pushed bucket now holds its sum over all ranks
//
// Each piece crosses the recursive-doubling levels through Communicator::start_exchange, so the
// transfer moves on while the caller computes (with MPI, during the poll() calls). Pieces go one
// at a time, in the order they were pushed, so every rank sends the same messages in the same
// order, and each element sees the additions of tree_allreduce_sum: the same bits.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>

#include "core/dist/communicator.h"
#include "core/tensor.h"

namespace evit::dist {

class TreeAllreduceInFlight {
 public:
  // comm.size() must be a power of two.
  explicit TreeAllreduceInFlight(Communicator& comm);
  ~TreeAllreduceInFlight();

  // Queues a contiguous 1-D CPU tensor (often a view, which must stay alive until wait()) to be
  // summed over the ranks in place. Every rank pushes the same sizes in the same order.
  void push(const Tensor& piece);
  // Moves the pieces on as far as the messages that have arrived allow, without waiting.
  void poll();
  // Completes every queued piece.
  void wait();
  // Pieces pushed so far and not yet summed.
  int64_t queued() const { return static_cast<int64_t>(queue_.size()); }

 private:
  void advance(bool block);

  Communicator& comm_;
  std::deque<Tensor> queue_;  // front: the piece in flight
  int distance_ = 1;          // the front's level: its partner is rank xor distance_
  std::unique_ptr<PendingExchange> in_flight_;
  Tensor received_;           // the partner's values of the front piece
};

}  // namespace evit::dist
