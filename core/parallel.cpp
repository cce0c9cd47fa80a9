#include "core/parallel.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

extern "C" void openblas_set_num_threads(int);

namespace evit {
namespace {

thread_local bool t_in_parallel = false;

// How long an idle worker keeps watching for the next job before it sleeps.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(100);

// A job: a range split into fixed chunks that threads claim through an atomic counter.
struct Job {
  int64_t begin = 0, end = 0, grain = 1, chunks = 0;
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::exception_ptr error;
  std::mutex error_mu;

  void run_chunks() {
    for (;;) {
      int64_t c = next.fetch_add(1);
      if (c >= chunks) return;
      int64_t b = begin + c * grain;
      int64_t e = std::min(end, b + grain);
      try {
        (*fn)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
      }
      done.fetch_add(1);
    }
  }
};

class ThreadPool {
 public:
  explicit ThreadPool(int n) { resize(n); }
  ~ThreadPool() { stop_all(); }

  int size() const { return num_threads_; }

  void resize(int n) {
    stop_all();
    num_threads_ = n;
    stop_ = false;
    stop_flag_ = false;
    for (int i = 0; i + 1 < n; ++i) workers_.emplace_back([this] { worker_loop(); });
  }

  void run(Job& job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      ++generation_;
    }
    cv_.notify_all();
    t_in_parallel = true;
    job.run_chunks();
    t_in_parallel = false;
    // Wait for chunks other threads claimed; they are short, so spin briefly then yield.
    while (job.done.load() < job.chunks) std::this_thread::yield();
    // Make sure no worker still holds a pointer to the job before it goes out of scope.
    std::unique_lock<std::mutex> lock(mu_);
    job_ = nullptr;
    idle_cv_.wait(lock, [this] { return active_ == 0; });
  }

 private:
  void worker_loop() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      // Kernels come in quick succession (a forward pass is hundreds of parallel_for calls), and
      // waking a sleeping thread costs tens of microseconds: watch for the next job a little
      // while before sleeping.
      lock.unlock();
      const auto spin_until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
      for (int i = 1; generation_.load(std::memory_order_acquire) == seen && !stop_flag_.load(std::memory_order_relaxed);
           ++i)
        if (i % 64 == 0 && std::chrono::steady_clock::now() > spin_until) break;
      lock.lock();
      cv_.wait(lock, [&] { return stop_ || (generation_ != seen && job_ != nullptr); });
      if (stop_) return;
      seen = generation_;
      Job* job = job_;
      ++active_;
      lock.unlock();
      t_in_parallel = true;
      job->run_chunks();
      t_in_parallel = false;
      lock.lock();
      --active_;
      idle_cv_.notify_all();
    }
  }

  void stop_all() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      stop_flag_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  int num_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  Job* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};  // written under mu_, read without it while spinning
  std::atomic<bool> stop_flag_{false};     // stop_, for the spinning read
  int active_ = 0;
  bool stop_ = false;
};

int default_threads() {
  if (const char* env = std::getenv("EVIT_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

std::mutex g_pool_mu;  // serialises top-level parallel_for calls from different user threads

ThreadPool& pool() {
  static ThreadPool* p = [] {
    // OpenBLAS always runs single-threaded: evit's GEMM driver (ops/linalg/gemm.cpp) splits
    // products over this pool itself, so results never depend on OpenBLAS's threading.
    openblas_set_num_threads(1);
    return new ThreadPool(default_threads());  // never destroyed: workers may outlive static destructors
  }();
  return *p;
}

}  // namespace

int get_num_threads() { return pool().size(); }

void set_num_threads(int n) {
  EVIT_CHECK(n >= 1, "set_num_threads: expected n >= 1, got ", n);
  std::lock_guard<std::mutex> lock(g_pool_mu);
  pool().resize(n);
}

bool in_parallel_region() { return t_in_parallel; }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  if (grain < 1) grain = 1;
  int64_t chunks = num_chunks(begin, end, grain);
  if (chunks == 1 || t_in_parallel || pool().size() == 1) {
    // Same chunk boundaries as the parallel path, so results do not depend on the path.
    for (int64_t c = 0; c < chunks; ++c) fn(begin + c * grain, std::min(end, begin + (c + 1) * grain));
    return;
  }
  std::lock_guard<std::mutex> lock(g_pool_mu);
  Job job;
  job.begin = begin;
  job.end = end;
  job.grain = grain;
  job.chunks = chunks;
  job.fn = &fn;
  pool().run(job);
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace evit
