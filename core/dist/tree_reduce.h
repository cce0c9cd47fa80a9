// Sums in one fixed pairwise tree, whatever the number of ranks.
//
// A data-parallel step has K leaves (its micro-batches, K a power of two) in a fixed global order.
// Their sum is always the balanced binary tree ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + ...).
// Rank r of W (W a power of two dividing K) holds the contiguous leaves [r·K/W, (r+1)·K/W): it
// sums them with a PairwiseSum, which builds exactly that block's subtree, and
// tree_allreduce_sum() then joins the ranks' partial sums by recursive doubling: at level d rank r
// adds the partial sum of rank r xor 2^d. That completes the same tree, so every rank ends with the
// same bits as one process summing all K leaves, and changing W changes no bit of the result.
// (IEEE addition is commutative bit for bit: the two partners of a level get the same sum.)
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "core/dist/communicator.h"
#include "core/tensor.h"

namespace evit::dist {

// Leaves added one at a time, in order, summed as a balanced binary tree: equal-sized subtrees
// merge as soon as both are complete (a binary counter), so at most log2(count) + 1 partial sums
// are held at once. Leaves are contiguous tensors of one shape, dtype and device (a CUDA tree is
// summed on its GPU, with the same bits as on the CPU).
class PairwiseSum {
 public:
  // Adds the next leaf (taken over: the sums accumulate into the earlier leaves).
  void add(Tensor leaf);
  // add() in two halves, for a leaf whose parts become final one after another (gradient buckets
  // during backward). add_range() makes the additions add(leaf) would make, on the flat elements
  // [begin, end) only, and returns the partial sum that now holds those elements of the subtree
  // the leaf completes (the leaf itself when it completes none). Once ranges covering the whole
  // leaf are added, add_added(leaf) records it. The bits are those of add().
  Tensor add_range(const Tensor& leaf, int64_t begin, int64_t end);
  void add_added(Tensor leaf);
  int64_t count() const { return count_; }
  // The sum of all leaves; their number must be a power of two (a complete tree).
  Tensor take();

 private:
  std::vector<std::pair<int, Tensor>> stack_;  // (tree height, partial sum)
  int64_t count_ = 0;
};

// Elementwise `a += b` (the one addition the trees use), for f32, f64 and i64 tensors on one device.
void add_into(const Tensor& a, const Tensor& b);

// Elements [begin, end) of a contiguous tensor, as a flat view.
Tensor flat_range(const Tensor& t, int64_t begin, int64_t end);

// The cross-rank half of tree_allreduce_sum (tree_reduce.h) for pieces of a tensor that become
// final one after another: gradient buckets, while backward is still computing the gradients of
// the layers below.
//
//   dist::TreeAllreduceInFlight tree(comm);
//   tree.push(bucket);   // as soon as the bucket's values are final; returns at once
//   tree.poll();         // now and then, between pieces of other work
//   tree.wait();         // every pushed bucket now holds its sum over all ranks
//
// tree_allreduce_sum on a tensor is this with all its buckets pushed at once.
//
// Each piece crosses the recursive-doubling levels through Communicator::start_exchange, so the
// transfer moves on while the caller computes (with MPI, during the poll() calls). Pieces go one
// at a time, in the order they were pushed, so every rank sends the same messages in the same
// order, and each element sees the additions of tree_allreduce_sum: the same bits.
class TreeAllreduceInFlight {
 public:
  // comm.size() must be a power of two.
  explicit TreeAllreduceInFlight(Communicator& comm);
  ~TreeAllreduceInFlight();

  // Queues a contiguous 1-D tensor (often a view, which must stay alive until wait()) to be
  // summed over the ranks in place. Every rank pushes the same sizes in the same order. CUDA
  // pieces overlap the caller's kernels only where the communicator's device exchanges do
  // (NCCL); through host memory they complete when pushed or polled.
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

// Sums `values` across the ranks of `comm` by recursive doubling; every rank gets the result.
// comm.size() must be a power of two. Large buffers go in buckets of `bucket_elements`, which
// bounds the receive buffer and changes no bit. For float and double the tree fixes the rounding;
// int64_t sums (metric counts) are exact in any order.
template <class T>
void tree_allreduce_sum(Communicator& comm, std::span<T> values, int64_t bucket_elements = int64_t{1} << 22);
extern template void tree_allreduce_sum<float>(Communicator&, std::span<float>, int64_t);
extern template void tree_allreduce_sum<double>(Communicator&, std::span<double>, int64_t);
extern template void tree_allreduce_sum<int64_t>(Communicator&, std::span<int64_t>, int64_t);
// The same on a contiguous tensor of any device: its buckets go through a TreeAllreduceInFlight
// (above), travel through comm.start_exchange_tensor (GPU to GPU with NCCL) and are
// added where they live.
void tree_allreduce_sum(Communicator& comm, const Tensor& values, int64_t bucket_elements = int64_t{1} << 22);

// Copies rank `root`'s values of `tensors` (contiguous, any device) to every rank, in place.
void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root = 0);

bool is_power_of_two(int64_t n);

}  // namespace evit::dist
