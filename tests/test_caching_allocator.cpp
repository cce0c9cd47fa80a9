// The CUDA caching allocator's block manager, driven through a fake device on the CPU: rounding,
// pools, best-fit, splitting, merging, max_split_size, OOM release-and-retry, the OOM message,
// statistics, empty_cache, thread safety and a seeded randomized run that checks every invariant
// after each operation. Expected values are derived here from the allocator's published rules
// (docs/cuda-allocator.md), not read back from the implementation.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "core/caching_allocator.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {

constexpr size_t KiB = size_t(1) << 10;
constexpr size_t MiB = size_t(1) << 20;

// A device with `capacity` bytes. Addresses come from a fake address space, bump-allocated and
// never reused, so consecutive segments are adjacent (which the no-merge-across-segments test
// needs) and a stale address can never be confused with a new one. Nothing is dereferenced.
class FakeDevice : public DeviceMemory {
 public:
  explicit FakeDevice(size_t capacity) : capacity(capacity) {}

  void* raw_alloc(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mu);
    log.push_back({'a', bytes});
    if (fail_next > 0) {
      --fail_next;
      ++failed;
      return nullptr;
    }
    if (bytes > capacity - used) {
      ++failed;
      return nullptr;
    }
    uintptr_t a = next_addr;
    next_addr += bytes;
    live[a] = bytes;
    used += bytes;
    ++allocs;
    return reinterpret_cast<void*>(a);
  }
  void raw_free(void* p) override {
    std::lock_guard<std::mutex> lock(mu);
    auto it = live.find(reinterpret_cast<uintptr_t>(p));
    if (it == live.end()) {
      ++bad_frees;
      return;
    }
    log.push_back({'f', it->second});
    used -= it->second;
    live.erase(it);
    ++frees;
  }
  std::pair<size_t, size_t> mem_info() override {
    std::lock_guard<std::mutex> lock(mu);
    return {capacity - used, capacity};
  }

  std::mutex mu;
  size_t capacity;
  size_t used = 0;
  uintptr_t next_addr = uintptr_t(1) << 40;
  std::map<uintptr_t, size_t> live;  // raw allocations: address -> size
  size_t allocs = 0, frees = 0, failed = 0, bad_frees = 0;
  int fail_next = 0;                         // refuse this many raw_alloc calls
  std::vector<std::pair<char, size_t>> log;  // ('a', size) per raw_alloc try, ('f', size) per free
};

uintptr_t addr(void* p) { return reinterpret_cast<uintptr_t>(p); }

// The published rules, restated independently of the implementation.
size_t rounded(size_t n) { return (n + 511) / 512 * 512; }
bool is_small(size_t n) { return rounded(n) <= MiB; }
size_t expected_segment(size_t n) {
  size_t r = rounded(n);
  if (r <= MiB) return 2 * MiB;
  if (r <= 10 * MiB) return 20 * MiB;
  return (r + 2 * MiB - 1) / (2 * MiB) * (2 * MiB);
}

std::string mib2(size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(bytes) / MiB);
  return buf;
}

const SegmentInfo* segment_of(const std::vector<SegmentInfo>& segs, uintptr_t a) {
  for (auto& s : segs)
    if (a >= s.address && a < s.address + s.size) return &s;
  return nullptr;
}

