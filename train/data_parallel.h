// Data-parallel training steps whose result does not depend on the number of ranks.
//
// The global batch B (data.batch_size) is the contract. Each step splits it into K fixed
// micro-batches of B/K samples (data.micro_batches; K a power of two, divisible by the world size
// W). Rank r loads and runs the contiguous micro-batches [r·K/W, (r+1)·K/W) of the one global
// sample order, so which sample lands in which micro-batch never depends on W. For every
// micro-batch the rank runs forward and backward and takes the gradients, the BatchNorm batch
// statistics and the loss as one leaf; the K leaves are summed in one fixed pairwise tree, inside
// the rank and across ranks (core/dist/tree_reduce.h), and scaled by 1/K (exact: K is a power of
// two). So every rank holds the same bits as one process running all K micro-batches, and
// optimizer, EMA, clipping and loss scaling — fed identical inputs — stay identical everywhere.
// The sums move in buckets of gradients, taken as backward finishes each parameter; the last
// micro-batch's buckets start across the ranks while its backward still runs (CPU models, and
// CUDA models on NCCL; core/dist/tree_reduce.h), with the same bits.
//
//   DataParallelStep dp(model, comm, K);
//   dp.begin_step();
//   for (int64_t j = 0; j < dp.local_micro_batches(); ++j) {
//     ... forward micro-batch dp.first_micro_batch() + j, backward ...
//     dp.end_micro_batch(loss);
//   }
//   double loss = dp.finish_step();   // gradients now in .grad, running statistics updated
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dist/communicator.h"
#include "core/dist/tree_reduce.h"
#include "nn/module.h"
#include "nn/norm.h"

namespace evit::train {

struct DataParallelOptions {
  // Join the ranks' partial sums with the communicator's own all-reduce (faster, but the bits then
  // depend on the number of ranks); the leaves inside a rank still form the fixed pairwise tree.
  bool library_allreduce = false;
  // Send gradient buckets to the other ranks while backward still runs, in reverse parameter
  // order (several ranks, fixed tree; CPU models, and CUDA models when the communicator's device
  // exchanges run beside the compute stream: NCCL). The bits are the same either way.
  bool overlap_backward = true;
  // Gradient values per bucket (at least; buckets end at a parameter's end): 16 MiB of f32. Each
  // bucket's exchange costs a round trip between ranks, which over a network outweighs the gain
  // of smaller buckets (less left to send after backward); docs/distributed.md has the measurements.
  int64_t bucket_elements = int64_t{1} << 22;
};

// The f32 values in `mib` MiB (config train.bucket_mb), at least one.
int64_t bucket_elements(double mib);

class DataParallelStep {
 public:
  // Checks K against the world size; `model` must outlive this object.
  DataParallelStep(nn::Module& model, dist::Communicator& comm, int64_t micro_batches,
                   DataParallelOptions options = {});
  ~DataParallelStep();
  DataParallelStep(const DataParallelStep&) = delete;
  DataParallelStep& operator=(const DataParallelStep&) = delete;

  int64_t micro_batches() const { return k_; }
  int64_t local_micro_batches() const { return k_ / comm_.size(); }
  int64_t first_micro_batch() const { return comm_.rank() * local_micro_batches(); }
  dist::Communicator& communicator() const { return comm_; }

  // Before the step's first micro-batch: BatchNorm layers start collecting batch statistics
  // instead of updating their running ones.
  void begin_step();
  // After a micro-batch's backward: takes its gradients (leaving .grad empty for the next one),
  // its BatchNorm statistics and its loss. Gradients are taken as backward finishes each
  // parameter (Tensor::register_grad_ready_hook), so .grad is already empty after backward.
  void end_micro_batch(double loss);
  // After the rank's last micro-batch: sums the leaves over all ranks, writes the mean gradient
  // into .grad (left empty for a parameter no micro-batch reached), updates every BatchNorm's
  // running statistics once from the mean of the micro-batch statistics, and returns the step's
  // loss: the mean of the micro-batch losses (the same on every rank).
  double finish_step();

  // Copies rank 0's parameters and buffers to every rank (at the start of training).
  void broadcast_model();

  // Gradient buckets of the last step that started across the ranks before its last backward
  // ended (0 without overlap), and the number of buckets.
  int64_t buckets_sent_during_backward() const { return sent_during_backward_; }
  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }
  // Whether buckets cross the ranks during backward (options.overlap_backward with several ranks
  // and the fixed tree, on a CPU model or through a communicator whose device exchanges overlap
  // compute).
  bool overlaps_backward() const { return in_flight_ != nullptr; }

 private:
  struct Bucket {
    int64_t begin = 0, end = 0;  // values of the leaf
    int64_t params = 0;          // parameters it covers
    int64_t missing = 0;         // of those, not yet taken in this micro-batch
  };
  struct HookLink;  // lets hooks outlive this object safely

  Tensor& leaf();
  void take_gradient(size_t i);
  void add_ready_buckets();
  void add_range(int64_t begin, int64_t end);
  bool last_micro_batch() const { return sum_.count() + 1 == local_micro_batches(); }

  nn::Module& model_;
  dist::Communicator& comm_;
  int64_t k_;
  DataParallelOptions options_;
  std::vector<Tensor> params_;             // trainable parameters, in reverse registration order
  std::vector<int64_t> offsets_;           // where each one's gradient starts in a leaf
  std::vector<size_t> bucket_of_;          // and its bucket
  std::vector<Bucket> buckets_;            // consecutive ranges of the gradients, in order
  std::vector<nn::BatchNorm2d*> norms_;    // every BatchNorm, in module order
  std::vector<std::vector<Tensor>> statistics_;  // per BatchNorm: [mean, var] of each micro-batch
  int64_t gradient_size_ = 0;              // gradient values at the start of a leaf
  int64_t leaf_size_ = 0;                  // then statistics, flags and the loss
  bool collecting_ = false;                // between begin_step() and the last end_micro_batch()
  Tensor leaf_;                            // the micro-batch being taken
  std::vector<char> has_grad_;             // its "has a gradient" flags
  size_t next_bucket_ = 0;                 // its first bucket not yet added into the tree
  dist::PairwiseSum sum_;
  std::unique_ptr<dist::TreeAllreduceInFlight> in_flight_;  // with overlap_backward
  int64_t sent_during_backward_ = 0;
  std::shared_ptr<HookLink> link_;
};

// The communicator a data-parallel step on `device` sends its gradients through, for
// train.gpu_transport = `transport`: null (use `job` itself) for CPU training and for "host";
// `job` with NCCL carrying the CUDA tensors for "nccl", and for "auto" on a job of several ranks
// when this build has NCCL and no two ranks on a machine share a GPU (NCCL refuses that). Every
// rank calls it together; all reach the same choice. The bits of training are the same either way.
std::shared_ptr<dist::Communicator> gradient_communicator(dist::Communicator& job, Device device,
                                                          const std::string& transport);

}  // namespace evit::train
