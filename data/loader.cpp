#include "data/loader.h"

#include <tuple>

#include "ops/shape.h"

namespace evit::data {

Batch collate(std::vector<Sample> samples) {
  EVIT_CHECK(!samples.empty(), "collate: empty batch");
  Batch b;
  std::vector<Tensor> in, tg, aux;
  for (auto& s : samples)
    if (is_hwc_u8_rgb(s.input)) s.input = hwc_u8_to_chw_float(s.input);  // no transform converted it
  for (auto& s : samples) {
    EVIT_CHECK(s.input.sizes() == samples[0].input.sizes(), "collate: sample '", s.id, "' has input ",
               s.input.desc(), " but '", samples[0].id, "' has ", samples[0].input.desc(),
               " (use a crop or resize transform so a batch has one shape)");
    EVIT_CHECK(s.target.sizes() == samples[0].target.sizes(), "collate: sample '", s.id, "' has target ",
               s.target.desc(), " but '", samples[0].id, "' has ", samples[0].target.desc());
    EVIT_CHECK(s.aux.defined() == samples[0].aux.defined() &&
                   (!s.aux.defined() || s.aux.sizes() == samples[0].aux.sizes()),
               "collate: sample '", s.id, "' has aux ", s.aux.defined() ? s.aux.desc() : "none", " but '",
               samples[0].id, "' has ", samples[0].aux.defined() ? samples[0].aux.desc() : "none");
    in.push_back(unsqueeze(s.input, 0));
    tg.push_back(unsqueeze(s.target, 0));
    if (s.aux.defined()) aux.push_back(unsqueeze(s.aux, 0));
    b.ids.push_back(s.id);
  }
  b.input = cat(in, 0);
  b.target = cat(tg, 0);
  if (!aux.empty()) b.aux = cat(aux, 0);
  return b;
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), o_(options) {
  EVIT_CHECK(o_.batch_size >= 1, "DataLoader: batch_size must be >= 1, got ", o_.batch_size);
  EVIT_CHECK(o_.workers >= 0 && o_.prefetch >= 1, "DataLoader: workers must be >= 0 and prefetch >= 1");
  EVIT_CHECK(dataset_->size() > 0, "DataLoader: ", dataset_->describe(), " is empty");
  EVIT_CHECK(!(o_.drop_last && dataset_->size() < o_.batch_size), "DataLoader: ", dataset_->describe(),
             " has fewer samples than one batch of ", o_.batch_size, " and drop_last is set");
  EVIT_CHECK(o_.shards >= 1 && o_.shard >= 0 && o_.shard < o_.shards, "DataLoader: shard ", o_.shard, " of ",
             o_.shards, " does not exist");
}

DataLoader::~DataLoader() { stop_workers(); }

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = dataset_->size();
  return o_.drop_last ? n / o_.batch_size : (n + o_.batch_size - 1) / o_.batch_size;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(dataset_->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  if (!o_.shuffle) return order;
  Generator g = sample_generator(o_.seed, epoch, -1);
  for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i) {  // Fisher-Yates
    int64_t j = static_cast<int64_t>(g.next_u64() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

Batch DataLoader::load_batch(int64_t epoch, const std::vector<int64_t>& order, int64_t b) const {
  int64_t begin = b * o_.batch_size;
  int64_t end = std::min<int64_t>(begin + o_.batch_size, static_cast<int64_t>(order.size()));
  if (o_.shards > 1) {
    const int64_t part = (end - begin) / o_.shards;
    EVIT_CHECK(part * o_.shards == end - begin, "DataLoader: a batch of ", end - begin, " samples does not split into ",
               o_.shards, " equal parts");
    begin += part * o_.shard;
    end = begin + part;
  }
  std::vector<Sample> samples;
  for (int64_t k = begin; k < end; ++k) {
    Generator g = sample_generator(o_.seed, epoch, order[k]);
    samples.push_back(dataset_->get(order[k], g));
  }
  return collate(std::move(samples));
}

DataLoader::Slot DataLoader::stream_slot(int64_t p) const {
  const int64_t total = batches_per_epoch(), first_epoch_left = total - stream_first_;
  if (p < first_epoch_left) return {stream_epoch_, stream_first_ + p};
  return {stream_epoch_ + 1 + (p - first_epoch_left) / total, (p - first_epoch_left) % total};
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  space_cv_.notify_all();
  ready_cv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  EVIT_CHECK(first_batch >= 0 && first_batch <= batches_per_epoch(), "DataLoader: first batch ", first_batch,
             " outside the epoch's ", batches_per_epoch(), " batches");
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool follows = epoch_ >= 0 && epoch == epoch_ + 1 && first_batch == 0 && next_batch_ == batches_per_epoch();
    if (follows && !workers_.empty() && !error_) {
      // The stream already runs into this epoch: keep its workers and prefetched batches.
      orders_.erase(epoch_);
      epoch_ = epoch;
      next_batch_ = 0;
      space_cv_.notify_all();  // the stream may now reach one epoch further
      return;
    }
  }
  stop_workers();
  epoch_ = epoch;
  next_batch_ = first_batch;
  stream_epoch_ = epoch;
  stream_first_ = first_batch;
  issued_ = consumed_ = 0;
  orders_.clear();
  orders_[epoch] = epoch_order(epoch);
  done_.clear();
  error_ = nullptr;
  stop_ = false;
  for (int w = 0; w < o_.workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

void DataLoader::worker_loop() {
  for (;;) {
    int64_t epoch = 0, b = 0;
    const std::vector<int64_t>* order = nullptr;
    {
      // Bounded prefetch: stay at most workers * prefetch batches ahead of the consumer, and at
      // most one epoch beyond the consumer's.
      std::unique_lock<std::mutex> lock(mu_);
      space_cv_.wait(lock, [&] {
        return stop_ || (issued_ < consumed_ + o_.workers * o_.prefetch && stream_slot(issued_).first <= epoch_ + 1);
      });
      if (stop_) return;
      std::tie(epoch, b) = stream_slot(issued_++);
      auto it = orders_.find(epoch);
      if (it == orders_.end()) it = orders_.emplace(epoch, epoch_order(epoch)).first;
      order = &it->second;  // map nodes stay put; erased only once the consumer is past this epoch
    }
    Batch batch;
    try {
      batch = load_batch(epoch, *order, b);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
      ready_cv_.notify_all();
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_.emplace(Slot{epoch, b}, std::move(batch));
    ready_cv_.notify_all();
  }
}

bool DataLoader::next(Batch& out) {
  EVIT_CHECK(epoch_ >= 0, "DataLoader: call start_epoch() before next()");
  if (next_batch_ >= batches_per_epoch()) return false;
  if (o_.workers == 0) {
    out = load_batch(epoch_, orders_.at(epoch_), next_batch_++);
    return true;
  }
  std::unique_lock<std::mutex> lock(mu_);
  const Slot slot{epoch_, next_batch_};
  ready_cv_.wait(lock, [&] { return error_ || done_.count(slot); });
  if (!done_.count(slot)) std::rethrow_exception(error_);
  out = std::move(done_.at(slot));
  done_.erase(slot);
  ++next_batch_;
  ++consumed_;
  space_cv_.notify_all();
  return true;
}

}  // namespace evit::data