// Every invariant that holds between operations. `live` is the caller's view: address -> the size
// it asked for. `max_split` is the allocator's knob.
void check_invariants(CachingAllocator& alloc, FakeDevice& dev,
                      const std::map<uintptr_t, size_t>& live, size_t max_split) {
  auto segs = alloc.memory_snapshot();
  auto st = alloc.memory_stats();

  // The segments are exactly the device's live raw allocations.
  REQUIRE(segs.size() == dev.live.size());
  size_t reserved = 0;
  for (auto& s : segs) {
    auto it = dev.live.find(s.address);
    REQUIRE(it != dev.live.end());
    REQUIRE(it->second == s.size);
    reserved += s.size;
  }
  REQUIRE(st.reserved_bytes == reserved);
  REQUIRE(dev.used == reserved);
  REQUIRE(st.segments == segs.size());
  REQUIRE(st.num_raw_allocs == dev.allocs);
  REQUIRE(st.num_raw_frees == dev.frees);
  REQUIRE(dev.bad_frees == 0);
  REQUIRE(st.peak_reserved_bytes >= st.reserved_bytes);
  REQUIRE(st.peak_allocated_bytes >= st.allocated_bytes);

  // Each segment is tiled exactly by its blocks, with no two free neighbours left unmerged.
  std::map<uintptr_t, BlockInfo> allocated_blocks;
  for (auto& s : segs) {
    if (s.small_pool) REQUIRE(s.size == 2 * MiB);
    REQUIRE(s.size % (2 * MiB) == 0);
    REQUIRE(!s.blocks.empty());
    uintptr_t cursor = s.address;
    bool prev_free = false;
    for (auto& b : s.blocks) {
      REQUIRE(b.address == cursor);
      REQUIRE(b.size > 0);
      REQUIRE(b.size % 512 == 0);
      REQUIRE(!(prev_free && !b.allocated));
      prev_free = !b.allocated;
      cursor += b.size;
      if (b.allocated) allocated_blocks[b.address] = b;
    }
    REQUIRE(cursor == s.address + s.size);
  }

  // The allocated blocks are exactly the caller's live pointers, each large enough, in the right
  // pool, with the slack the split rules allow; bookkeeping sums agree.
  REQUIRE(allocated_blocks.size() == live.size());
  size_t alloc_sum = 0, req_sum = 0;
  uintptr_t prev_end = 0;
  for (auto& [a, req] : live) {
    auto it = allocated_blocks.find(a);
    REQUIRE(it != allocated_blocks.end());
    const BlockInfo& b = it->second;
    REQUIRE(b.requested == req);
    REQUIRE(b.size >= rounded(req));
    const SegmentInfo* s = segment_of(segs, a);
    REQUIRE(s != nullptr);
    REQUIRE(s->small_pool == is_small(req));
    if (is_small(req)) {
      REQUIRE(b.size == rounded(req));  // small remainders are multiples of 512: always split
    } else if (rounded(req) <= max_split) {
      REQUIRE(b.size - rounded(req) <= MiB);
    } else {
      REQUIRE(b.size - rounded(req) < 20 * MiB);
    }
    REQUIRE(a >= prev_end);  // live blocks never overlap (map is address-ordered)
    prev_end = a + b.size;
    alloc_sum += b.size;
    req_sum += req;
  }
  REQUIRE(st.allocated_bytes == alloc_sum);
  REQUIRE(st.requested_bytes == req_sum);
  REQUIRE(st.active_blocks == live.size());
}

}  // namespace

TEST_CASE("requests are rounded up to 512 bytes; 0 gives nullptr", "[allocator]") {
  FakeDevice dev(64 * MiB);
  CachingAllocator alloc(dev);
  REQUIRE(alloc.allocate(0) == nullptr);
  alloc.free(nullptr);  // a no-op
  void* a = alloc.allocate(1);
  void* b = alloc.allocate(512);
  void* c = alloc.allocate(513);
  void* d = alloc.allocate(1);
  REQUIRE(alloc.block_size(a) == 512);
  REQUIRE(alloc.block_size(b) == 512);
  REQUIRE(alloc.block_size(c) == 1024);
  // All carved in order from the one small segment.
  REQUIRE(addr(b) == addr(a) + 512);
  REQUIRE(addr(c) == addr(b) + 512);
  REQUIRE(addr(d) == addr(c) + 1024);
  auto st = alloc.memory_stats();
  REQUIRE(st.allocated_bytes == 512 + 512 + 1024 + 512);
  REQUIRE(st.requested_bytes == 1 + 512 + 513 + 1);
  REQUIRE(st.num_raw_allocs == 1);
  REQUIRE(dev.log == std::vector<std::pair<char, size_t>>{{'a', 2 * MiB}});
  REQUIRE_THROWS_WITH(alloc.allocate(~size_t(0)), Catch::Contains("larger than any device"));
}

TEST_CASE("small and large requests use separate pools and segment sizes", "[allocator]") {
  FakeDevice dev(512 * MiB);
  CachingAllocator alloc(dev);
  void* s1 = alloc.allocate(MiB);  // the largest small request
  REQUIRE(dev.log.back() == std::make_pair('a', 2 * MiB));
  void* l1 = alloc.allocate(MiB + 1);  // the smallest large request: a shared 20 MiB segment
  REQUIRE(dev.log.back() == std::make_pair('a', 20 * MiB));
  void* l2 = alloc.allocate(10 * MiB);  // still fits the rest of that 20 MiB segment
  REQUIRE(dev.allocs == 2);
  REQUIRE(addr(l2) == addr(l1) + MiB + 512);
  void* l3 = alloc.allocate(11 * MiB);  // > 10 MiB: own segment rounded up to 2 MiB
  REQUIRE(dev.log.back() == std::make_pair('a', 12 * MiB));
  void* l4 = alloc.allocate(12 * MiB + 1);
  REQUIRE(dev.log.back() == std::make_pair('a', 14 * MiB));
  {
    FakeDevice dev2(512 * MiB);
    CachingAllocator alloc2(dev2);
    void* p = alloc2.allocate(10 * MiB);  // the largest request that gets a shared 20 MiB segment
    REQUIRE(dev2.log.back() == std::make_pair('a', 20 * MiB));
    void* q = alloc2.allocate(10 * MiB + 1);  // the 10 MiB remainder is too small: own 12 MiB
    REQUIRE(dev2.log.back() == std::make_pair('a', 12 * MiB));
    alloc2.free(p);
    alloc2.free(q);
  }

  // A free large block is never used for a small request, nor a free small one for a large one.
  alloc.free(l3);  // 12 MiB segment, fully free
  void* s2 = alloc.allocate(4 * KiB);
  REQUIRE(addr(s2) == addr(s1) + MiB);  // from the small segment, not the free 12 MiB block
  alloc.free(s1);
  alloc.free(s2);  // the small segment is now entirely free (2 MiB)
  size_t before = dev.allocs;
  // 1.5 MiB would fit the free 2 MiB small segment, but that is small-pool memory. The free large
  // blocks are 9 MiB - 512 B (after l2), 12 MiB (l3) and 2 MiB - 512 B (after l4): best fit is the
  // last, which keeps its 0.5 MiB - 512 B tail (not more than 1 MiB: no split).
  void* l5 = alloc.allocate(MiB + 512 * KiB);
  REQUIRE(dev.allocs == before);
  REQUIRE(addr(l5) == addr(l4) + 12 * MiB + 512);
  REQUIRE(alloc.block_size(l5) == 2 * MiB - 512);
  for (auto& s : alloc.memory_snapshot()) {
    for (auto& b : s.blocks)
      if (b.allocated) REQUIRE(s.small_pool == (b.size <= MiB));
  }
  for (void* p : {l1, l2, l4, l5}) alloc.free(p);
}

