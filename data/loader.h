// DataLoader: batches of a Dataset, loaded by worker threads with bounded prefetch.
//
// The order of an epoch is a permutation seeded by (seed, epoch), and every sample's random
// transforms use sample_generator(seed, epoch, index): batches are identical for any number of
// workers, and a run resumed at epoch e sees exactly the batches it would have seen.
//
// The workers take the batches one after another from a stream that runs on into the next epoch:
// near the end of an epoch they already load the next one's first batches, and start_epoch(e + 1)
// after a finished epoch e keeps them (workers and prefetched batches carry on), so a small
// dataset of a few batches per epoch does not stall the model at every epoch boundary. Any other
// start_epoch (a first call, a resume mid-epoch, a jump) restarts the stream.
#pragma once
#include <condition_variable>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset.h"

namespace evit::data {

struct LoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = true;
  bool drop_last = false;
  int workers = 2;        // 0 = load on the calling thread
  int prefetch = 2;       // batches per worker allowed ahead of the consumer
  uint64_t seed = 0;
  // Data-parallel ranks: each batch is cut into `shards` equal contiguous parts and this loader
  // loads only part `shard` (the batch size must divide evenly). The order and every sample's
  // random transforms stay those of the whole batch.
  int shard = 0, shards = 1;
};

struct Batch {
  Tensor input;   // [B, ...]
  Tensor target;  // [B, ...]
  Tensor aux;     // [B, ...] when the samples carry one
  std::vector<std::string> ids;
};

// Stacks samples (all the same shapes) into a batch; errors name the sample whose shape differs.
Batch collate(std::vector<Sample> samples);

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const;
  // Starts epoch `epoch` at batch `first_batch` (to resume mid-epoch); workers begin loading at
  // once, or carry on when this is the epoch after a finished one (see above).
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The index within the epoch of the batch next() returns next.
  int64_t next_batch_index() const { return next_batch_; }
  // The next batch of the current epoch; false when the epoch is over. Rethrows a worker's error.
  bool next(Batch& out);
  // The sample order of an epoch (for tests and resumption checks).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  // (epoch, batch index within the epoch).
  using Slot = std::pair<int64_t, int64_t>;
  Batch load_batch(int64_t epoch, const std::vector<int64_t>& order, int64_t b) const;
  // The slot at position p of the stream that started at (stream_epoch_, stream_first_).
  Slot stream_slot(int64_t p) const;
  void stop_workers();
  void worker_loop();

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions o_;
  int64_t epoch_ = -1;      // the consumer's epoch
  int64_t next_batch_ = 0;  // next batch the consumer takes

  std::mutex mu_;
  std::condition_variable ready_cv_, space_cv_;
  // Guarded by mu_: the stream's start, positions handed to workers and taken by the consumer,
  // the sample orders of the consumer's epoch and the next, and the loaded batches.
  int64_t stream_epoch_ = 0, stream_first_ = 0, issued_ = 0, consumed_ = 0;
  std::map<int64_t, std::vector<int64_t>> orders_;
  std::map<Slot, Batch> done_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace evit::data
