#include "core/dist/in_process_group.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"

namespace evit::dist {
namespace {

// Mailboxes keyed by (sender, receiver): each holds the messages in the order they were sent.
struct Shared {
  explicit Shared(int n) : size(n) {}
  const int size;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::pair<int, int>, std::deque<std::vector<char>>> mail;
  int barrier_waiting = 0;
  int64_t barrier_generation = 0;

  void post(int from, int to, const void* data, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu);
    auto* p = static_cast<const char*>(data);
    mail[{from, to}].emplace_back(p, p + bytes);
    cv.notify_all();
  }
  void take(int from, int to, void* data, size_t bytes) {
    std::unique_lock<std::mutex> lock(mu);
    auto& box = mail[{from, to}];
    cv.wait(lock, [&] { return !box.empty(); });
    EVIT_CHECK(box.front().size() == bytes, "in-process rank ", to, " expected ", bytes, " bytes from rank ", from,
               " but got ", box.front().size(), ": the ranks called different operations");
    if (bytes > 0) std::memcpy(data, box.front().data(), bytes);
    box.pop_front();
  }
};

class InProcessRank final : public Communicator {
 public:
  InProcessRank(std::shared_ptr<Shared> shared, int rank) : shared_(std::move(shared)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return shared_->size; }
  int local_rank() const override { return rank_; }
  void exchange(int peer, const void* send, void* recv, size_t bytes) override {
    EVIT_CHECK(peer >= 0 && peer < size(), "exchange: rank ", peer, " is outside the group's ", size(), " ranks");
    shared_->post(rank_, peer, send, bytes);
    shared_->take(peer, rank_, recv, bytes);
  }
  void broadcast(void* data, size_t bytes, int root) override {
    if (rank_ == root) {
      for (int r = 0; r < size(); ++r)
        if (r != root) shared_->post(root, r, data, bytes);
    } else {
      shared_->take(root, rank_, data, bytes);
    }
  }
  void barrier() override {
    std::unique_lock<std::mutex> lock(shared_->mu);
    const int64_t generation = shared_->barrier_generation;
    if (++shared_->barrier_waiting == size()) {
      shared_->barrier_waiting = 0;
      ++shared_->barrier_generation;
      shared_->cv.notify_all();
    } else {
      shared_->cv.wait(lock, [&] { return shared_->barrier_generation != generation; });
    }
  }
  // Like a library's collective, an order of its own: every rank sums all ranks' values left to
  // right (rank 0 first), not in the fixed tree.
  void library_allreduce_sum(float* values, size_t count) override {
    std::vector<float> sum(count, 0.0f), part(count);
    for (int root = 0; root < size(); ++root) {
      if (root == rank_) std::copy(values, values + count, part.begin());
      broadcast(part.data(), count * sizeof(float), root);
      for (size_t i = 0; i < count; ++i) sum[i] += part[i];
    }
    std::copy(sum.begin(), sum.end(), values);
  }
  void abort(int code) override { std::_Exit(code); }
  std::string describe() const override {
    return "in-process rank " + std::to_string(rank_) + " of " + std::to_string(size());
  }

 private:
  std::shared_ptr<Shared> shared_;
  int rank_;
};

}  // namespace

std::vector<std::shared_ptr<Communicator>> in_process_group(int size) {
  EVIT_CHECK(size >= 1, "in_process_group: size must be at least 1, got ", size);
  auto shared = std::make_shared<Shared>(size);
  std::vector<std::shared_ptr<Communicator>> ranks;
  for (int r = 0; r < size; ++r) ranks.push_back(std::make_shared<InProcessRank>(shared, r));
  return ranks;
}

}  // namespace evit::dist
