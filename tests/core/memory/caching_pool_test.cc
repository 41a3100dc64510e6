#include "core/memory/caching_pool.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/device/host_device.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

std::unique_ptr<HostDevice> MakeDevice(uint64_t capacity, bool inline_when_idle = true) {
  HostDeviceOptions o;
  o.capacity_bytes = capacity;
  o.num_streams = 2;
  o.inline_when_idle = inline_when_idle;
  return std::make_unique<HostDevice>(o);
}

std::unique_ptr<CachingPool> MakePool(Device& device, uint64_t initial,
                                      uint64_t cap = std::numeric_limits<uint64_t>::max()) {
  CachingPoolOptions o;
  o.initial_bytes = initial;
  o.max_reserved_bytes = cap;
  auto pool = CachingPool::Create(device, o);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return std::move(pool).value();
}

void* Alloc(CachingPool& pool, uint64_t bytes, Stream& stream) {
  auto p = pool.Allocate(bytes, stream);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : nullptr;
}

TEST(CachingPoolTest, ReservesInitialSegmentAndServesLargeBlocksFromIt) {
  auto dev = MakeDevice(256 * kMiB);
  auto pool = MakePool(*dev, 64 * kMiB);
  EXPECT_EQ(pool->GetStats().reserved_bytes, 64 * kMiB);
  EXPECT_EQ(dev->GetMemoryInfo()->free_bytes, 192 * kMiB);
  void* a = Alloc(*pool, 3 * kMiB + 1, dev->stream(0));
  PoolStats s = pool->GetStats();
  EXPECT_EQ(s.segments, 1u);
  EXPECT_EQ(s.segment_alloc_count, 1u);
  EXPECT_EQ(s.allocated_bytes, 3 * kMiB + 512);
  EXPECT_EQ(s.requested_bytes, 3 * kMiB + 1);
  EXPECT_EQ(pool->AllocationSize(a), 3 * kMiB + 512);
  ASSERT_TRUE(pool->Free(a).ok());
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
}

TEST(CachingPoolTest, SmallRequestsGetRoundedBlocksFromSmallSegments) {
  auto dev = MakeDevice(256 * kMiB);
  auto pool = MakePool(*dev, 64 * kMiB);
  void* a = Alloc(*pool, 100, dev->stream(0));
  void* b = Alloc(*pool, CachingPool::kSmallSize, dev->stream(0));
  void* c = Alloc(*pool, CachingPool::kSmallSize + 1, dev->stream(0));
  EXPECT_EQ(pool->AllocationSize(a), 512u);
  EXPECT_EQ(pool->AllocationSize(b), CachingPool::kSmallSize);
  PoolStats s = pool->GetStats();
  EXPECT_EQ(s.segments, 2u);  // the initial one and one 2 MiB small segment
  EXPECT_EQ(s.reserved_bytes, 64 * kMiB + CachingPool::kSmallSegment);
  for (const PoolBlockView& v : pool->Blocks()) {
    if (v.ptr == a || v.ptr == b) {
      EXPECT_TRUE(v.small);
      EXPECT_EQ(v.segment_size, CachingPool::kSmallSegment);
    }
    if (v.ptr == c) {
      EXPECT_FALSE(v.small);
    }
  }
  // Two small blocks are adjacent in the same small segment.
  EXPECT_EQ(static_cast<char*>(b) - static_cast<char*>(a), 512);
  for (void* p : {a, b, c}) ASSERT_TRUE(pool->Free(p).ok());
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
}

TEST(CachingPoolTest, CoalescesNeighboursBackIntoOneBlock) {
  auto dev = MakeDevice(256 * kMiB);
  auto pool = MakePool(*dev, 32 * kMiB);
  Stream& s = dev->stream(0);
  void* a = Alloc(*pool, 4 * kMiB, s);
  void* b = Alloc(*pool, 4 * kMiB, s);
  void* c = Alloc(*pool, 4 * kMiB, s);
  ASSERT_TRUE(pool->Free(a).ok());
  ASSERT_TRUE(pool->Free(c).ok());
  PoolStats mid = pool->GetStats();
  EXPECT_EQ(mid.largest_free_block, 24 * kMiB);  // c merged with the tail
  EXPECT_GT(mid.fragmentation, 0.0);
  ASSERT_TRUE(pool->Free(b).ok());
  PoolStats end = pool->GetStats();
  EXPECT_EQ(end.largest_free_block, 32 * kMiB);
  EXPECT_EQ(end.fragmentation, 0.0);
  EXPECT_EQ(pool->Blocks().size(), 1u);
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
}

