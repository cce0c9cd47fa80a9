#include "core/dist/in_process_group.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"

namespace evit::dist {
namespace {

// A message in a mailbox: a copy (broadcasts), or for an exchange the sender's own buffer, which
// the receiver copies from and then marks taken. Until then the sender's exchange is not complete,
// as with MPI, where a send buffer may be read until its request completes.
struct Message {
  std::vector<char> copy;
  const char* borrowed = nullptr;
  size_t bytes = 0;
  std::shared_ptr<bool> taken;  // set by the receiver; guarded by Shared::mu
};

// Mailboxes keyed by (sender, receiver): each holds the messages in the order they were sent.
struct Shared {
  explicit Shared(int n) : size(n) {}
  const int size;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::pair<int, int>, std::deque<Message>> mail;
  int barrier_waiting = 0;
  int64_t barrier_generation = 0;

  void post(int from, int to, const void* data, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu);
    auto* p = static_cast<const char*>(data);
    mail[{from, to}].push_back(Message{std::vector<char>(p, p + bytes), nullptr, bytes, nullptr});
    cv.notify_all();
  }
  // Posts the sender's buffer itself; the returned flag turns true once the receiver copied it.
  std::shared_ptr<bool> post_borrowed(int from, int to, const void* data, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu);
    auto taken = std::make_shared<bool>(false);
    mail[{from, to}].push_back(Message{{}, static_cast<const char*>(data), bytes, taken});
    cv.notify_all();
    return taken;
  }
  // A borrowed message whose sender gives up its buffer before the receiver took it becomes a copy.
  void keep_copy(int from, int to, const std::shared_ptr<bool>& taken) {
    std::lock_guard<std::mutex> lock(mu);
    if (*taken) return;
    for (Message& m : mail[{from, to}])
      if (m.taken == taken) {
        m.copy.assign(m.borrowed, m.borrowed + m.bytes);
        m.borrowed = nullptr;
        m.taken = nullptr;
      }
    *taken = true;
  }
  // Moves the oldest message from `from` into `data`; false when none has come yet (only then
  // with `block` false).
  bool take(int from, int to, void* data, size_t bytes, bool block = true) {
    std::unique_lock<std::mutex> lock(mu);
    auto& box = mail[{from, to}];
    if (block) cv.wait(lock, [&] { return !box.empty(); });
    if (box.empty()) return false;
    Message& m = box.front();
    EVIT_CHECK(m.bytes == bytes, "in-process rank ", to, " expected ", bytes, " bytes from rank ", from,
               " but got ", m.bytes, ": the ranks called different operations");
    if (bytes > 0) std::memcpy(data, m.borrowed ? m.borrowed : m.copy.data(), bytes);
    if (m.taken) *m.taken = true;
    box.pop_front();
    cv.notify_all();
    return true;
  }
  // Waits until `taken` is set.
  void wait_taken(const std::shared_ptr<bool>& taken) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return *taken; });
  }
  bool is_taken(const std::shared_ptr<bool>& taken) {
    std::lock_guard<std::mutex> lock(mu);
    return *taken;
  }
};

// An exchange between two in-process ranks: done once this rank has received the peer's values
// and the peer has copied this rank's, which happens only inside test() and wait() of either
// side, like MPI's progress. The tests of overlapped reductions thus meet exchanges that finish
// late, without MPI.
class InProcessExchange final : public PendingExchange {
 public:
  InProcessExchange(Shared& shared, int rank, int peer, const void* send, void* recv, size_t bytes)
      : shared_(shared), rank_(rank), peer_(peer), recv_(recv), bytes_(bytes),
        sent_(shared.post_borrowed(rank, peer, send, bytes)) {}
  bool test() override {
    if (!received_) received_ = shared_.take(peer_, rank_, recv_, bytes_, false);
    return received_ && shared_.is_taken(sent_);
  }
  void wait() override {
    if (!received_) received_ = shared_.take(peer_, rank_, recv_, bytes_);
    shared_.wait_taken(sent_);
  }
  ~InProcessExchange() override { shared_.keep_copy(rank_, peer_, sent_); }

 private:
  Shared& shared_;
  int rank_, peer_;
  void* recv_;
  size_t bytes_;
  std::shared_ptr<bool> sent_;
  bool received_ = false;
};

class InProcessRank final : public Communicator {
 public:
  InProcessRank(std::shared_ptr<Shared> shared, int rank) : shared_(std::move(shared)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return shared_->size; }
  int local_rank() const override { return rank_; }
  void exchange(int peer, const void* send, void* recv, size_t bytes) override {
    start_exchange(peer, send, recv, bytes)->wait();
  }
  std::unique_ptr<PendingExchange> start_exchange(int peer, const void* send, void* recv, size_t bytes) override {
    EVIT_CHECK(peer >= 0 && peer < size(), "exchange: rank ", peer, " is outside the group's ", size(), " ranks");
    return std::make_unique<InProcessExchange>(*shared_, rank_, peer, send, recv, bytes);
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
