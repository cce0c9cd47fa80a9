#include "data/loader.h"

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

Batch DataLoader::load_batch(int64_t b) const {
  int64_t begin = b * o_.batch_size;
  int64_t end = std::min<int64_t>(begin + o_.batch_size, static_cast<int64_t>(order_.size()));
  if (o_.shards > 1) {
    const int64_t part = (end - begin) / o_.shards;
    EVIT_CHECK(part * o_.shards == end - begin, "DataLoader: a batch of ", end - begin, " samples does not split into ",
               o_.shards, " equal parts");
    begin += part * o_.shard;
    end = begin + part;
  }
  std::vector<Sample> samples;
  for (int64_t k = begin; k < end; ++k) {
    Generator g = sample_generator(o_.seed, epoch_, order_[k]);
    samples.push_back(dataset_->get(order_[k], g));
  }
  return collate(std::move(samples));
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
  stop_workers();
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  next_batch_ = first_batch;
  first_batch_ = first_batch;
  done_.clear();
  error_ = nullptr;
  stop_ = false;
  for (int w = 0; w < o_.workers; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
}

void DataLoader::worker_loop(int worker) {
  const int64_t total = batches_per_epoch();
  for (int64_t b = first_batch_ + worker; b < total; b += o_.workers) {
    {
      // Bounded prefetch: stay at most workers * prefetch batches ahead of the consumer.
      std::unique_lock<std::mutex> lock(mu_);
      space_cv_.wait(lock, [&] { return stop_ || b < next_batch_ + o_.workers * o_.prefetch; });
      if (stop_) return;
    }
    Batch batch;
    try {
      batch = load_batch(b);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
      ready_cv_.notify_all();
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_.emplace(b, std::move(batch));
    ready_cv_.notify_all();
  }
}

bool DataLoader::next(Batch& out) {
  EVIT_CHECK(epoch_ >= 0, "DataLoader: call start_epoch() before next()");
  if (next_batch_ >= batches_per_epoch()) return false;
  if (o_.workers == 0) {
    out = load_batch(next_batch_++);
    return true;
  }
  std::unique_lock<std::mutex> lock(mu_);
  ready_cv_.wait(lock, [&] { return error_ || done_.count(next_batch_); });
  if (!done_.count(next_batch_)) std::rethrow_exception(error_);
  out = std::move(done_.at(next_batch_));
  done_.erase(next_batch_);
  ++next_batch_;
  space_cv_.notify_all();
  return true;
}

}  // namespace evit::data