TEST_CASE("a freed block is handed back for the same request", "[allocator]") {
  FakeDevice dev(256 * MiB);
  CachingAllocator alloc(dev);
  for (size_t n : {size_t(3000), 700 * KiB, 5 * MiB, 50 * MiB}) {
    void* p = alloc.allocate(n);
    size_t raw = dev.allocs;
    alloc.free(p);
    void* q = alloc.allocate(n);
    REQUIRE(q == p);
    REQUIRE(dev.allocs == raw);
    alloc.free(q);
  }
  REQUIRE(dev.frees == 0);  // nothing went back to the device
}

TEST_CASE("blocks are split, the remainder is reused, and lookup is best-fit", "[allocator]") {
  FakeDevice dev(256 * MiB);
  CachingAllocator alloc(dev);

  SECTION("small pool: split whenever at least 512 B remain") {
    void* a = alloc.allocate(100 * KiB);
    auto segs = alloc.memory_snapshot();
    REQUIRE(segs.size() == 1);
    REQUIRE(segs[0].blocks.size() == 2);
    REQUIRE(segs[0].blocks[1].address == addr(a) + 100 * KiB);
    REQUIRE(segs[0].blocks[1].size == 2 * MiB - 100 * KiB);
    REQUIRE_FALSE(segs[0].blocks[1].allocated);
    void* b = alloc.allocate(200 * KiB);
    REQUIRE(addr(b) == addr(a) + 100 * KiB);
    // Use up the segment down to an exact 512 B tail (724 KiB are left after a, b and c).
    void* c = alloc.allocate(MiB);
    void* d = alloc.allocate(724 * KiB - 512);
    REQUIRE(alloc.block_size(d) == 724 * KiB - 512);
    void* e = alloc.allocate(1);
    REQUIRE(addr(e) == addr(d) + 724 * KiB - 512);
    REQUIRE(dev.allocs == 1);
    REQUIRE(alloc.memory_snapshot()[0].blocks.size() == 5);
    void* f = alloc.allocate(1);  // the segment is full now
    REQUIRE(dev.allocs == 2);
    for (void* p : {a, b, c, d, e, f}) alloc.free(p);
  }

  SECTION("large pool: split only when more than 1 MiB remains") {
    void* x = alloc.allocate(4 * MiB);
    void* y = alloc.allocate(6 * MiB);
    REQUIRE(addr(y) == addr(x) + 4 * MiB);  // the remainder of the 20 MiB segment
    REQUIRE(dev.allocs == 1);
    void* p = alloc.allocate(11 * MiB);  // 12 MiB segment, 1 MiB left: not split
    REQUIRE(alloc.block_size(p) == 12 * MiB);
    void* q = alloc.allocate(11 * MiB - 512);  // 1 MiB + 512 left: split
    REQUIRE(alloc.block_size(q) == 11 * MiB - 512);
    auto st = alloc.memory_stats();
    REQUIRE(st.allocated_bytes == 4 * MiB + 6 * MiB + 12 * MiB + 11 * MiB - 512);
    REQUIRE(st.reserved_bytes == 20 * MiB + 12 * MiB + 12 * MiB);
    void* r = alloc.allocate(MiB + 512);  // exactly the 1 MiB + 512 tail left by q
    REQUIRE(addr(r) == addr(q) + 11 * MiB - 512);
    REQUIRE(dev.allocs == 3);
    for (void* v : {x, y, p, q, r}) alloc.free(v);
  }

  SECTION("best fit: the smallest free block that is large enough") {
    // Holes of 8, 4 and 16 KiB kept apart by live blocks.
    void* h8 = alloc.allocate(8 * KiB);
    void* g1 = alloc.allocate(512);
    void* h4 = alloc.allocate(4 * KiB);
    void* g2 = alloc.allocate(512);
    void* h16 = alloc.allocate(16 * KiB);
    void* g3 = alloc.allocate(512);
    for (void* h : {h8, h4, h16}) alloc.free(h);
    REQUIRE(alloc.allocate(3 * KiB) == h4);
    REQUIRE(alloc.allocate(5 * KiB) == h8);
    REQUIRE(alloc.allocate(9 * KiB) == h16);
    // The 3 KiB request left 1 KiB at h4 + 3 KiB: the best fit for 1 KiB.
    REQUIRE(addr(alloc.allocate(KiB)) == addr(h4) + 3 * KiB);
    REQUIRE(dev.allocs == 1);
    (void)g1, (void)g2, (void)g3;
  }
}

