// Internal data structures of CachingPool: intrusive blocks and segments,
// the binned free-block index, recycled block storage (so that the hot path allocates
// nothing from the heap), and per-stream event bookkeeping. Not thread-safe:
// the owning pool guards all of it with its mutex. Include only from
// caching_pool.{h,cc}.
#ifndef INFERD_CORE_MEMORY_POOL_INTERNAL_H_
#define INFERD_CORE_MEMORY_POOL_INTERNAL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "core/device/device.h"

namespace inferd::pool_internal {

struct Segment;

// A contiguous range of a segment, allocated or free. Blocks of a segment
// form an address-ordered doubly linked list (prev/next).
struct Block {
  uintptr_t addr = 0;
  uint64_t size = 0;
  uint64_t requested = 0;  // allocated blocks: the size asked for
  Segment* segment = nullptr;
  Block* prev = nullptr;  // address neighbours in the segment
  Block* next = nullptr;
  // Allocated: the stream it was allocated on. Free and pending: the stream
  // it was freed on. Free and ready: -1.
  int stream = -1;
  bool allocated = false;
  bool pending = false;
  uint64_t free_seq = 0;  // pending blocks: order of the free on `stream`
  // Pending blocks of one stream, in free_seq order.
  Block* fifo_prev = nullptr;
  Block* fifo_next = nullptr;
  Block* next_spare = nullptr;  // BlockArena free list
  // Free blocks: links of their FreeIndex bin.
  Block* free_prev = nullptr;
  Block* free_next = nullptr;
  int bin = -1;
};

struct Segment {
  uintptr_t base = 0;
  uint64_t size = 0;
  bool small = false;
  bool initial = false;
  uint64_t allocated_bytes = 0;
  Block* first = nullptr;
  int rank = 0;  // compaction order; lower is preferred
};

// Free blocks of one class and readiness, indexed for best fit in O(1)
// amortized: segregated bins (eight per power of two of the size, exact
// below 4 KiB), each an intrusive doubly linked list, with a bitmap of the
// non-empty bins. BestFit scans the request's own bin (only it can hold
// blocks smaller than the request) and then the first non-empty bin above
// it, returning the smallest fitting block (ties: the lowest address). A bin
// longer than kMaxScan is scanned only that far, which keeps a pathological
// pool of thousands of same-sized free blocks O(1) at the cost of a
// near-best fit. Not thread-safe. Replaces a std::set ordered by (size,
// address), whose rebalancing and node chasing took half of an alloc+free
// pair on the mixed-size trace.
class FreeIndex {
 public:
  static constexpr int kNumBins = 448;
  static constexpr int kMaxScan = 64;

  // Block sizes are positive multiples of `unit`, a power of two.
  explicit FreeIndex(uint64_t unit) : unit_(unit) {}
  FreeIndex(const FreeIndex&) = delete;
  FreeIndex& operator=(const FreeIndex&) = delete;
  FreeIndex(FreeIndex&&) = default;

  // Whether free block `a` is a better fit than `b` for a request both
  // hold: smaller, then lower address.
  static bool Better(const Block* a, const Block* b) {
    return a->size != b->size ? a->size < b->size : a->addr < b->addr;
  }

  // Bin of a block size.
  int BinOf(uint64_t size) const {
    const uint64_t s = size / unit_;
    if (s < 8) return static_cast<int>(s);
    const int e = 63 - __builtin_clzll(s);  // >= 3
    return (e - 2) * 8 + static_cast<int>((s >> (e - 3)) & 7);
  }

  void Insert(Block* b) {
    const int bin = BinOf(b->size);
    b->bin = bin;
    b->free_prev = nullptr;
    b->free_next = heads_[static_cast<size_t>(bin)];
    if (b->free_next != nullptr) b->free_next->free_prev = b;
    heads_[static_cast<size_t>(bin)] = b;
    bits_[static_cast<size_t>(bin) / 64] |= 1ull << (bin % 64);
    ++size_;
  }

  void Erase(Block* b) {
    const size_t bin = static_cast<size_t>(b->bin);
    if (b->free_prev != nullptr) {
      b->free_prev->free_next = b->free_next;
    } else {
      heads_[bin] = b->free_next;
      if (b->free_next == nullptr) bits_[bin / 64] &= ~(1ull << (bin % 64));
    }
    if (b->free_next != nullptr) b->free_next->free_prev = b->free_prev;
    b->free_prev = b->free_next = nullptr;
    b->bin = -1;
    --size_;
  }

