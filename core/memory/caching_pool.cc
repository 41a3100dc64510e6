#include "core/memory/caching_pool.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/check.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

using pool_internal::Block;
using pool_internal::FreeIndex;
using pool_internal::Segment;

// Rounds `x` up to a multiple of `m` (a power of two); false on overflow.
bool RoundUp(uint64_t x, uint64_t m, uint64_t* out) {
  uint64_t sum;
  if (__builtin_add_overflow(x, m - 1, &sum)) return false;
  *out = sum & ~(m - 1);
  return true;
}

// Blocks are kept as integers for address arithmetic; callers get pointers.
void* AsPtr(uintptr_t addr) {
  return reinterpret_cast<void*>(addr);  // NOLINT(performance-no-int-to-ptr)
}

}  // namespace

CachingPool::CachingPool(Device& device, const CachingPoolOptions& options)
    : device_(device), options_(options), num_streams_(std::max(1, device.num_streams())) {
  absl::MutexLock lock(&mu_);
  for (int c = 0; c < 2; ++c) ready_.emplace_back(kMinBlockSize);
  for (int i = 0; i < 2 * num_streams_; ++i) pending_.emplace_back(kMinBlockSize);
  streams_.resize(static_cast<size_t>(num_streams_));
  for (int i = 0; i < num_streams_; ++i)
    streams_[static_cast<size_t>(i)].stream = &device.stream(i);
  live_.reserve(4096);
}

absl::StatusOr<std::unique_ptr<CachingPool>> CachingPool::Create(
    Device& device, const CachingPoolOptions& options) {
  if (options.max_reserved_bytes < kMinBlockSize) {
    return absl::InvalidArgumentError(absl::StrCat("device ", device.index(), ": pool cap of ",
                                                   options.max_reserved_bytes,
                                                   " bytes is below the minimum block size"));
  }
  if (options.initial_bytes > options.max_reserved_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("device ", device.index(), ": initial pool size ", options.initial_bytes,
                     " bytes exceeds the pool cap of ", options.max_reserved_bytes, " bytes"));
  }
  std::unique_ptr<CachingPool> pool(new CachingPool(device, options));
  if (options.initial_bytes > 0) {
    uint64_t size;
    if (!RoundUp(options.initial_bytes, kSegmentRound, &size) ||
        size > options.max_reserved_bytes) {
      size = options.max_reserved_bytes & ~(kMinBlockSize - 1);
    }
    absl::MutexLock lock(&pool->mu_);
    absl::StatusOr<void*> raw = device.AllocateRaw(size);
    if (!raw.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat("device ", device.index(),
                                                       ": cannot reserve the initial pool of ",
                                                       size, " bytes: ", raw.status().message()));
    }
    auto segment = std::make_unique<Segment>();
    segment->base = reinterpret_cast<uintptr_t>(*raw);
    segment->size = size;
    segment->initial = true;
    Block* b = pool->NewBlockLocked();
    b->addr = segment->base;
    b->size = size;
    b->segment = segment.get();
    segment->first = b;
    pool->segments_.push_back(std::move(segment));
    pool->stats_.reserved_bytes += size;
    pool->stats_.peak_reserved_bytes = size;
    pool->stats_.segment_alloc_count++;
    pool->InsertFreeLocked(b);
  }
  return pool;
}

CachingPool::~CachingPool() {
  absl::MutexLock lock(&mu_);
  // Recorded events may still be referenced by stream work.
  for (StreamState& st : streams_) {
    for (auto& [event, seq] : st.in_flight) event->Synchronize().IgnoreError();
  }
  if (!live_.empty()) {
    INFERD_LOG(kWarning, "device ", device_.index(), ": memory pool destroyed with ", live_.size(),
               " live blocks");
  }
  for (auto& segment : segments_) device_.FreeRaw(AsPtr(segment->base));
}

absl::StatusOr<int> CachingPool::StreamIndex(Stream& stream) const {
  const int id = stream.id();
  if (&stream.device() != &device_ || id < 0 || id >= num_streams_ ||
      &device_.stream(id) != &stream) {
    return absl::InvalidArgumentError(absl::StrCat("stream ", id, " of device ",
                                                   stream.device().index(),
                                                   " does not belong to device ", device_.index()));
  }
  return id;
}

