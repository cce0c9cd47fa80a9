// The block manager of evit's CUDA caching allocator, written against an abstract device-memory
// interface so that all of its logic (pools, best-fit, split, merge, OOM retry, statistics) is
// plain C++ that the CPU test suite exercises with a fake device. The CUDA backend supplies a
// DeviceMemory over cudaMalloc/cudaFree/cudaMemGetInfo; nothing here includes CUDA headers.
//
// Design (docs/cuda-allocator.md has the numbers and the reasons):
// - Requests are rounded up to 512 B. Rounded requests <= 1 MiB are served from the small pool,
//   whose segments (device allocations) are 2 MiB; larger ones from the large pool, whose
//   segments are 20 MiB for requests <= 10 MiB and the request rounded up to 2 MiB otherwise.
// - A segment is tiled by blocks (address-ordered, doubly linked). Free blocks of each pool sit
//   in a std::set ordered by (size, address): a lookup takes the smallest block that fits.
// - A block is split when the remainder is >= 512 B (small pool) or > 1 MiB (large pool).
// - Freeing marks the block free and merges it with free neighbours in the same segment; blocks
//   of different segments never merge, even when the device placed them back to back.
// - One stream, no events: a freed block is reusable at once (stream order protects it).
// - When the device refuses a segment, every fully free cached segment is returned and the
//   device is asked once more; if it still refuses, evit::OutOfMemory is thrown.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"

namespace evit {

// Raw device memory. Implementations: the CUDA backend (cudaMalloc/cudaFree/cudaMemGetInfo) and
// the tests' fake device. Calls are made with the allocator's mutex held, one at a time.
struct DeviceMemory {
  virtual ~DeviceMemory() = default;
  // Returns `bytes` of device memory, or nullptr when the device is out of memory. Other
  // failures may throw; the allocator's state is unchanged when they do.
  virtual void* raw_alloc(size_t bytes) = 0;
  // Returns memory obtained from raw_alloc (exactly once per pointer).
  virtual void raw_free(void* ptr) = 0;
  // (free, total) bytes of the device, as cudaMemGetInfo reports them. Used for OOM messages.
  virtual std::pair<size_t, size_t> mem_info() = 0;
};

// Thrown when a request cannot be met even after releasing the cache. The message gives the
// figures in MiB with two decimals; the fields carry them in bytes for programs.
class OutOfMemory : public Error {
 public:
  OutOfMemory(const std::string& message, size_t requested, size_t allocated, size_t reserved,
              size_t largest_free, size_t device_free, size_t device_total)
      : Error(message),
        requested(requested),
        allocated(allocated),
        reserved(reserved),
        largest_free(largest_free),
        device_free(device_free),
        device_total(device_total) {}
  size_t requested, allocated, reserved, largest_free, device_free, device_total;
};

// Counters of one allocator. Byte counts of blocks are the block sizes handed out (rounded, and
// including any remainder too small to split off), so allocated <= reserved always holds.
struct AllocatorStats {
  size_t allocated_bytes = 0;       // bytes in blocks handed out and not yet freed
  size_t peak_allocated_bytes = 0;  // highest allocated_bytes since creation / reset_peak_stats
  size_t requested_bytes = 0;       // the callers' own sizes of those blocks (before rounding)
  size_t reserved_bytes = 0;        // bytes held from the device (all segments)
  size_t peak_reserved_bytes = 0;
  size_t active_blocks = 0;         // blocks handed out and not yet freed
  size_t segments = 0;              // segments held from the device
  size_t num_raw_allocs = 0;        // successful DeviceMemory::raw_alloc calls
  size_t num_raw_frees = 0;         // DeviceMemory::raw_free calls
  size_t num_alloc_retries = 0;     // raw_alloc failures that led to releasing the cache + retry
  size_t num_ooms = 0;              // OutOfMemory exceptions thrown
};

// One block of a segment, as memory_snapshot() reports it.
struct BlockInfo {
  uintptr_t address = 0;
  size_t size = 0;
  bool allocated = false;
  size_t requested = 0;  // the caller's size when allocated, 0 when free
};

// One segment (device allocation) and the blocks that tile it, in address order.
struct SegmentInfo {
  uintptr_t address = 0;
  size_t size = 0;
  bool small_pool = false;
  std::vector<BlockInfo> blocks;
};

struct CachingAllocatorOptions {
  // Cached blocks larger than this are "oversize": they are never split, requests of at most
  // this size never take them, and a larger request takes one only when it wastes less than
  // 20 MiB. Limits fragmentation from huge blocks being carved up by small requests. Must be
  // >= 20 MiB (the large-pool segment) or left unlimited.
  size_t max_split_size = std::numeric_limits<size_t>::max();
  // Names the device in OOM messages ("cuda:0").
  std::string device_name = "cuda";
};

class CachingAllocator {
 public:
  static constexpr size_t kMinBlockSize = 512;            // rounding unit, smallest small split
  static constexpr size_t kSmallSize = size_t(1) << 20;   // largest small-pool request (1 MiB)
  static constexpr size_t kSmallBuffer = size_t(2) << 20; // small-pool segment (2 MiB)
  static constexpr size_t kMinLargeAlloc = size_t(10) << 20;  // largest request for a 20 MiB one
  static constexpr size_t kLargeBuffer = size_t(20) << 20;    // shared large-pool segment
  static constexpr size_t kRoundLarge = size_t(2) << 20;      // rounding of other large segments
  // Larger requests are refused outright (rounding them would overflow size_t).
  static constexpr size_t kMaxRequest = size_t(1) << 62;

