// DataLoader: batches of a Dataset, loaded by worker threads with bounded prefetch.
//
// The order of an epoch is a permutation seeded by (seed, epoch), and every sample's random
// transforms use sample_generator(seed, epoch, index): batches are identical for any number of
// workers, and a run resumed at epoch e sees exactly the batches it would have seen.
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
  // Starts (or restarts) epoch `epoch` at batch `first_batch` (to resume mid-epoch); workers
  // begin loading at once.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The index within the epoch of the batch next() returns next.
  int64_t next_batch_index() const { return next_batch_; }
  // The next batch of the current epoch; false when the epoch is over. Rethrows a worker's error.
  bool next(Batch& out);
  // The sample order of an epoch (for tests and resumption checks).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  Batch load_batch(int64_t b) const;
  void stop_workers();
  void worker_loop(int worker);

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions o_;
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
  int64_t next_batch_ = 0;  // next batch the consumer takes
  int64_t first_batch_ = 0;

  std::mutex mu_;
  std::condition_variable ready_cv_, space_cv_;
  std::map<int64_t, Batch> done_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace evit::data