absl::StatusOr<void*> CachingPool::Allocate(uint64_t bytes, Stream& stream) {
  ASSIGN_OR_RETURN(const int s, StreamIndex(stream));
  uint64_t size;
  if (!RoundUp(std::max<uint64_t>(bytes, 1), kMinBlockSize, &size)) {
    return absl::InvalidArgumentError(absl::StrCat("allocation of ", bytes, " bytes overflows"));
  }
  const bool small = size <= kSmallSize;
  mu_.Lock();
  absl::StatusOr<Block*> block = AllocateBlockLocked(size, s, small);
  if (!block.ok() && absl::IsResourceExhausted(block.status())) {
    // Blocks freed on other streams become usable once their work is done:
    // wait for those streams' events (not the device), then retry.
    std::vector<Event*> waits = PendingEventsLocked(small, s);
    if (!waits.empty()) {
      mu_.Unlock();
      for (Event* e : waits) e->Synchronize().IgnoreError();
      mu_.Lock();
      PollEventsLocked();
      block = AllocateBlockLocked(size, s, small);
    }
  }
  std::vector<void*> to_free;
  if (!unlinked_.empty()) to_free.swap(unlinked_);
  if (!block.ok()) {
    mu_.Unlock();
    for (void* p : to_free) device_.FreeRaw(p);
    return block.status();
  }
  Block* b = *block;
  b->requested = bytes;
  stats_.requested_bytes += bytes;
  live_.emplace(b->addr, b);
  mu_.Unlock();
  for (void* p : to_free) device_.FreeRaw(p);
  return AsPtr(b->addr);
}

absl::StatusOr<Block*> CachingPool::AllocateBlockLocked(uint64_t size, int stream, bool small) {
  Block* b = FindFitLocked(size, stream, small);
  if (b == nullptr) {
    // Slow path: let earlier frees on other streams become usable by this
    // one, and this stream's own become usable by all (and releasable).
    for (int t = 0; t < num_streams_; ++t) CoverPendingLocked(t);
    PollEventsLocked();
    b = FindFitLocked(size, stream, small);
  }
  if (b == nullptr) {
    // Fully free segments did not fit: hand them back rather than keep them
    // next to the new one (the caller frees them after unlocking).
    if (options_.release_free_segments_on_grow) UnlinkFreeSegmentsLocked(false);
    ASSIGN_OR_RETURN(Block * grown, GrowLocked(size, small));
    b = TakeLocked(grown, size, small ? kMinBlockSize : kSmallSize + kMinBlockSize);
  }
  b->allocated = true;
  b->pending = false;
  b->stream = stream;
  b->segment->allocated_bytes += b->size;
  stats_.allocated_bytes += b->size;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  stats_.active_blocks++;
  stats_.alloc_count++;
  return b;
}

Block* CachingPool::FindFitLocked(uint64_t size, int stream, bool small) {
  Block* best = ready_[small ? 1 : 0].BestFit(size);
  Block* p = pending_[PendingIndex(small, stream)].BestFit(size);
  if (p != nullptr && (best == nullptr || FreeIndex::Better(p, best))) best = p;
  if (best == nullptr) return nullptr;
  return TakeLocked(best, size, small ? kMinBlockSize : kSmallSize + kMinBlockSize);
}