  // The smallest block of at least `size` bytes (lowest address among
  // equals), or null.
  Block* BestFit(uint64_t size) const {
    const int bin = BinOf(size);
    Block* best = Scan(heads_[static_cast<size_t>(bin)], size);
    if (best != nullptr) return best;
    const int next = NextNonEmpty(bin + 1);
    return next < 0 ? nullptr : Scan(heads_[static_cast<size_t>(next)], 0);
  }

  // The largest block, or null.
  Block* Largest() const {
    for (int w = kWords - 1; w >= 0; --w) {
      if (bits_[static_cast<size_t>(w)] == 0) continue;
      const int bin = w * 64 + 63 - __builtin_clzll(bits_[static_cast<size_t>(w)]);
      Block* largest = nullptr;
      for (Block* b = heads_[static_cast<size_t>(bin)]; b != nullptr; b = b->free_next) {
        if (largest == nullptr || b->size > largest->size) largest = b;
      }
      return largest;
    }
    return nullptr;
  }

  bool Contains(const Block* b) const {
    if (b->bin < 0 || b->bin >= kNumBins) return false;
    for (const Block* x = heads_[static_cast<size_t>(b->bin)]; x != nullptr; x = x->free_next) {
      if (x == b) return true;
    }
    return false;
  }

  // Calls f(block) for every block of at least `size` bytes (any order).
  template <class F>
  void ForEachAtLeast(uint64_t size, F&& f) const {
    for (int bin = NextNonEmpty(BinOf(size)); bin >= 0; bin = NextNonEmpty(bin + 1)) {
      for (Block* b = heads_[static_cast<size_t>(bin)]; b != nullptr; b = b->free_next) {
        if (b->size >= size) f(b);
      }
    }
  }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

 private:
  static constexpr int kWords = kNumBins / 64;

  static Block* Scan(Block* head, uint64_t size) {
    Block* best = nullptr;
    int n = 0;
    for (Block* b = head; b != nullptr && n < kMaxScan; b = b->free_next, ++n) {
      if (b->size < size) continue;
      if (best == nullptr || Better(b, best)) best = b;
    }
    return best;
  }

  int NextNonEmpty(int from) const {
    if (from >= kNumBins) return -1;
    int w = from / 64;
    uint64_t word = bits_[static_cast<size_t>(w)] & (~0ull << (from % 64));
    while (word == 0) {
      if (++w >= kWords) return -1;
      word = bits_[static_cast<size_t>(w)];
    }
    return w * 64 + __builtin_ctzll(word);
  }

  uint64_t unit_;
  std::array<Block*, kNumBins> heads_{};
  std::array<uint64_t, kWords> bits_{};
  size_t size_ = 0;
};

// Recycles Block structs. Not thread-safe.
class BlockArena {
 public:
  BlockArena() = default;
  BlockArena(const BlockArena&) = delete;
  BlockArena& operator=(const BlockArena&) = delete;
  Block* New() {
    if (spare_ == nullptr) {
      chunks_.push_back(std::make_unique<Block[]>(kChunk));
      Block* chunk = chunks_.back().get();
      for (size_t i = 0; i < kChunk; ++i) {
        chunk[i].next_spare = spare_;
        spare_ = &chunk[i];
      }
    }
    Block* b = spare_;
    spare_ = b->next_spare;
    *b = Block();
    return b;
  }
  void Delete(Block* b) {
    b->next_spare = spare_;
    spare_ = b;
  }

 private:
  static constexpr size_t kChunk = 256;
  std::vector<std::unique_ptr<Block[]>> chunks_;
  Block* spare_ = nullptr;
};

// Per-stream bookkeeping for stream-ordered reuse.
struct StreamState {
  Stream* stream = nullptr;
  uint64_t free_seq = 0;       // last sequence number given to a free
  uint64_t covered_seq = 0;    // highest free_seq covered by a recorded event
  uint64_t completed_seq = 0;  // highest free_seq known to have completed
  std::deque<std::pair<Event*, uint64_t>> in_flight;  // recorded, not yet seen complete
  Block* fifo_head = nullptr;                         // pending blocks, oldest first
  Block* fifo_tail = nullptr;
};

}  // namespace inferd::pool_internal

#endif  // INFERD_CORE_MEMORY_POOL_INTERNAL_H_
