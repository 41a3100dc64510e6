// CachingPool: the per-device memory allocator under the memory engine. It
// takes large segments from Device::AllocateRaw and carves them with a
// best-fit allocator (block splitting, coalescing of neighbours), so that the
// hot path makes no driver call. Small requests (<= 1 MiB) are served from
// their own 2 MiB segments; large ones from the pre-reserved first segment and
// from segments grown on demand up to a cap. Reuse is stream ordered: a block
// freed on stream S is reusable at once by S; another stream may take it only
// after an event recorded on S after the free has completed (checked with
// Event::IsComplete, never by synchronizing the device). docs/MEMORY.md
// compares the design with PyTorch's caching allocator and cudaMallocAsync.
#ifndef INFERD_CORE_MEMORY_CACHING_POOL_H_
#define INFERD_CORE_MEMORY_CACHING_POOL_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/device/device.h"
#include "core/memory/pool_internal.h"

namespace inferd {

struct CachingPoolOptions {
  // Size of the first segment, reserved at creation (memory_pool_size_mb);
  // rounded up to 2 MiB. 0 reserves nothing up front.
  uint64_t initial_bytes = 0;
  // Upper bound on the bytes of all segments together.
  uint64_t max_reserved_bytes = std::numeric_limits<uint64_t>::max();
  // Before growing, return fully free segments (other than the first) to
  // the driver: none of them fit the request. Costs a FreeRaw (cudaFree,
  // which synchronizes the device) on the growth path; off keeps every
  // segment until ReleaseCached, as PyTorch does, and leaves trimming to the
  // memory engine's GC.
  bool release_free_segments_on_grow = false;
  // Large requests below half of this get a segment of this size (PyTorch
  // uses 20 MiB); larger ones a segment of their own size rounded to 2 MiB.
  uint64_t large_segment_bytes = 20ull << 20;
};

// A consistent snapshot of one pool. "Allocated" counts block sizes after
// rounding (what the pool handed out); "requested" what callers asked for.
struct PoolStats {
  uint64_t reserved_bytes = 0;
  uint64_t allocated_bytes = 0;
  uint64_t requested_bytes = 0;
  uint64_t free_bytes = 0;          // reserved - allocated, cached in blocks
  uint64_t pending_free_bytes = 0;  // freed on a stream, not yet free for others
  uint64_t largest_free_block = 0;
  // 1 - largest_free_block / free_bytes; 0 when nothing is free.
  double fragmentation = 0;
  uint64_t active_blocks = 0;
  uint64_t segments = 0;
  uint64_t alloc_count = 0;
  uint64_t free_count = 0;
  uint64_t segment_alloc_count = 0;  // AllocateRaw calls
  uint64_t segment_free_count = 0;   // FreeRaw calls
  uint64_t released_bytes = 0;       // returned to the driver, in total
  // High-water marks since creation (what cudaMemPoolAttrReservedMemHigh
  // and cudaMemPoolAttrUsedMemHigh report for a CUDA pool).
  uint64_t peak_reserved_bytes = 0;
  uint64_t peak_allocated_bytes = 0;
};

// What ReleaseCached may do.
struct ReleaseOptions {
  // Also release the pre-reserved first segment when it is fully free.
  bool include_initial_segment = false;
  // Record events on streams with blocks freed but not yet known complete
  // and wait for them (without holding the pool lock) so those segments can
  // go too. When false only segments already free for every stream go.
  bool wait_for_pending_frees = true;
};

struct PoolCompaction {
  uint64_t moved_blocks = 0;
  uint64_t moved_bytes = 0;
};

// One block as seen by CheckConsistency callers and tests.
struct PoolBlockView {
  const void* segment_base = nullptr;
  uint64_t segment_size = 0;
  const void* ptr = nullptr;
  uint64_t size = 0;
  bool allocated = false;
  bool small = false;
};

// Thread-safe: every method takes the pool's one mutex. The device must
// outlive the pool. Pointers handed out stay valid until freed or until the
// pool is destroyed (which returns every segment to the driver).
class CachingPool {
 public:
  static constexpr uint64_t kMinBlockSize = 512;         // rounding unit
  static constexpr uint64_t kSmallSize = 1ull << 20;     // small class limit
  static constexpr uint64_t kSmallSegment = 2ull << 20;  // small segments
  static constexpr uint64_t kMidSize = 10ull << 20;      // < this: 20 MiB segment
  static constexpr uint64_t kLargeSegment = 20ull << 20;
  static constexpr uint64_t kSegmentRound = 2ull << 20;  // larger: rounded to this

  // Creates a pool on `device` (borrowed) and reserves the first segment.
  // RESOURCE_EXHAUSTED when the device cannot provide it; INVALID_ARGUMENT
  // when initial_bytes exceeds max_reserved_bytes.
  static absl::StatusOr<std::unique_ptr<CachingPool>> Create(Device& device,
                                                             const CachingPoolOptions& options);
  ~CachingPool();

  CachingPool(const CachingPool&) = delete;
  CachingPool& operator=(const CachingPool&) = delete;