Block* CachingPool::TakeLocked(Block* block, uint64_t size, uint64_t min_remainder) {
  SetForLocked(block).Erase(block);
  if (block->pending) stats_.pending_free_bytes -= block->size;
  if (block->size - size >= min_remainder && block->size > size) {
    Block* rest = NewBlockLocked();
    rest->addr = block->addr + size;
    rest->size = block->size - size;
    rest->segment = block->segment;
    rest->prev = block;
    rest->next = block->next;
    if (block->next != nullptr) block->next->prev = rest;
    block->next = rest;
    rest->pending = block->pending;
    rest->stream = block->stream;
    rest->free_seq = block->free_seq;
    block->size = size;
    if (rest->pending) {
      // Takes the block's place in its stream's free order.
      StreamState& st = streams_[static_cast<size_t>(rest->stream)];
      rest->fifo_prev = block;
      rest->fifo_next = block->fifo_next;
      if (block->fifo_next != nullptr) {
        block->fifo_next->fifo_prev = rest;
      } else {
        st.fifo_tail = rest;
      }
      block->fifo_next = rest;
      stats_.pending_free_bytes += rest->size;
    }
    SetForLocked(rest).Insert(rest);
  }
  if (block->pending) {
    StreamState& st = streams_[static_cast<size_t>(block->stream)];
    if (block->fifo_prev != nullptr) {
      block->fifo_prev->fifo_next = block->fifo_next;
    } else {
      st.fifo_head = block->fifo_next;
    }
    if (block->fifo_next != nullptr) {
      block->fifo_next->fifo_prev = block->fifo_prev;
    } else {
      st.fifo_tail = block->fifo_prev;
    }
    block->fifo_prev = block->fifo_next = nullptr;
    block->pending = false;
  }
  return block;
}

absl::StatusOr<Block*> CachingPool::GrowLocked(uint64_t size, bool small) {
  uint64_t preferred = kSmallSegment;
  if (!small) {
    if (size < options_.large_segment_bytes / 2) {
      preferred = options_.large_segment_bytes;
    } else if (!RoundUp(size, kSegmentRound, &preferred)) {
      preferred = size;
    }
  }
  uint64_t fitted = size;
  if (!RoundUp(size, kSegmentRound, &fitted)) fitted = size;
  const uint64_t room = options_.max_reserved_bytes > stats_.reserved_bytes
                            ? options_.max_reserved_bytes - stats_.reserved_bytes
                            : 0;
  absl::Status last = absl::ResourceExhaustedError(
      absl::StrCat("device ", device_.index(), ": pool cannot grow by ", size, " bytes (reserved ",
                   stats_.reserved_bytes, " of at most ", options_.max_reserved_bytes, " bytes)"));
  uint64_t tried = 0;
  for (uint64_t seg : {preferred, fitted, size}) {
    if (seg < size || seg > room || seg == tried) continue;
    tried = seg;
    absl::StatusOr<void*> raw = device_.AllocateRaw(seg);
    if (!raw.ok()) {
      last = raw.status();
      continue;
    }
    auto segment = std::make_unique<Segment>();
    segment->base = reinterpret_cast<uintptr_t>(*raw);
    segment->size = seg;
    segment->small = small;
    Block* b = NewBlockLocked();
    b->addr = segment->base;
    b->size = seg;
    b->segment = segment.get();
    segment->first = b;
    segments_.push_back(std::move(segment));
    stats_.reserved_bytes += seg;
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
    stats_.segment_alloc_count++;
    InsertFreeLocked(b);
    return b;
  }
  return last;
}

absl::Status CachingPool::Free(void* ptr, Stream& stream) {
  ASSIGN_OR_RETURN(const int s, StreamIndex(stream));
  absl::MutexLock lock(&mu_);
  auto it = live_.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == live_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("device ", device_.index(), ": free of a pointer the pool did not allocate"));
  }
  Block* b = it->second;
  live_.erase(it);
  FreeBlockLocked(b, s);
  return absl::OkStatus();
}

absl::Status CachingPool::Free(void* ptr) {
  int s;
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == live_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "device ", device_.index(), ": free of a pointer the pool did not allocate"));
    }
    Block* b = it->second;
    s = b->stream;
    live_.erase(it);
    FreeBlockLocked(b, s);
  }
  return absl::OkStatus();
}

