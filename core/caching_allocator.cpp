#include "core/caching_allocator.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <tuple>

namespace evit {

namespace {

std::string mib(size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string hex(uintptr_t addr) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(addr));
  return buf;
}

}  // namespace

CachingAllocator::CachingAllocator(DeviceMemory& device, CachingAllocatorOptions options)
    : device_(device), options_(std::move(options)) {
  // Below 20 MiB the knob would make the shared 20 MiB segments themselves oversize (never split),
  // so every mid-sized request would pin a whole 20 MiB segment.
  EVIT_CHECK(options_.max_split_size >= kLargeBuffer,
             "caching allocator: max_split_size must be at least 20 MiB (", kLargeBuffer,
             " bytes), got ", options_.max_split_size, " bytes");
}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_segments();
  // Blocks of segments still in use: forget the bookkeeping, keep the device memory (see header).
  for (auto& [addr, seg] : segments_) {
    for (Block* b = seg.head; b != nullptr;) {
      Block* next = b->next;
      delete b;
      b = next;
    }
  }
}

size_t CachingAllocator::round_size(size_t bytes) {
  return (bytes + kMinBlockSize - 1) / kMinBlockSize * kMinBlockSize;
}

size_t CachingAllocator::segment_size(size_t rounded) {
  if (rounded <= kSmallSize) return kSmallBuffer;
  // Mid-sized requests share 20 MiB segments, so a stream of 2-10 MiB activations does not pay
  // one cudaMalloc each; bigger ones get their own segment with at most 2 MiB of slack.
  if (rounded <= kMinLargeAlloc) return kLargeBuffer;
  return (rounded + kRoundLarge - 1) / kRoundLarge * kRoundLarge;
}

CachingAllocator::Block* CachingAllocator::find_free_block(Pool& pool, size_t size) {
  Block key;
  key.size = size;
  key.addr = 0;
  auto it = pool.lower_bound(&key);  // smallest block of at least `size` (lowest address on ties)
  if (it == pool.end()) return nullptr;
  Block* b = *it;
  const size_t max_split = options_.max_split_size;
  // An ordinary request must not take an oversize block: it would keep all of it (oversize blocks
  // are not split). Every later block in the set is at least as large, so none fits.
  if (size <= max_split && b->size > max_split) return nullptr;
  // An oversize request takes an oversize block whole, but only when little of it is wasted.
  if (size > max_split && b->size - size >= kLargeBuffer) return nullptr;
  return b;
}

bool CachingAllocator::should_split(const Block* block, size_t size) const {
  const size_t remaining = block->size - size;
  if (block->small_pool) return remaining >= kMinBlockSize;
  // Large pool: remainders of 1 MiB or less would only serve small-pool-sized requests, which never
  // look here, so they stay with the block. Oversize requests keep their block whole.
  return size <= options_.max_split_size && remaining > kSmallSize;
}

CachingAllocator::Block* CachingAllocator::new_segment(size_t size, size_t bytes, bool small) {
  const size_t seg = segment_size(size);
  auto b = std::make_unique<Block>();  // before raw_alloc: a bad_alloc here cannot leak a segment
  void* p = device_.raw_alloc(seg);
  if (p == nullptr) {
    // The device is full, but our cache may hold whole free segments: give them back and retry.
    ++stats_.num_alloc_retries;
    release_cached_segments();
    p = device_.raw_alloc(seg);
    if (p == nullptr) throw_oom(bytes, seg);
  }
  ++stats_.num_raw_allocs;
  ++stats_.segments;
  stats_.reserved_bytes += seg;
  if (stats_.reserved_bytes > stats_.peak_reserved_bytes)
    stats_.peak_reserved_bytes = stats_.reserved_bytes;
  b->addr = reinterpret_cast<uintptr_t>(p);
  b->size = seg;
  b->small_pool = small;
  segments_[b->addr] = Segment{b.get(), seg};
  return b.release();
}

void CachingAllocator::release_segment(Block* head) {
  // Precondition: head is the only block of its segment, and it is free and in its pool.
  pool_for(head->small_pool).erase(head);
  segments_.erase(head->addr);
  stats_.reserved_bytes -= head->size;
  --stats_.segments;
  ++stats_.num_raw_frees;
  void* p = reinterpret_cast<void*>(head->addr);
  delete head;
  device_.raw_free(p);
}

void CachingAllocator::release_cached_segments() {
  std::vector<Block*> whole;
  for (auto& [addr, seg] : segments_)
    if (!seg.head->allocated && seg.head->next == nullptr) whole.push_back(seg.head);
  for (Block* head : whole) release_segment(head);
}

size_t CachingAllocator::largest_free_block() const {
  size_t largest = 0;
  if (!small_pool_.empty()) largest = (*small_pool_.rbegin())->size;
  if (!large_pool_.empty()) largest = std::max(largest, (*large_pool_.rbegin())->size);
  return largest;
}