TEST(CachingPoolTest, BestFitTakesTheSmallestHoleThatFits) {
  auto dev = MakeDevice(256 * kMiB);
  auto pool = MakePool(*dev, 32 * kMiB);
  Stream& s = dev->stream(0);
  void* big_hole = Alloc(*pool, 6 * kMiB, s);
  void* keep1 = Alloc(*pool, 2 * kMiB, s);
  void* small_hole = Alloc(*pool, 3 * kMiB, s);
  void* keep2 = Alloc(*pool, 2 * kMiB, s);
  ASSERT_TRUE(pool->Free(big_hole).ok());
  ASSERT_TRUE(pool->Free(small_hole).ok());
  EXPECT_EQ(Alloc(*pool, 3 * kMiB, s), small_hole);
  EXPECT_EQ(Alloc(*pool, 5 * kMiB, s), big_hole);
  (void)keep1;
  (void)keep2;
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
}

TEST(CachingPoolTest, GrowsBySegmentsUpToTheCapThenFails) {
  auto dev = MakeDevice(1024 * kMiB);
  auto pool = MakePool(*dev, 0, 48 * kMiB);
  Stream& s = dev->stream(0);
  Alloc(*pool, 4 * kMiB, s);  // < 10 MiB: one 20 MiB segment
  EXPECT_EQ(pool->GetStats().reserved_bytes, 20 * kMiB);
  Alloc(*pool, 17 * kMiB, s);  // doesn't fit the remaining 16 MiB: a new 18 MiB one
  EXPECT_EQ(pool->GetStats().reserved_bytes, 38 * kMiB);
  auto over = pool->Allocate(17 * kMiB, s);  // 18 MiB more would pass the cap
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pool->GetStats().segment_alloc_count, 2u);
}

TEST(CachingPoolTest, FallsBackToAnExactSegmentWhenThePreferredOneDoesNotFit) {
  auto dev = MakeDevice(8 * kMiB);
  auto pool = MakePool(*dev, 0);
  void* p = Alloc(*pool, 5 * kMiB, dev->stream(0));  // 20 MiB preferred; 6 MiB fits
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(pool->GetStats().reserved_bytes, 6 * kMiB);
}