TEST_CASE("freed neighbours merge into one block, in any order", "[allocator]") {
  const std::vector<std::vector<int>> orders = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                                {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (const auto& order : orders) {
    FakeDevice dev(64 * MiB);
    CachingAllocator alloc(dev);
    void* p[3];
    for (int i = 0; i < 3; ++i) p[i] = alloc.allocate(64 * KiB);
    void* guard = alloc.allocate(KiB);  // keeps the three apart from the segment's free tail
    REQUIRE(addr(p[1]) == addr(p[0]) + 64 * KiB);
    REQUIRE(addr(p[2]) == addr(p[1]) + 64 * KiB);
    for (int i : order) alloc.free(p[i]);
    auto segs = alloc.memory_snapshot();
    REQUIRE(segs.size() == 1);
    const auto& bl = segs[0].blocks;
    INFO("order " << order[0] << order[1] << order[2]);
    REQUIRE(bl.size() == 3);
    REQUIRE(bl[0].address == addr(p[0]));
    REQUIRE(bl[0].size == 192 * KiB);
    REQUIRE_FALSE(bl[0].allocated);
    REQUIRE(bl[1].address == addr(guard));
    REQUIRE(bl[1].allocated);
    REQUIRE(bl[2].size == 2 * MiB - 192 * KiB - KiB);
    // The merged block serves a request of its full size (best fit over the larger tail).
    void* whole = alloc.allocate(192 * KiB);
    REQUIRE(whole == p[0]);
    alloc.free(whole);
    alloc.free(guard);  // now everything merges into one block spanning the segment
    segs = alloc.memory_snapshot();
    REQUIRE(segs[0].blocks.size() == 1);
    REQUIRE(segs[0].blocks[0].size == 2 * MiB);
    REQUIRE(alloc.memory_stats().allocated_bytes == 0);
  }
}

TEST_CASE("blocks of different segments never merge, even when adjacent", "[allocator]") {
  FakeDevice dev(256 * MiB);
  CachingAllocator alloc(dev);
  void* a = alloc.allocate(MiB);
  void* b = alloc.allocate(MiB);  // fills the first small segment
  void* c = alloc.allocate(MiB);  // second small segment, placed right after the first
  REQUIRE(dev.allocs == 2);
  REQUIRE(addr(c) == addr(a) + 2 * MiB);
  alloc.free(b);
  alloc.free(c);
  alloc.free(a);
  auto segs = alloc.memory_snapshot();
  REQUIRE(segs.size() == 2);
  for (auto& s : segs) {
    REQUIRE(s.blocks.size() == 1);
    REQUIRE(s.blocks[0].size == 2 * MiB);
  }

  // Two adjacent 30 MiB large segments, both free, cannot serve 50 MiB together.
  void* x = alloc.allocate(30 * MiB);
  void* y = alloc.allocate(30 * MiB);
  REQUIRE(addr(y) == addr(x) + 30 * MiB);
  alloc.free(x);
  alloc.free(y);
  size_t raw = dev.allocs;
  void* z = alloc.allocate(50 * MiB);
  REQUIRE(dev.allocs == raw + 1);
  REQUIRE(addr(z) != addr(x));
  alloc.free(z);
}

TEST_CASE("max_split_size keeps oversize blocks whole", "[allocator]") {
  FakeDevice dev(1024 * MiB);
  REQUIRE_THROWS_WITH(CachingAllocator(dev, {8 * MiB, "cuda:0"}),
                      Catch::Contains("max_split_size must be at least 20 MiB"));

  SECTION("without the knob a cached 40 MiB block is split") {
    CachingAllocator alloc(dev);
    void* big = alloc.allocate(40 * MiB);
    alloc.free(big);
    void* p = alloc.allocate(25 * MiB);
    REQUIRE(p == big);
    REQUIRE(alloc.block_size(p) == 25 * MiB);
    void* q = alloc.allocate(4 * MiB);  // from the 15 MiB remainder
    REQUIRE(addr(q) == addr(big) + 25 * MiB);
    REQUIRE(dev.allocs == 1);
    alloc.free(p);
    alloc.free(q);
  }

  SECTION("with max_split_size = 20 MiB") {
    CachingAllocator alloc(dev, {20 * MiB, "cuda:0"});
    REQUIRE(alloc.max_split_size() == 20 * MiB);
    void* big = alloc.allocate(40 * MiB);  // oversize
    alloc.free(big);
    // An ordinary request does not touch the cached oversize block.
    void* small = alloc.allocate(4 * MiB);
    REQUIRE(dev.allocs == 2);
    REQUIRE(dev.log.back() == std::make_pair('a', 20 * MiB));
    REQUIRE(addr(small) != addr(big));
    // An oversize request takes it whole when it wastes less than 20 MiB (here 15 MiB).
    void* p = alloc.allocate(25 * MiB);
    REQUIRE(p == big);
    REQUIRE(alloc.block_size(p) == 40 * MiB);
    REQUIRE(alloc.memory_stats().allocated_bytes == 4 * MiB + 40 * MiB);
    REQUIRE(dev.allocs == 2);
    alloc.free(p);
    // 20 MiB is not above the knob: an ordinary request, so again not the 40 MiB block.
    void* r = alloc.allocate(20 * MiB);
    REQUIRE(addr(r) != addr(big));
    void* s = alloc.allocate(33 * MiB);  // oversize, waste 7 MiB: the cached block
    REQUIRE(s == big);
    alloc.free(s);
    alloc.free(r);
    void* big2 = alloc.allocate(60 * MiB);
    alloc.free(big2);
    size_t raw = dev.allocs;
    void* t = alloc.allocate(35 * MiB);  // best fit is the 40 MiB block (waste 5 MiB)
    REQUIRE(t == big);
    void* u = alloc.allocate(35 * MiB);  // only 60 MiB left: waste 25 MiB, so a new 36 MiB one
    REQUIRE(dev.allocs == raw + 1);
    REQUIRE(dev.log.back() == std::make_pair('a', 36 * MiB));
    REQUIRE(alloc.block_size(u) == 36 * MiB);  // not split (1 MiB tail anyway, and oversize)
    for (void* v : {small, t, u}) alloc.free(v);
  }
}

TEST_CASE("on device OOM the cached segments are released and the allocation retried", "[allocator]") {
  FakeDevice dev(24 * MiB);
  CachingAllocator alloc(dev);

  SECTION("release of fully free segments makes room") {
    alloc.free(alloc.allocate(KiB));      // caches a 2 MiB small segment
    alloc.free(alloc.allocate(3 * MiB));  // caches a 20 MiB large segment
    REQUIRE(dev.used == 22 * MiB);
    void* p = alloc.allocate(21 * MiB);  // a 22 MiB segment: room only after the cache is released
    REQUIRE(p != nullptr);
    auto st = alloc.memory_stats();
    REQUIRE(st.num_alloc_retries == 1);
    REQUIRE(st.num_ooms == 0);
    REQUIRE(st.num_raw_frees == 2);
    REQUIRE(st.reserved_bytes == 22 * MiB);
    REQUIRE(st.segments == 1);
    REQUIRE(dev.used == 22 * MiB);
    const std::vector<std::pair<char, size_t>> expected = {
        {'a', 2 * MiB}, {'a', 20 * MiB}, {'a', 22 * MiB}, {'f', 2 * MiB}, {'f', 20 * MiB},
        {'a', 22 * MiB}};
    REQUIRE(dev.log == expected);
    alloc.free(p);
  }

  SECTION("segments holding a live block are kept") {
    void* live = alloc.allocate(KiB);     // its 2 MiB segment is in use
    alloc.free(alloc.allocate(3 * MiB));  // 20 MiB cached
    void* p = alloc.allocate(21 * MiB);  // 2 MiB in use + 22 MiB fits exactly
    REQUIRE(alloc.memory_stats().num_raw_frees == 1);
    REQUIRE(dev.live.count(addr(live)) == 1);
    REQUIRE(alloc.block_size(live) == KiB);
    alloc.free(live);
    alloc.free(p);
  }

  SECTION("a transient device failure is retried even with nothing cached") {
    dev.fail_next = 1;
    void* p = alloc.allocate(5 * MiB);
    REQUIRE(p != nullptr);
    REQUIRE(alloc.memory_stats().num_alloc_retries == 1);
    REQUIRE(dev.failed == 1);
    alloc.free(p);
  }
}

TEST_CASE("OutOfMemory names the request, allocated, reserved, largest free and device figures",
          "[allocator]") {
  FakeDevice dev(100 * MiB);
  CachingAllocator alloc(dev, {std::numeric_limits<size_t>::max(), "cuda:3"});
  void* a = alloc.allocate(30 * MiB);        // own 30 MiB segment
  void* b = alloc.allocate(3 * MiB);         // 20 MiB segment: 3 used, 17 free
  void* c = alloc.allocate(512 * KiB);       // 2 MiB segment: 0.5 used, 1.5 free
  const size_t allocated = 30 * MiB + 3 * MiB + 512 * KiB;
  const size_t reserved = 30 * MiB + 20 * MiB + 2 * MiB;
  const size_t largest_free = 17 * MiB;
  const size_t request = 50 * MiB + 256 * KiB;  // a 52 MiB segment; the device has 48 MiB left
  auto before = alloc.memory_stats();
  try {
    alloc.allocate(request);
    FAIL("expected OutOfMemory");
  } catch (const OutOfMemory& e) {
    std::string msg = e.what();
    INFO(msg);
    REQUIRE(msg.find("cuda:3 out of memory") != std::string::npos);
    REQUIRE(msg.find("tried to allocate " + mib2(request)) != std::string::npos);
    REQUIRE(mib2(request) == "50.25 MiB");
    REQUIRE(msg.find(mib2(allocated) + " allocated") != std::string::npos);
    REQUIRE(mib2(allocated) == "33.50 MiB");
    REQUIRE(msg.find(mib2(reserved) + " reserved") != std::string::npos);
    REQUIRE(msg.find("largest free cached block " + mib2(largest_free)) != std::string::npos);
    REQUIRE(msg.find(mib2(100 * MiB - reserved) + " free of " + mib2(100 * MiB) + " total") !=
            std::string::npos);
    // Fragmentation: the share of reserved memory that is cached but free.
    char frag[32];
    std::snprintf(frag, sizeof(frag), "%.1f%%", 100.0 * double(reserved - allocated) / reserved);
    REQUIRE(std::string(frag) == "35.6%");
    REQUIRE(msg.find(std::string(frag) + " of reserved") != std::string::npos);
    REQUIRE(e.requested == request);
    REQUIRE(e.allocated == allocated);
    REQUIRE(e.reserved == reserved);
    REQUIRE(e.largest_free == largest_free);
    REQUIRE(e.device_free == 48 * MiB);
    REQUIRE(e.device_total == 100 * MiB);
  }
  // Still an evit::Error for generic handlers, and the allocator is unchanged and usable.
  REQUIRE_THROWS_AS(alloc.allocate(request), Error);
  auto after = alloc.memory_stats();
  REQUIRE(after.num_ooms == before.num_ooms + 2);
  REQUIRE(after.num_alloc_retries == before.num_alloc_retries + 2);
  REQUIRE(after.allocated_bytes == before.allocated_bytes);
  REQUIRE(after.reserved_bytes == before.reserved_bytes);
  REQUIRE(after.num_raw_allocs == before.num_raw_allocs);
  void* d = alloc.allocate(16 * MiB);  // fits the 17 MiB free block
  REQUIRE(addr(d) == addr(b) + 3 * MiB);
  check_invariants(alloc, dev, {{addr(a), 30 * MiB}, {addr(b), 3 * MiB}, {addr(c), 512 * KiB},
                                {addr(d), 16 * MiB}},
                   std::numeric_limits<size_t>::max());
  for (void* p : {a, b, c, d}) alloc.free(p);
}

TEST_CASE("memory_stats tracks current and peak allocated and reserved", "[allocator]") {
  FakeDevice dev(512 * MiB);
  CachingAllocator alloc(dev);
  void* a = alloc.allocate(100 * KiB);  // 2 MiB segment
  void* b = alloc.allocate(5 * MiB);    // 20 MiB segment
  void* c = alloc.allocate(30 * MiB);   // 30 MiB segment
  auto st = alloc.memory_stats();
  REQUIRE(st.allocated_bytes == 100 * KiB + 5 * MiB + 30 * MiB);
  REQUIRE(st.peak_allocated_bytes == st.allocated_bytes);
  REQUIRE(st.reserved_bytes == 52 * MiB);
  REQUIRE(st.active_blocks == 3);
  REQUIRE(st.num_raw_allocs == 3);
  alloc.free(c);
  alloc.free(b);
  st = alloc.memory_stats();
  REQUIRE(st.allocated_bytes == 100 * KiB);
  REQUIRE(st.peak_allocated_bytes == 100 * KiB + 35 * MiB);
  REQUIRE(st.reserved_bytes == 52 * MiB);  // cached, not returned
  alloc.empty_cache();
  st = alloc.memory_stats();
  REQUIRE(st.reserved_bytes == 2 * MiB);
  REQUIRE(st.peak_reserved_bytes == 52 * MiB);
  REQUIRE(st.num_raw_frees == 2);
  alloc.reset_peak_stats();
  st = alloc.memory_stats();
  REQUIRE(st.peak_allocated_bytes == 100 * KiB);
  REQUIRE(st.peak_reserved_bytes == 2 * MiB);
  void* d = alloc.allocate(MiB);
  alloc.free(d);
  REQUIRE(alloc.memory_stats().peak_allocated_bytes == 100 * KiB + MiB);
  alloc.free(a);
}

TEST_CASE("empty_cache returns fully free segments and keeps those in use", "[allocator]") {
  FakeDevice dev(512 * MiB);
  {
    CachingAllocator alloc(dev);
    void* s1 = alloc.allocate(KiB);
    void* s2 = alloc.allocate(MiB);
    void* s3 = alloc.allocate(MiB);  // second small segment (first has 1 MiB - 1 KiB left)
    void* l1 = alloc.allocate(5 * MiB);
    void* l2 = alloc.allocate(40 * MiB);
    REQUIRE(dev.used == 2 * MiB + 2 * MiB + 20 * MiB + 40 * MiB);
    alloc.free(s3);
    alloc.free(l2);
    alloc.free(s2);  // the first small segment still holds s1
    alloc.empty_cache();
    REQUIRE(dev.used == 2 * MiB + 20 * MiB);
    REQUIRE(dev.live.count(addr(s1)) == 1);
    REQUIRE(dev.live.count(addr(l1)) == 1);
    REQUIRE(alloc.block_size(s1) == KiB);
    alloc.free(s1);
    alloc.free(l1);
    alloc.empty_cache();
    REQUIRE(dev.used == 0);
    auto st = alloc.memory_stats();
    REQUIRE(st.reserved_bytes == 0);
    REQUIRE(st.segments == 0);
    REQUIRE(st.num_raw_frees == 4);
    void* again = alloc.allocate(KiB);  // still works from an empty cache
    REQUIRE(dev.used == 2 * MiB);
    alloc.free(again);
  }
  // The destructor returned the cached segment too.
  REQUIRE(dev.used == 0);
  REQUIRE(dev.bad_frees == 0);
}

TEST_CASE("freeing a pointer that is not live is an error and changes nothing", "[allocator]") {
  FakeDevice dev(64 * MiB);
  CachingAllocator alloc(dev, {std::numeric_limits<size_t>::max(), "cuda:1"});
  void* p = alloc.allocate(KiB);
  void* q = alloc.allocate(KiB);
  alloc.free(p);
  auto before = alloc.memory_stats();
  REQUIRE_THROWS_WITH(alloc.free(p), Catch::Contains("double free") && Catch::Contains("cuda:1"));
  REQUIRE_THROWS_WITH(alloc.free(reinterpret_cast<char*>(q) + 512),
                      Catch::Contains("not a live allocation"));
  REQUIRE_THROWS_AS(alloc.block_size(p), Error);
  auto after = alloc.memory_stats();
  REQUIRE(after.allocated_bytes == before.allocated_bytes);
  REQUIRE(after.active_blocks == 1);
  check_invariants(alloc, dev, {{addr(q), KiB}}, std::numeric_limits<size_t>::max());
  alloc.free(q);
}

TEST_CASE("randomized allocate/free keeps every invariant", "[allocator]") {
  for (size_t max_split : {std::numeric_limits<size_t>::max(), 24 * MiB}) {
    for (uint64_t seed : {1u, 2u, 3u}) {
      INFO("seed " << seed << ", max_split_size " << max_split);
      FakeDevice dev(320 * MiB);
      CachingAllocator alloc(dev, {max_split, "cuda:0"});
      std::mt19937_64 rng(seed);
      std::map<uintptr_t, size_t> live;
      size_t peak = 0, ooms = 0, reused = 0;
      auto rand_size = [&]() -> size_t {
        double u = std::uniform_real_distribution<double>(0, 1)(rng);
        auto log_uniform = [&](double lo, double hi) {
          double l = std::uniform_real_distribution<double>(std::log(lo), std::log(hi))(rng);
          return static_cast<size_t>(std::exp(l));
        };
        if (u < 0.65) return log_uniform(1, double(MiB) + 1);       // small pool
        if (u < 0.93) return log_uniform(double(MiB) + 1, 12.0 * MiB);  // shared 20 MiB segments
        return log_uniform(12.0 * MiB, 72.0 * MiB);                  // own segments, oversize
      };
      for (int op = 0; op < 3000; ++op) {
        double u = std::uniform_real_distribution<double>(0, 1)(rng);
        if (u < 0.55 || live.empty()) {
          size_t n = rand_size();
          size_t raw_before = dev.allocs;
          auto st_before = alloc.memory_stats();
          try {
            void* p = alloc.allocate(n);
            REQUIRE(p != nullptr);
            REQUIRE(live.count(addr(p)) == 0);
            live[addr(p)] = n;
            if (dev.allocs == raw_before) {
              ++reused;
            } else {
              // A new segment has exactly the size the rules give, and the block is its start.
              REQUIRE(dev.allocs == raw_before + 1);
              REQUIRE(dev.live.count(addr(p)) == 1);
              REQUIRE(dev.live.at(addr(p)) == expected_segment(n));
            }
          } catch (const OutOfMemory& e) {
            ++ooms;
            // Legitimate: after releasing the cache, the device had no room for the segment.
            REQUIRE(dev.capacity - dev.used < expected_segment(n));
            REQUIRE(e.requested == n);
            auto st = alloc.memory_stats();
            REQUIRE(st.allocated_bytes == st_before.allocated_bytes);
            REQUIRE(st.num_ooms == st_before.num_ooms + 1);
            // Nothing fully free is left cached after the release.
            for (auto& s : alloc.memory_snapshot())
              REQUIRE_FALSE((s.blocks.size() == 1 && !s.blocks[0].allocated));
          }
        } else if (u < 0.985) {
          auto it = live.begin();
          std::advance(it, std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng));
          alloc.free(reinterpret_cast<void*>(it->first));
          live.erase(it);
        } else {
          alloc.empty_cache();
          for (auto& s : alloc.memory_snapshot())
            REQUIRE_FALSE((s.blocks.size() == 1 && !s.blocks[0].allocated));
        }
        size_t allocated = 0;
        for (auto& [a, n] : live) allocated += alloc.block_size(reinterpret_cast<void*>(a));
        peak = std::max(peak, allocated);
        check_invariants(alloc, dev, live, max_split);
        REQUIRE(alloc.memory_stats().peak_allocated_bytes == peak);
      }
      // The run exercised the interesting paths.
      REQUIRE(ooms > 0);
      REQUIRE(reused > 100);
      REQUIRE(alloc.memory_stats().num_alloc_retries >= ooms);
      for (auto& [a, n] : live) alloc.free(reinterpret_cast<void*>(a));
      live.clear();
      check_invariants(alloc, dev, live, max_split);
      alloc.empty_cache();
      REQUIRE(dev.used == 0);
    }
  }
}