void CachingPool::FreeBlockLocked(Block* block, int stream) {
  block->segment->allocated_bytes -= block->size;
  stats_.allocated_bytes -= block->size;
  stats_.requested_bytes -= block->requested;
  stats_.active_blocks--;
  stats_.free_count++;
  block->allocated = false;
  block->requested = 0;
  block->pending = true;
  block->stream = stream;
  block->free_seq = ++streams_[static_cast<size_t>(stream)].free_seq;
  // Coalesce with free neighbours that `stream` may use: ready ones and
  // those pending on the same stream. The result is pending on `stream`, so
  // a ready neighbour absorbed may bring another block pending on `stream`
  // next to it: keep going (at most two steps each way).
  auto mergeable = [stream](const Block* n) {
    return n != nullptr && !n->allocated && (!n->pending || n->stream == stream);
  };
  Block* b = block;
  while (mergeable(b->prev)) {
    Block* prev = b->prev;
    EraseFreeLocked(prev);
    b = MergeLocked(prev, b);
  }
  while (mergeable(b->next)) {
    Block* next = b->next;
    EraseFreeLocked(next);
    b = MergeLocked(b, next);
  }
  b->pending = true;
  b->stream = stream;
  b->free_seq = streams_[static_cast<size_t>(stream)].free_seq;
  InsertFreeLocked(b);
}

Block* CachingPool::MergeLocked(Block* into, Block* other) {
  // `into` is the lower-addressed neighbour; `other` follows it.
  INFERD_CHECK(into->next == other);
  into->size += other->size;
  into->next = other->next;
  if (other->next != nullptr) other->next->prev = into;
  DeleteBlockLocked(other);
  return into;
}

size_t CachingPool::PendingIndex(bool small, int stream) const {
  return (small ? static_cast<size_t>(num_streams_) : 0) + static_cast<size_t>(stream);
}

// Index of the set holding `block` when free: ready_ for ready blocks,
// pending_ for pending ones.
size_t CachingPool::SetIndex(const Block* block) const {
  const bool small = block->segment->small;
  if (!block->pending) return small ? 1 : 0;
  return PendingIndex(small, block->stream);
}

FreeIndex& CachingPool::SetForLocked(const Block* block) {
  return block->pending ? pending_[SetIndex(block)] : ready_[SetIndex(block)];
}

const FreeIndex& CachingPool::SetForLocked(const Block* block) const {
  return block->pending ? pending_[SetIndex(block)] : ready_[SetIndex(block)];
}

void CachingPool::InsertFreeLocked(Block* block) {
  SetForLocked(block).Insert(block);
  if (!block->pending) return;
  stats_.pending_free_bytes += block->size;
  StreamState& st = streams_[static_cast<size_t>(block->stream)];
  block->fifo_next = nullptr;
  block->fifo_prev = st.fifo_tail;
  if (st.fifo_tail != nullptr) {
    st.fifo_tail->fifo_next = block;
  } else {
    st.fifo_head = block;
  }
  st.fifo_tail = block;
}

void CachingPool::EraseFreeLocked(Block* block) {
  SetForLocked(block).Erase(block);
  if (!block->pending) return;
  stats_.pending_free_bytes -= block->size;
  StreamState& st = streams_[static_cast<size_t>(block->stream)];
  if (block->fifo_prev != nullptr) {
    block->fifo_prev->fifo_next = block->fifo_next;
  } else {
    st.fifo_head = block->fifo_next;
  }
  if (block->fifo_next != nullptr) {
    block->fifo_next->fifo_prev = block->fifo_prev;
  } else {
    st.fifo_tail = block->fifo_prev;
  }
  block->fifo_prev = block->fifo_next = nullptr;
}

void CachingPool::CoverPendingLocked(int stream) {
  StreamState& st = streams_[static_cast<size_t>(stream)];
  if (st.fifo_tail == nullptr || st.fifo_tail->free_seq <= st.covered_seq) return;
  Event* event = TakeEventLocked();
  absl::Status recorded = st.stream->RecordEvent(*event);
  if (!recorded.ok()) {
    INFERD_LOG(kWarning, "device ", device_.index(), ": cannot record a pool event on stream ",
               stream, ": ", recorded.message());
    idle_events_.push_back(event);
    return;
  }
  st.in_flight.emplace_back(event, st.free_seq);
  st.covered_seq = st.free_seq;
}

void CachingPool::PollEventsLocked() {
  for (StreamState& st : streams_) {
    while (!st.in_flight.empty() && st.in_flight.front().first->IsComplete()) {
      st.completed_seq = st.in_flight.front().second;
      idle_events_.push_back(st.in_flight.front().first);
      st.in_flight.pop_front();
    }
    while (st.fifo_head != nullptr && st.fifo_head->free_seq <= st.completed_seq) {
      MakeReadyLocked(st.fifo_head);
    }
  }
}