TEST(CachingPoolTest, RejectsForeignPointersDoubleFreesAndForeignStreams) {
  auto dev = MakeDevice(64 * kMiB);
  auto other = MakeDevice(64 * kMiB);
  auto pool = MakePool(*dev, 8 * kMiB);
  void* a = Alloc(*pool, 1000, dev->stream(0));
  int x = 0;
  EXPECT_EQ(pool->Free(&x).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(pool->Free(a).ok());
  EXPECT_EQ(pool->Free(a).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool->Allocate(10, other->stream(0)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CachingPoolTest, ReleaseCachedReturnsFreeSegmentsButKeepsTheReservation) {
  auto dev = MakeDevice(256 * kMiB);
  auto pool = MakePool(*dev, 16 * kMiB);
  Stream& s = dev->stream(0);
  void* a = Alloc(*pool, 30 * kMiB, s);
  void* b = Alloc(*pool, 10, s);
  EXPECT_EQ(pool->GetStats().segments, 3u);
  ASSERT_TRUE(pool->Free(a).ok());
  ASSERT_TRUE(pool->Free(b).ok());
  EXPECT_EQ(pool->ReleaseCached(), 30 * kMiB + CachingPool::kSmallSegment);
  PoolStats st = pool->GetStats();
  EXPECT_EQ(st.reserved_bytes, 16 * kMiB);
  EXPECT_EQ(st.segment_free_count, 2u);
  EXPECT_EQ(dev->GetMemoryInfo()->free_bytes, 240 * kMiB);
  ReleaseOptions all;
  all.include_initial_segment = true;
  EXPECT_EQ(pool->ReleaseCached(all), 16 * kMiB);
  EXPECT_EQ(dev->GetMemoryInfo()->free_bytes, 256 * kMiB);
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
}

TEST(CachingPoolTest, CanReturnFreeSegmentsBeforeGrowing) {
  auto dev = MakeDevice(256 * kMiB);
  CachingPoolOptions o;
  o.release_free_segments_on_grow = true;
  auto pool = CachingPool::Create(*dev, o);
  ASSERT_TRUE(pool.ok());
  Stream& s = dev->stream(0);
  void* a = Alloc(**pool, 30 * kMiB, s);
  ASSERT_TRUE((*pool)->Free(a).ok());
  Alloc(**pool, 40 * kMiB, s);  // the free 30 MiB segment cannot serve it
  PoolStats st = (*pool)->GetStats();
  EXPECT_EQ(st.reserved_bytes, 40 * kMiB);
  EXPECT_EQ(st.segment_free_count, 1u);
  EXPECT_EQ(dev->GetMemoryInfo()->free_bytes, 216 * kMiB);
}

TEST(CachingPoolTest, ConcurrentChurnFromManyThreadsStaysConsistent) {
  auto dev = MakeDevice(1024 * kMiB, /*inline_when_idle=*/false);
  auto pool = MakePool(*dev, 64 * kMiB);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t) + 1);
      std::vector<void*> mine;
      for (int op = 0; op < 3000; ++op) {
        Stream& s = dev->stream(static_cast<int>(rng() % 2));
        if (mine.empty() || (mine.size() < 16 && rng() % 2 == 0)) {
          auto p = pool->Allocate(256ull << (rng() % 15), s);
          ASSERT_TRUE(p.ok()) << p.status();
          *static_cast<int*>(*p) = t;  // a byte no other thread may own
          mine.push_back(*p);
        } else {
          const size_t i = rng() % mine.size();
          ASSERT_EQ(*static_cast<int*>(mine[i]), t);
          ASSERT_TRUE(pool->Free(mine[i], s).ok());
          mine.erase(mine.begin() + static_cast<long>(i));
        }
      }
      for (void* p : mine) ASSERT_TRUE(pool->Free(p).ok());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
  EXPECT_EQ(pool->GetStats().allocated_bytes, 0u);
}

// Blocks stream 0 of `dev` until the returned notification fires.
std::shared_ptr<absl::Notification> BlockStream(Stream& s, std::atomic<bool>* passed) {
  auto gate = std::make_shared<absl::Notification>();
  EXPECT_TRUE(s.ThenCallback([gate, passed](absl::Status) {
                 gate->WaitForNotification();
                 passed->store(true);
               }).ok());
  return gate;
}

TEST(CachingPoolTest, SameStreamReusesAFreedBlockAtOnce) {
  auto dev = MakeDevice(64 * kMiB, /*inline_when_idle=*/false);
  auto pool = MakePool(*dev, 0, 2 * kMiB);
  Stream& s0 = dev->stream(0);
  void* a = Alloc(*pool, kMiB, s0);
  std::atomic<bool> passed{false};
  auto gate = BlockStream(s0, &passed);
  ASSERT_TRUE(pool->Free(a, s0).ok());
  // Stream 0 is still busy, yet its own later work may use the block.
  EXPECT_EQ(Alloc(*pool, kMiB, s0), a);
  gate->Notify();
  ASSERT_TRUE(s0.Synchronize().ok());
}

// Verifies that a block freed on a busy stream is not handed to another
// stream (the pool grows instead), and is once the event recorded after the
// free has completed.
TEST(CachingPoolTest, OtherStreamTakesAFreedBlockOnlyAfterItsEventCompletes) {
  auto dev = MakeDevice(64 * kMiB, /*inline_when_idle=*/false);
  auto pool = MakePool(*dev, 0, 4 * kMiB);
  Stream& s0 = dev->stream(0);
  Stream& s1 = dev->stream(1);
  void* a = Alloc(*pool, kMiB, s0);
  Alloc(*pool, kMiB, s0);  // first small segment is now full
  std::atomic<bool> passed{false};
  auto gate = BlockStream(s0, &passed);
  ASSERT_TRUE(pool->Free(a, s0).ok());
  void* c = Alloc(*pool, kMiB, s1);
  EXPECT_NE(c, a);
  EXPECT_EQ(pool->GetStats().segments, 2u);
  EXPECT_EQ(pool->GetStats().pending_free_bytes, kMiB);
  gate->Notify();
  ASSERT_TRUE(s0.Synchronize().ok());
  Alloc(*pool, kMiB, s1);  // fills the second segment
  EXPECT_EQ(Alloc(*pool, kMiB, s1), a);
  EXPECT_EQ(pool->GetStats().segments, 2u);
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
}

// Verifies that when the pool is full, an allocation on another stream waits
// for the stream that freed a block instead of failing or taking it early.
TEST(CachingPoolTest, FullPoolWaitsForTheFreeingStreamsEvent) {
  auto dev = MakeDevice(64 * kMiB, /*inline_when_idle=*/false);
  auto pool = MakePool(*dev, 0, 2 * kMiB);
  Stream& s0 = dev->stream(0);
  void* a = Alloc(*pool, kMiB, s0);
  Alloc(*pool, kMiB, s0);
  std::atomic<bool> passed{false};
  auto gate = BlockStream(s0, &passed);
  ASSERT_TRUE(pool->Free(a, s0).ok());
  bool work_done_before_reuse = false;
  void* got = nullptr;
  std::thread t([&] {
    got = Alloc(*pool, kMiB, dev->stream(1));
    work_done_before_reuse = passed.load();
  });
  gate->Notify();
  t.join();
  EXPECT_EQ(got, a);
  EXPECT_TRUE(work_done_before_reuse);
}

// Verifies the allocator against a simple model under random churn: live
// ranges never overlap, contents survive, every byte of every segment is in
// exactly one block, and the counters match the model.
class CachingPoolChurnTest : public ::testing::TestWithParam<bool> {};

TEST_P(CachingPoolChurnTest, RandomChurnMatchesModel) {
  auto dev = MakeDevice(768 * kMiB, /*inline_when_idle=*/GetParam());
  auto pool = MakePool(*dev, 64 * kMiB, 512 * kMiB);
  std::mt19937_64 rng(20240611);
  struct Live {
    uint64_t requested;
    uint8_t fill;
  };
  std::map<uintptr_t, Live> live;
  auto log_size = [&] {
    std::uniform_real_distribution<double> d(8.0, 24.0);  // 256 B .. 16 MiB
    return static_cast<uint64_t>(std::exp2(d(rng)));
  };
  auto check_fill = [](uintptr_t p, const Live& l) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(p);
    const uint64_t step = l.requested > 65536 ? 4093 : 1;
    for (uint64_t i = 0; i < l.requested; i += step) {
      if (bytes[i] != l.fill) return false;
    }
    return bytes[l.requested - 1] == l.fill;
  };
  int exhausted = 0;
  for (int op = 0; op < 6000; ++op) {
    const bool do_alloc = live.empty() || (live.size() < 96 && rng() % 100 < 55);
    Stream& s = dev->stream(static_cast<int>(rng() % 2));
    if (do_alloc) {
      const uint64_t size = log_size();
      auto p = pool->Allocate(size, s);
      if (!p.ok()) {
        ASSERT_EQ(p.status().code(), absl::StatusCode::kResourceExhausted);
        ++exhausted;
        continue;
      }
      const auto addr = reinterpret_cast<uintptr_t>(*p);
      ASSERT_GE(pool->AllocationSize(*p), size);
      auto next = live.lower_bound(addr);
      if (next != live.end()) {
        ASSERT_LE(addr + size, next->first) << "overlaps the next block";
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + prev->second.requested, addr) << "overlaps the previous block";
      }
      const auto fill = static_cast<uint8_t>(rng());
      std::memset(*p, fill, size);
      live[addr] = {size, fill};
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      ASSERT_TRUE(check_fill(it->first, it->second)) << "contents changed";
      ASSERT_TRUE(pool->Free(reinterpret_cast<void*>(it->first), s).ok());
      live.erase(it);
    }
    if (op % 1000 == 999) pool->ReleaseCached();
    if (op % 25 == 0 || op == 5999) {
      ASSERT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency() << " after op " << op;
      PoolStats st = pool->GetStats();
      uint64_t requested = 0, allocated = 0;
      for (auto& [addr, l] : live) {
        requested += l.requested;
        allocated += pool->AllocationSize(reinterpret_cast<void*>(addr));
      }
      ASSERT_EQ(st.active_blocks, live.size());
      ASSERT_EQ(st.requested_bytes, requested);
      ASSERT_EQ(st.allocated_bytes, allocated);
      uint64_t tiled = 0, blocks_allocated = 0;
      for (const PoolBlockView& v : pool->Blocks()) {
        tiled += v.size;
        if (v.allocated) {
          ++blocks_allocated;
          ASSERT_TRUE(live.count(reinterpret_cast<uintptr_t>(v.ptr)));
        }
      }
      ASSERT_EQ(tiled, st.reserved_bytes);
      ASSERT_EQ(blocks_allocated, live.size());
      ASSERT_LE(st.reserved_bytes, 512 * kMiB);
      ASSERT_EQ(st.free_bytes, st.reserved_bytes - st.allocated_bytes);
      ASSERT_LE(st.largest_free_block, st.free_bytes);
    }
  }
  EXPECT_LT(exhausted, 100);
  for (auto& [addr, l] : live) ASSERT_TRUE(pool->Free(reinterpret_cast<void*>(addr)).ok());
  pool->ReleaseCached();
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
  PoolStats st = pool->GetStats();
  EXPECT_EQ(st.allocated_bytes, 0u);
  EXPECT_EQ(st.reserved_bytes, 64 * kMiB);
  EXPECT_EQ(st.alloc_count, st.free_count);
}