TEST_CASE("concurrent allocate/free from several threads never hands out memory twice",
          "[allocator]") {
  // Each thread keeps at most 40 blocks of <= 9 MiB: far below the capacity, so no OOM can occur
  // whatever the interleaving.
  FakeDevice dev(8192 * MiB);
  CachingAllocator alloc(dev);
  std::mutex mu;
  std::map<uintptr_t, size_t> in_use;  // address -> block size, across all threads
  std::atomic<int> overlaps{0}, errors{0};
  auto body = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<void*> mine;
    for (int i = 0; i < 3000; ++i) {
      if (mine.empty() || (mine.size() < 40 && rng() % 100 < 55)) {
        size_t n = rng() % 4 == 0 ? (MiB + rng() % (8 * MiB)) : (1 + rng() % (256 * KiB));
        void* p = alloc.allocate(n);
        size_t sz = alloc.block_size(p);
        std::lock_guard<std::mutex> lock(mu);
        auto next = in_use.lower_bound(addr(p));
        if (next != in_use.end() && next->first < addr(p) + sz) ++overlaps;
        if (next != in_use.begin() && std::prev(next)->first + std::prev(next)->second > addr(p))
          ++overlaps;
        in_use[addr(p)] = sz;
        mine.push_back(p);
      } else {
        size_t k = rng() % mine.size();
        void* p = mine[k];
        mine[k] = mine.back();
        mine.pop_back();
        {
          std::lock_guard<std::mutex> lock(mu);
          in_use.erase(addr(p));
        }
        alloc.free(p);  // after erasing: another thread may get this address at once
      }
    }
    for (void* p : mine) {
      {
        std::lock_guard<std::mutex> lock(mu);
        in_use.erase(addr(p));
      }
      alloc.free(p);
    }
  };
  auto worker = [&](uint64_t seed) {
    try {
      body(seed);
    } catch (...) {
      ++errors;  // Catch2 assertions are not thread-safe: report on the main thread
    }
  };
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 4; ++t) threads.emplace_back(worker, 100 + t);
  for (auto& t : threads) t.join();
  REQUIRE(errors.load() == 0);
  REQUIRE(overlaps.load() == 0);
  auto st = alloc.memory_stats();
  REQUIRE(st.allocated_bytes == 0);
  REQUIRE(st.active_blocks == 0);
  check_invariants(alloc, dev, {}, std::numeric_limits<size_t>::max());
  // With everything free, each segment is a single block again.
  for (auto& s : alloc.memory_snapshot()) REQUIRE(s.blocks.size() == 1);
}