void CachingPool::MakeReadyLocked(Block* block) {
  EraseFreeLocked(block);
  block->pending = false;
  block->stream = -1;
  block->free_seq = 0;
  auto ready = [](const Block* n) { return n != nullptr && !n->allocated && !n->pending; };
  Block* b = block;
  if (ready(b->prev)) {
    Block* prev = b->prev;
    EraseFreeLocked(prev);
    b = MergeLocked(prev, b);
  }
  if (ready(b->next)) {
    Block* next = b->next;
    EraseFreeLocked(next);
    b = MergeLocked(b, next);
  }
  InsertFreeLocked(b);
}

std::vector<Event*> CachingPool::PendingEventsLocked(bool small, int except_stream) {
  std::vector<Event*> waits;
  for (int t = 0; t < num_streams_; ++t) {
    if (t == except_stream) continue;
    const FreeIndex& set = pending_[PendingIndex(small, t)];
    if (set.empty()) continue;
    // Any pending block may coalesce into a fit once ready, so wait for all.
    CoverPendingLocked(t);
    StreamState& st = streams_[static_cast<size_t>(t)];
    if (!st.in_flight.empty()) waits.push_back(st.in_flight.back().first);
  }
  return waits;
}

Event* CachingPool::TakeEventLocked() {
  if (!idle_events_.empty()) {
    Event* e = idle_events_.back();
    idle_events_.pop_back();
    return e;
  }
  events_.push_back(device_.CreateEvent());
  return events_.back().get();
}

uint64_t CachingPool::AllocationSize(const void* ptr) const {
  absl::MutexLock lock(&mu_);
  auto it = live_.find(reinterpret_cast<uintptr_t>(ptr));
  return it == live_.end() ? 0 : it->second->size;
}

uint64_t CachingPool::ReleaseCached(const ReleaseOptions& options) {
  mu_.Lock();
  PollEventsLocked();
  if (options.wait_for_pending_frees) {
    std::vector<Event*> waits;
    for (int t = 0; t < num_streams_; ++t) {
      CoverPendingLocked(t);
      StreamState& st = streams_[static_cast<size_t>(t)];
      if (!st.in_flight.empty()) waits.push_back(st.in_flight.back().first);
    }
    if (!waits.empty()) {
      mu_.Unlock();
      for (Event* e : waits) e->Synchronize().IgnoreError();
      mu_.Lock();
      PollEventsLocked();
    }
  }
  // Unlink releasable segments under the lock; return them to the driver
  // (which may synchronize) after unlocking.
  const uint64_t released = UnlinkFreeSegmentsLocked(options.include_initial_segment);
  std::vector<void*> to_free;
  to_free.swap(unlinked_);
  mu_.Unlock();
  for (void* p : to_free) device_.FreeRaw(p);
  return released;
}

uint64_t CachingPool::UnlinkFreeSegmentsLocked(bool include_initial) {
  uint64_t released = 0;
  for (auto it = segments_.begin(); it != segments_.end();) {
    Segment* sg = it->get();
    Block* b = sg->first;
    const bool whole_ready = sg->allocated_bytes == 0 && b->next == nullptr && !b->pending &&
                             !b->allocated && b->size == sg->size;
    if (!whole_ready || (sg->initial && !include_initial)) {
      ++it;
      continue;
    }
    EraseFreeLocked(b);
    DeleteBlockLocked(b);
    unlinked_.push_back(AsPtr(sg->base));
    released += sg->size;
    stats_.reserved_bytes -= sg->size;
    stats_.segment_free_count++;
    it = segments_.erase(it);
  }
  stats_.released_bytes += released;
  return released;
}

