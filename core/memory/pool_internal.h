// Internal data structures of CachingPool: intrusive blocks and segments,
// recycled block and tree-node storage (so that the hot path allocates
// nothing from the heap), and per-stream event bookkeeping. Not thread-safe:
// the owning pool guards all of it with its mutex. Include only from
// caching_pool.{h,cc}.
#ifndef INFERD_CORE_MEMORY_POOL_INTERNAL_H_
#define INFERD_CORE_MEMORY_POOL_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <new>
#include <set>
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

// Recycles tree nodes of one size. Not thread-safe.
class NodeCache {
 public:
  NodeCache() = default;
  NodeCache(const NodeCache&) = delete;
  NodeCache& operator=(const NodeCache&) = delete;
  ~NodeCache() {
    while (head_ != nullptr) {
      Node* n = head_;
      head_ = n->next;
      ::operator delete(n);
    }
  }
  void* Get(size_t size) {
    if (node_size_ == 0 && size >= sizeof(Node)) node_size_ = size;
    if (size == node_size_ && head_ != nullptr) {
      Node* n = head_;
      head_ = n->next;
      return n;
    }
    return ::operator new(size);
  }
  void Put(void* p, size_t size) {
    if (size != node_size_) {
      ::operator delete(p);
      return;
    }
    Node* n = static_cast<Node*>(p);
    n->next = head_;
    head_ = n;
  }

 private:
  struct Node {
    Node* next;
  };
  size_t node_size_ = 0;
  Node* head_ = nullptr;
};

// std::allocator replacement drawing single nodes from a NodeCache.
template <class T>
class CachedAllocator {
 public:
  using value_type = T;
  explicit CachedAllocator(NodeCache* cache) : cache_(cache) {}
  template <class U>
  CachedAllocator(const CachedAllocator<U>& other) : cache_(other.cache()) {}  // NOLINT
  T* allocate(size_t n) {
    if (n == 1) return static_cast<T*>(cache_->Get(sizeof(T)));
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) {
    if (n == 1) {
      cache_->Put(p, sizeof(T));
    } else {
      ::operator delete(p);
    }
  }
  NodeCache* cache() const { return cache_; }
  template <class U>
  bool operator==(const CachedAllocator<U>& o) const {
    return cache_ == o.cache();
  }

 private:
  NodeCache* cache_;
};

// Orders free blocks by (size, address): lower_bound gives the best fit.
struct BySizeAddr {
  using is_transparent = void;
  struct Key {
    uint64_t size;
    uintptr_t addr;
  };
  bool operator()(const Block* a, const Block* b) const {
    return a->size != b->size ? a->size < b->size : a->addr < b->addr;
  }
  bool operator()(const Block* a, const Key& k) const {
    return a->size != k.size ? a->size < k.size : a->addr < k.addr;
  }
  bool operator()(const Key& k, const Block* b) const {
    return k.size != b->size ? k.size < b->size : k.addr < b->addr;
  }
};

using FreeSet = std::set<Block*, BySizeAddr, CachedAllocator<Block*>>;

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