  // `device` must outlive the allocator. Throws evit::Error on a bad max_split_size.
  explicit CachingAllocator(DeviceMemory& device, CachingAllocatorOptions options = {});
  // Returns every fully free segment to the device. Segments that still hold live blocks are left
  // with the device on purpose: something may still point into them.
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Returns a block of at least `bytes` (512-byte aligned relative to its segment), nullptr for 0.
  // Throws evit::OutOfMemory when the device cannot supply it even after releasing the cache.
  void* allocate(size_t bytes);
  // Returns a block from allocate() to the cache (nullptr is ignored). A pointer this allocator
  // does not have live (foreign, or freed twice) is an evit::Error and changes nothing.
  void free(void* ptr);
  // The size of the live block at `ptr` (>= the request). Throws evit::Error for other pointers.
  size_t block_size(void* ptr);

  // Returns every fully free segment to the device (cudaFree). Live blocks are untouched.
  void empty_cache();
  AllocatorStats memory_stats();
  // Sets the peaks to the current values.
  void reset_peak_stats();
  // All segments in address order with their blocks; for tests, debugging and reports.
  std::vector<SegmentInfo> memory_snapshot();

  size_t max_split_size() const { return options_.max_split_size; }

 private:
  struct Block {
    uintptr_t addr = 0;
    size_t size = 0;
    size_t requested = 0;
    bool allocated = false;
    bool small_pool = false;
    Block* prev = nullptr;  // neighbours within the same segment only
    Block* next = nullptr;
  };
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->addr < b->addr;
    }
  };
  using Pool = std::set<Block*, BySizeThenAddress>;

  static size_t round_size(size_t bytes);
  static size_t segment_size(size_t rounded);
  Pool& pool_for(bool small) { return small ? small_pool_ : large_pool_; }
  Block* find_free_block(Pool& pool, size_t size);
  bool should_split(const Block* block, size_t size) const;
  Block* new_segment(size_t size, size_t bytes, bool small);
  void release_segment(Block* head);
  void release_cached_segments();
  size_t largest_free_block() const;
  [[noreturn]] void throw_oom(size_t bytes, size_t seg_size);

  DeviceMemory& device_;
  CachingAllocatorOptions options_;
  std::mutex mu_;
  Pool small_pool_, large_pool_;                  // free blocks
  std::unordered_map<uintptr_t, Block*> live_;    // allocated blocks by address
  struct Segment {
    Block* head;  // the block at the segment's start: merges never remove it
    size_t size;  // as obtained from the device
  };
  std::map<uintptr_t, Segment> segments_;         // every segment held, by address
  AllocatorStats stats_;
};

}  // namespace evit