INSTANTIATE_TEST_SUITE_P(InlineAndAsyncStreams, CachingPoolChurnTest, ::testing::Bool());

TEST(CachingPoolTest, CompactMovesBlocksIntoFullerSegmentsAndKeepsContents) {
  auto dev = MakeDevice(256 * kMiB);
  auto pool = MakePool(*dev, 0);
  Stream& s = dev->stream(0);
  std::vector<void*> blocks;
  for (int i = 0; i < 12; ++i) blocks.push_back(Alloc(*pool, 3 * kMiB, s));  // 2 segments
  ASSERT_EQ(pool->GetStats().segments, 2u);
  std::map<void*, uint8_t> keep;
  for (int i = 0; i < 12; ++i) {
    if (i % 2 == 0) {
      ASSERT_TRUE(pool->Free(blocks[static_cast<size_t>(i)]).ok());
    } else {
      std::memset(blocks[static_cast<size_t>(i)], i, 3 * kMiB);
      keep[blocks[static_cast<size_t>(i)]] = static_cast<uint8_t>(i);
    }
  }
  const double before = pool->GetStats().fragmentation;
  std::map<void*, void*> moved;
  auto result = pool->Compact(
      s, [](void*) { return true; }, [&](void* from, void* to) { moved[from] = to; });
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(s.Synchronize().ok());
  EXPECT_GE(result->moved_blocks, 3u);
  EXPECT_EQ(pool->ReleaseCached(), 20 * kMiB);
  PoolStats after = pool->GetStats();
  EXPECT_EQ(after.segments, 1u);
  EXPECT_LT(after.fragmentation, before);
  for (auto& [ptr, fill] : keep) {
    void* now = moved.count(ptr) ? moved[ptr] : ptr;
    ASSERT_EQ(pool->AllocationSize(now), 3 * kMiB);
    const auto* bytes = static_cast<const uint8_t*>(now);
    for (uint64_t i = 0; i < 3 * kMiB; i += 511) ASSERT_EQ(bytes[i], fill);
  }
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
}