void CachingAllocator::throw_oom(size_t bytes, size_t seg_size) {
  ++stats_.num_ooms;
  size_t dev_free = 0, dev_total = 0;
  try {
    std::tie(dev_free, dev_total) = device_.mem_info();
  } catch (...) {
    // The OOM is the error worth reporting; a failing query only leaves the figures at zero.
  }
  const size_t allocated = stats_.allocated_bytes, reserved = stats_.reserved_bytes;
  const size_t largest = largest_free_block();
  const double frag = reserved == 0 ? 0.0 : 100.0 * static_cast<double>(reserved - allocated) /
                                                static_cast<double>(reserved);
  char pct[32];
  std::snprintf(pct, sizeof(pct), "%.1f%%", frag);
  std::string msg = options_.device_name + " out of memory: tried to allocate " + mib(bytes) +
                    " (a new segment of " + mib(seg_size) + "); " + mib(allocated) +
                    " allocated, " + mib(reserved) + " reserved by evit, largest free cached block " +
                    mib(largest) + ", " + pct + " of reserved is cached but free (fragmentation)" +
                    "; the device reports " + mib(dev_free) + " free of " + mib(dev_total) +
                    " total";
  if (reserved > allocated && largest < bytes && reserved - allocated >= bytes)
    msg += ". Enough memory is cached but fragmented: try setting max_split_size";
  throw OutOfMemory(msg, bytes, allocated, reserved, largest, dev_free, dev_total);
}

void* CachingAllocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  EVIT_CHECK(bytes <= kMaxRequest, "caching allocator: request of ", bytes,
             " bytes is larger than any device");
  const size_t size = round_size(bytes);
  const bool small = size <= kSmallSize;
  // Made before any bookkeeping changes, so that running out of host memory leaves them intact.
  auto spare = std::make_unique<Block>();
  std::lock_guard<std::mutex> lock(mu_);
  Pool& pool = pool_for(small);
  Block* b = find_free_block(pool, size);
  if (b != nullptr) {
    pool.erase(b);
  } else {
    b = new_segment(size, bytes, small);  // may throw; nothing has been changed before it
  }
  if (should_split(b, size)) {
    // Keep the front for the caller; the tail stays free in the same pool and segment.
    Block* rest = spare.release();
    rest->addr = b->addr + size;
    rest->size = b->size - size;
    rest->small_pool = b->small_pool;
    rest->prev = b;
    rest->next = b->next;
    if (b->next != nullptr) b->next->prev = rest;
    b->next = rest;
    b->size = size;
    pool.insert(rest);
  }
  b->allocated = true;
  b->requested = bytes;
  live_[b->addr] = b;
  ++stats_.active_blocks;
  stats_.allocated_bytes += b->size;
  stats_.requested_bytes += bytes;
  if (stats_.allocated_bytes > stats_.peak_allocated_bytes)
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  return reinterpret_cast<void*>(b->addr);
}

void CachingAllocator::free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(reinterpret_cast<uintptr_t>(ptr));
  EVIT_CHECK(it != live_.end(), "caching allocator (", options_.device_name, "): free of ",
             hex(reinterpret_cast<uintptr_t>(ptr)),
             ", which is not a live allocation of this allocator (double free or foreign pointer)");
  Block* b = it->second;
  live_.erase(it);
  --stats_.active_blocks;
  stats_.allocated_bytes -= b->size;
  stats_.requested_bytes -= b->requested;
  b->allocated = false;
  b->requested = 0;
  Pool& pool = pool_for(b->small_pool);
  // Merge with a free successor: b absorbs it.
  if (Block* n = b->next; n != nullptr && !n->allocated) {
    pool.erase(n);
    b->size += n->size;
    b->next = n->next;
    if (n->next != nullptr) n->next->prev = b;
    delete n;
  }
  // Merge with a free predecessor: it absorbs b (a segment's first block is never absorbed, so the
  // segments_ map stays valid).
  if (Block* p = b->prev; p != nullptr && !p->allocated) {
    pool.erase(p);  // its size changes, so it must leave the ordered set first
    p->size += b->size;
    p->next = b->next;
    if (b->next != nullptr) b->next->prev = p;
    delete b;
    b = p;
  }
  pool.insert(b);
}

size_t CachingAllocator::block_size(void* ptr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(reinterpret_cast<uintptr_t>(ptr));
  EVIT_CHECK(it != live_.end(), "caching allocator (", options_.device_name, "): ",
             hex(reinterpret_cast<uintptr_t>(ptr)), " is not a live allocation of this allocator");
  return it->second->size;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_segments();
}

AllocatorStats CachingAllocator::memory_stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

std::vector<SegmentInfo> CachingAllocator::memory_snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SegmentInfo> out;
  out.reserve(segments_.size());
  for (auto& [addr, seg] : segments_) {
    SegmentInfo s;
    s.address = addr;
    s.size = seg.size;
    s.small_pool = seg.head->small_pool;
    for (Block* b = seg.head; b != nullptr; b = b->next)
      s.blocks.push_back({b->addr, b->size, b->allocated, b->requested});
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace evit