  // Returns a block of at least `bytes` (rounded up to 512) for work on
  // `stream`, which must be a stream of this pool's device. Grows the pool by
  // a segment when no cached block fits. RESOURCE_EXHAUSTED when the cap or
  // the device leaves no room (the caller decides what to reclaim);
  // INVALID_ARGUMENT for a foreign stream or a size that overflows.
  absl::StatusOr<void*> Allocate(uint64_t bytes, Stream& stream);

  // Returns `ptr` to the pool, with the last work using it enqueued on
  // `stream` (work on `stream` after this call may reuse it at once).
  // INVALID_ARGUMENT when `ptr` is not a live block of this pool.
  absl::Status Free(void* ptr, Stream& stream);
  // As above, on the stream the block was allocated on.
  absl::Status Free(void* ptr);

  // Returns the block size of a live allocation, or 0 if `ptr` is not one.
  uint64_t AllocationSize(const void* ptr) const;

  // Returns fully free segments to the driver; returns the bytes released.
  uint64_t ReleaseCached(const ReleaseOptions& options = {});

  // Hands the memory of every block that is free for every stream back to
  // the device (Device::DiscardMemory: host devices return the pages to the
  // system) while the pool keeps the address ranges cached. Returns the
  // bytes of those blocks. O(blocks), under the pool lock.
  uint64_t DiscardFree();

  // Moves allocated blocks for which `can_move(ptr)` is true towards the
  // fullest segments (the first segment first) and to lower addresses, with
  // device-to-device copies enqueued on `stream`, so free space coalesces and
  // sparse segments empty out. Calls `on_moved(old_ptr, new_ptr)` for each
  // move, under the pool lock (it must not call back into the pool). Old
  // blocks are freed on `stream`; new blocks count as allocated on it. The
  // caller must keep everyone off a moved block's data until the copies have
  // run (record an event on `stream`), then may ReleaseCached.
  absl::StatusOr<PoolCompaction> Compact(
      Stream& stream, absl::FunctionRef<bool(void* ptr)> can_move,
      absl::FunctionRef<void(void* old_ptr, void* new_ptr)> on_moved);

  PoolStats GetStats() const;

  // Checks every internal invariant (blocks tile their segments, free blocks
  // are indexed, no two coalescable free neighbours, counters match) and
  // returns INTERNAL describing the first violation. For tests; O(n).
  absl::Status CheckConsistency() const;
  // Returns every block in address order within segments. For tests; O(n).
  std::vector<PoolBlockView> Blocks() const;

  Device& device() const { return device_; }

 private:
  using Block = pool_internal::Block;
  using Segment = pool_internal::Segment;
  using FreeIndex = pool_internal::FreeIndex;
  using StreamState = pool_internal::StreamState;

  CachingPool(Device& device, const CachingPoolOptions& options);

  absl::StatusOr<int> StreamIndex(Stream& stream) const;
  absl::StatusOr<Block*> AllocateBlockLocked(uint64_t size, int stream, bool small)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Block* FindFitLocked(uint64_t size, int stream, bool small) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Block*> GrowLocked(uint64_t size, bool small) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Block* TakeLocked(Block* block, uint64_t size, uint64_t min_remainder)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeBlockLocked(Block* block, int stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Block* MergeLocked(Block* into, Block* other) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void InsertFreeLocked(Block* block) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseFreeLocked(Block* block) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  FreeIndex& SetForLocked(const Block* block) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const FreeIndex& SetForLocked(const Block* block) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t SetIndex(const Block* block) const;
  size_t PendingIndex(bool small, int stream) const;
  // Records an event on `stream` covering every block freed on it so far.
  void CoverPendingLocked(int stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Polls recorded events and makes covered blocks free for every stream.
  void PollEventsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MakeReadyLocked(Block* block) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns the events to wait for so that blocks of the `small` class
  // pending on streams other than `except_stream` become free for everyone
  // (recording covering events as needed).
  std::vector<Event*> PendingEventsLocked(bool small, int except_stream)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Event* TakeEventLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves fully free segments from the pool to unlinked_ (to be freed by
  // the caller after unlocking); returns their bytes.
  uint64_t UnlinkFreeSegmentsLocked(bool include_initial) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Block* NewBlockLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeleteBlockLocked(Block* block) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  Device& device_;
  const CachingPoolOptions options_;
  const int num_streams_;

  mutable absl::Mutex mu_;
  pool_internal::BlockArena arena_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Segment>> segments_ ABSL_GUARDED_BY(mu_);
  // Free blocks usable by every stream, per class ([0] large, [1] small).
  std::vector<FreeIndex> ready_ ABSL_GUARDED_BY(mu_);
  // Free blocks usable only by their stream until an event covers them:
  // pending_[small * num_streams_ + stream].
  std::vector<FreeIndex> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<StreamState> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Event>> events_ ABSL_GUARDED_BY(mu_);  // all created
  std::vector<Event*> idle_events_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uintptr_t, Block*> live_ ABSL_GUARDED_BY(mu_);
  std::vector<void*> unlinked_ ABSL_GUARDED_BY(mu_);  // segments to FreeRaw
  PoolStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_MEMORY_CACHING_POOL_H_