TEST(CachingPoolTest, CompactLeavesUnmovableBlocksInPlace) {
  auto dev = MakeDevice(256 * kMiB);
  auto pool = MakePool(*dev, 0);
  Stream& s = dev->stream(0);
  void* hole = Alloc(*pool, 3 * kMiB, s);
  void* pinned = Alloc(*pool, 3 * kMiB, s);
  ASSERT_TRUE(pool->Free(hole).ok());
  auto result = pool->Compact(
      s, [&](void* p) { return p != pinned; }, [](void*, void*) {});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->moved_blocks, 0u);
  EXPECT_EQ(pool->AllocationSize(pinned), 3 * kMiB);
}

// DiscardFree hands the memory of free blocks back (on a host device their
// pages read as zeros again) and leaves allocated blocks' bytes alone.
TEST(CachingPoolTest, DiscardFreeGivesBackOnlyFreeBlocks) {
  auto dev = MakeDevice(256 * kMiB);
  auto pool = MakePool(*dev, 64 * kMiB);
  auto* kept = static_cast<uint8_t*>(Alloc(*pool, 4 * kMiB, dev->stream(0)));
  auto* freed = static_cast<uint8_t*>(Alloc(*pool, 4 * kMiB, dev->stream(0)));
  std::memset(kept, 0xab, 4 * kMiB);
  std::memset(freed, 0xcd, 4 * kMiB);
  ASSERT_TRUE(pool->Free(freed).ok());
  ASSERT_TRUE(dev->Synchronize().ok());
  EXPECT_EQ(pool->DiscardFree(), 60 * kMiB);  // everything but `kept`
  EXPECT_EQ(kept[0], 0xab);
  EXPECT_EQ(kept[4 * kMiB - 1], 0xab);
  EXPECT_EQ(freed[kMiB], 0);  // its pages went back
  EXPECT_EQ(pool->GetStats().reserved_bytes, 64 * kMiB);  // the range stays cached
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
  void* again = Alloc(*pool, 4 * kMiB, dev->stream(0));
  EXPECT_NE(again, nullptr);
  ASSERT_TRUE(pool->Free(again).ok());
  ASSERT_TRUE(pool->Free(kept).ok());
}

}  // namespace
}  // namespace inferd