absl::StatusOr<PoolCompaction> CachingPool::Compact(
    Stream& stream, absl::FunctionRef<bool(void* ptr)> can_move,
    absl::FunctionRef<void(void* old_ptr, void* new_ptr)> on_moved) {
  ASSIGN_OR_RETURN(const int c, StreamIndex(stream));
  absl::MutexLock lock(&mu_);
  PollEventsLocked();
  // Rank segments: the permanent first segment, then the fullest ones.
  std::vector<Segment*> order;
  order.reserve(segments_.size());
  for (auto& sg : segments_) order.push_back(sg.get());
  std::stable_sort(order.begin(), order.end(), [](const Segment* a, const Segment* b) {
    if (a->initial != b->initial) return a->initial;
    return a->allocated_bytes > b->allocated_bytes;
  });
  for (size_t i = 0; i < order.size(); ++i) order[i]->rank = static_cast<int>(i);
  auto better = [](const Block* f, const Block* b) {
    if (f->segment->rank != b->segment->rank) return f->segment->rank < b->segment->rank;
    return f->addr < b->addr;
  };
  std::vector<Block*> candidates;
  for (Segment* sg : order) {
    for (Block* b = sg->first; b != nullptr; b = b->next) {
      if (b->allocated && can_move(AsPtr(b->addr))) candidates.push_back(b);
    }
  }
  // Worst-placed first: they have the most room to improve.
  std::sort(candidates.begin(), candidates.end(),
            [&](const Block* a, const Block* b) { return better(b, a); });
  PoolCompaction result;
  for (Block* b : candidates) {
    const bool small = b->segment->small;
    // The best-placed fit: lowest segment rank, then smallest, then lowest
    // address. (Compaction is off the hot path; a linear scan is fine.)
    Block* target = nullptr;
    auto preferred = [](const Block* f, const Block* t) {
      if (f->segment->rank != t->segment->rank) return f->segment->rank < t->segment->rank;
      if (f->size != t->size) return f->size < t->size;
      return f->addr < t->addr;
    };
    for (FreeIndex* set : {&ready_[small ? 1 : 0], &pending_[PendingIndex(small, c)]}) {
      set->ForEachAtLeast(b->size, [&](Block* f) {
        if (better(f, b) && (target == nullptr || preferred(f, target))) target = f;
      });
    }
    if (target == nullptr) continue;
    Block* nb = TakeLocked(target, b->size, kMinBlockSize);
    absl::Status copied = stream.CopyDeviceToDevice(AsPtr(nb->addr), AsPtr(b->addr), b->size);
    nb->allocated = true;
    nb->stream = c;
    nb->segment->allocated_bytes += nb->size;
    stats_.allocated_bytes += nb->size;
    stats_.active_blocks++;
    if (!copied.ok()) {
      FreeBlockLocked(nb, c);
      stats_.free_count--;
      return copied;
    }
    nb->requested = b->requested;
    stats_.requested_bytes += nb->requested;
    on_moved(AsPtr(b->addr), AsPtr(nb->addr));
    live_.erase(b->addr);
    live_.emplace(nb->addr, nb);
    result.moved_blocks++;
    result.moved_bytes += b->size;
    FreeBlockLocked(b, c);
    stats_.free_count--;  // a move is neither an allocation nor a free
  }
  return result;
}

PoolStats CachingPool::GetStats() const {
  absl::MutexLock lock(&mu_);
  PoolStats s = stats_;
  s.segments = segments_.size();
  s.free_bytes = s.reserved_bytes - s.allocated_bytes;
  uint64_t largest = 0;
  for (const std::vector<FreeIndex>* sets : {&ready_, &pending_}) {
    for (const FreeIndex& set : *sets) {
      if (const Block* b = set.Largest()) largest = std::max(largest, b->size);
    }
  }
  s.largest_free_block = largest;
  s.fragmentation = s.free_bytes == 0
                        ? 0.0
                        : 1.0 - static_cast<double>(largest) / static_cast<double>(s.free_bytes);
  return s;
}

