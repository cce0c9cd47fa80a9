// The thread pool: fixed chunking, full coverage, exceptions, nesting.
#include <atomic>
#include <mutex>
#include <set>

#include "core/parallel.h"
#include "tests/support/test_util.h"

using namespace evit;

TEST_CASE("parallel_for covers the range once with chunk boundaries fixed by the grain", "[parallel]") {
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    std::mutex mu;
    std::set<std::pair<int64_t, int64_t>> chunks;
    std::vector<std::atomic<int>> hits(1000);
    parallel_for(5, 1005, 64, [&](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(mu);
      chunks.insert({b, e});
      for (int64_t i = b; i < e; ++i) hits[i - 5]++;
    });
    for (auto& h : hits) REQUIRE(h.load() == 1);
    REQUIRE(static_cast<int64_t>(chunks.size()) == num_chunks(5, 1005, 64));
    REQUIRE(chunks.begin()->first == 5);
    REQUIRE(chunks.begin()->second == 69);
    REQUIRE(chunks.rbegin()->second == 1005);
  }
  set_num_threads(2);
  REQUIRE(get_num_threads() == 2);
}

TEST_CASE("exceptions inside parallel_for reach the caller", "[parallel]") {
  REQUIRE_THROWS_WITH(parallel_for(0, 100, 1,
                                   [](int64_t b, int64_t) {
                                     if (b == 37) EVIT_THROW("chunk ", b, " failed");
                                   }),
                      Catch::Contains("chunk 37 failed"));
  // The pool still works afterwards.
  std::atomic<int64_t> total{0};
  parallel_for(0, 100, 10, [&](int64_t b, int64_t e) { total += e - b; });
  REQUIRE(total.load() == 100);
}

TEST_CASE("nested parallel_for runs inline", "[parallel]") {
  std::atomic<int64_t> total{0};
  std::atomic<int> outside{0};  // Catch assertions are not thread-safe: count, assert after
  parallel_for(0, 4, 1, [&](int64_t, int64_t) {
    if (!in_parallel_region()) outside++;
    parallel_for(0, 10, 1, [&](int64_t b, int64_t e) { total += e - b; });
  });
  REQUIRE(total.load() == 40);
  REQUIRE(outside.load() == 0);
  REQUIRE_FALSE(in_parallel_region());
  REQUIRE_THROWS_WITH(set_num_threads(0), Catch::Contains("n >= 1"));
}