absl::Status CachingPool::CheckConsistency() const {
  absl::MutexLock lock(&mu_);
  auto fail = [](auto&&... parts) { return absl::InternalError(absl::StrCat(parts...)); };
  uint64_t reserved = 0, allocated = 0, requested = 0, active = 0, free_blocks = 0, pending = 0;
  for (const auto& sg : segments_) {
    reserved += sg->size;
    uint64_t expect = sg->base, seg_alloc = 0;
    const Block* prev = nullptr;
    for (const Block* b = sg->first; b != nullptr; prev = b, b = b->next) {
      if (b->addr != expect) return fail("block at ", b->addr, " does not follow ", expect);
      if (b->prev != prev || b->segment != sg.get()) return fail("bad links at ", b->addr);
      if (b->size == 0 || b->size % kMinBlockSize != 0) return fail("bad size ", b->size);
      expect += b->size;
      if (b->allocated) {
        seg_alloc += b->size;
        requested += b->requested;
        ++active;
        auto it = live_.find(b->addr);
        if (it == live_.end() || it->second != b) return fail("allocated block not live");
        continue;
      }
      ++free_blocks;
      if (b->pending) pending += b->size;
      const FreeIndex& set = SetForLocked(b);
      if (!set.Contains(b)) return fail("free block not indexed");
      if (prev != nullptr && !prev->allocated && prev->pending == b->pending &&
          (!b->pending || prev->stream == b->stream)) {
        return fail("uncoalesced free neighbours at ", b->addr, " (pending ", b->pending,
                    " on stream ", b->stream, ", seq ", prev->free_seq, " and ", b->free_seq, ")");
      }
    }
    if (expect != sg->base + sg->size) return fail("blocks do not tile segment ", sg->base);
    if (seg_alloc != sg->allocated_bytes) return fail("segment allocated bytes mismatch");
    allocated += seg_alloc;
  }
  size_t indexed = 0;
  for (const FreeIndex& set : ready_) indexed += set.size();
  for (const FreeIndex& set : pending_) indexed += set.size();
  if (indexed != free_blocks)
    return fail("free sets hold ", indexed, " blocks, segments ", free_blocks);
  for (size_t t = 0; t < streams_.size(); ++t) {
    uint64_t last_seq = 0;
    size_t n = 0;
    for (const Block* b = streams_[t].fifo_head; b != nullptr; b = b->fifo_next, ++n) {
      if (!b->pending || b->stream != static_cast<int>(t) || b->free_seq < last_seq) {
        return fail("stream ", t, " free order broken");
      }
      last_seq = b->free_seq;
    }
    if (n != pending_[t].size() + pending_[streams_.size() + t].size()) {
      return fail("stream ", t, " free order misses blocks");
    }
  }
  if (reserved != stats_.reserved_bytes || allocated != stats_.allocated_bytes ||
      requested != stats_.requested_bytes || active != stats_.active_blocks ||
      active != live_.size() || pending != stats_.pending_free_bytes) {
    return fail("counters disagree: reserved ", reserved, "/", stats_.reserved_bytes, " allocated ",
                allocated, "/", stats_.allocated_bytes, " requested ", requested, "/",
                stats_.requested_bytes, " active ", active, "/", stats_.active_blocks, "/",
                live_.size(), " pending ", pending, "/", stats_.pending_free_bytes);
  }
  return absl::OkStatus();
}

uint64_t CachingPool::DiscardFree() {
  absl::MutexLock lock(&mu_);
  // Blocks freed on a stream become free for everyone once an event after
  // their last use completes: record those events (work done by now makes
  // them complete at once); blocks still in use on a stream wait for the
  // next call.
  for (size_t s = 0; s < streams_.size(); ++s) CoverPendingLocked(static_cast<int>(s));
  PollEventsLocked();
  uint64_t bytes = 0;
  for (const auto& sg : segments_) {
    for (const Block* b = sg->first; b != nullptr; b = b->next) {
      if (b->allocated || b->pending) continue;
      device_.DiscardMemory(AsPtr(b->addr), b->size);
      bytes += b->size;
    }
  }
  return bytes;
}

std::vector<PoolBlockView> CachingPool::Blocks() const {
  absl::MutexLock lock(&mu_);
  std::vector<PoolBlockView> out;
  for (const auto& sg : segments_) {
    for (const Block* b = sg->first; b != nullptr; b = b->next) {
      out.push_back({AsPtr(sg->base), sg->size, AsPtr(b->addr), b->size, b->allocated, sg->small});
    }
  }
  return out;
}

Block* CachingPool::NewBlockLocked() { return arena_.New(); }
void CachingPool::DeleteBlockLocked(Block* block) { arena_.Delete(block); }

}  // namespace inferd
