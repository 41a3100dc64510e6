// The memory engine on real GPUs: the caching pool over cudaMalloc'd
// segments, stream-ordered reuse with CUDA events, tensor upload/download,
// compaction with device-to-device copies. Skips without a CUDA device.
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "core/device/discovery.h"
#include "core/memory/caching_pool.h"
#include "core/memory/memory_engine.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

class MemoryGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto devices = DiscoverCudaDevices({}, 2);
    ASSERT_TRUE(devices.ok()) << devices.status();
    if (devices->empty()) GTEST_SKIP() << "no CUDA device";
    devices_ = std::move(*devices);
  }
  Device& gpu() { return *devices_[0]; }

  std::unique_ptr<MemoryEngine> Engine(uint64_t max_pool_mb) {
    MemoryEngineOptions o;
    o.pool_size_mb = 0;
    o.max_pool_mb = max_pool_mb;
    o.enable_monitoring = false;
    auto e = MemoryEngine::Create(o, {&gpu()}, &clock_, registry_);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? std::move(e).value() : nullptr;
  }

  static std::vector<uint8_t> Pattern(uint64_t bytes, uint32_t seed) {
    std::vector<uint8_t> v(bytes);
    std::mt19937 rng(seed);
    for (auto& b : v) b = static_cast<uint8_t>(rng());
    return v;
  }

  std::vector<std::unique_ptr<Device>> devices_;
  FakeClock clock_;
  prometheus::Registry registry_;
};

TEST_F(MemoryGpuTest, Upload64MiBInChunksAndDownloadBitIdentical) {
  auto engine = Engine(1024);
  ASSERT_NE(engine, nullptr);
  TensorRequest r;
  r.device = 0;
  r.dtype = DataType::kUint8;
  r.shape = {static_cast<int64_t>(64 * kMiB)};
  auto info = engine->AllocateTensor(r);
  ASSERT_TRUE(info.ok()) << info.status();
  std::vector<uint8_t> zeros(64 * kMiB, 1);
  ASSERT_TRUE(engine->ReadTensor(info->id, 0, absl::MakeSpan(zeros)).ok());
  EXPECT_EQ(zeros, std::vector<uint8_t>(64 * kMiB, 0));  // new tensors are zeroed
  const std::vector<uint8_t> data = Pattern(64 * kMiB, 7);
  for (uint64_t off = 0; off < data.size(); off += 4 * kMiB) {
    ASSERT_TRUE(
        engine->WriteTensor(info->id, off, absl::MakeConstSpan(data.data() + off, 4 * kMiB)).ok());
  }
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE(engine->ReadTensor(info->id, 0, absl::MakeSpan(back)).ok());
  EXPECT_TRUE(back == data);
}

TEST_F(MemoryGpuTest, CompactionKeepsContentsOnTheGpu) {
  auto engine = Engine(1024);
  ASSERT_NE(engine, nullptr);
  std::vector<TensorInfo> tensors;
  for (int i = 0; i < 12; ++i) {
    TensorRequest r;
    r.device = 0;
    r.dtype = DataType::kUint8;
    r.shape = {static_cast<int64_t>(3 * kMiB)};
    auto info = engine->AllocateTensor(r);
    ASSERT_TRUE(info.ok()) << info.status();
    tensors.push_back(*info);
  }
  std::map<int, std::vector<uint8_t>> kept;
  for (int i = 0; i < 12; ++i) {
    const TensorId& id = tensors[static_cast<size_t>(i)].id;
    if (i % 2 == 0) {
      ASSERT_TRUE(engine->FreeTensor(id).ok());
    } else {
      kept[i] = Pattern(3 * kMiB, static_cast<uint32_t>(i));
      ASSERT_TRUE(engine->WriteTensor(id, 0, absl::MakeConstSpan(kept[i])).ok());
    }
  }
  auto result = engine->Compact(0);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->moved_tensors, 3u);
  EXPECT_EQ(result->released_bytes, 20 * kMiB);
  for (auto& [i, data] : kept) {
    std::vector<uint8_t> back(data.size());
    ASSERT_TRUE(
        engine->ReadTensor(tensors[static_cast<size_t>(i)].id, 0, absl::MakeSpan(back)).ok());
    EXPECT_TRUE(back == data) << "tensor " << i;
  }
}

TEST_F(MemoryGpuTest, ExhaustionNamesDeviceRequestedAndFreeBytes) {
  auto engine = Engine(64);
  ASSERT_NE(engine, nullptr);
  TensorRequest r;
  r.device = 0;
  r.dtype = DataType::kUint8;
  r.shape = {static_cast<int64_t>(48 * kMiB)};
  ASSERT_TRUE(engine->AllocateTensor(r).ok());
  auto over = engine->AllocateTensor(r);
  ASSERT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(over.status().message(), "device 0: cannot allocate 50331648 bytes (free 16777216 of " +
                                         std::to_string(engine->GetDeviceStats(0)->total_bytes) +
                                         " bytes after GC)");
}

// Verifies stream-ordered reuse with real CUDA events: the freeing stream
// reuses at once; another stream gets the block once the event completes.
TEST_F(MemoryGpuTest, CrossStreamReuseGoesThroughEvents) {
  CachingPoolOptions o;
  o.max_reserved_bytes = 2 * kMiB;
  auto pool = CachingPool::Create(gpu(), o);
  ASSERT_TRUE(pool.ok());
  Stream& s0 = gpu().stream(0);
  Stream& s1 = gpu().stream(1);
  auto a = (*pool)->Allocate(kMiB, s0);
  auto b = (*pool)->Allocate(kMiB, s0);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(s0.Memset(*a, 0x5a, kMiB).ok());
  ASSERT_TRUE((*pool)->Free(*a, s0).ok());
  auto again = (*pool)->Allocate(kMiB, s0);
  EXPECT_EQ(*again, *a);
  ASSERT_TRUE((*pool)->Free(*again, s0).ok());
  auto other = (*pool)->Allocate(kMiB, s1);  // full pool: waits for s0's event
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(*other, *a);
  ASSERT_TRUE((*pool)->Free(*other, s1).ok());
  ASSERT_TRUE((*pool)->Free(*b, s0).ok());
  EXPECT_TRUE((*pool)->CheckConsistency().ok()) << (*pool)->CheckConsistency();
}

TEST_F(MemoryGpuTest, PoolChurnKeepsInvariantsAndData) {
  CachingPoolOptions o;
  o.initial_bytes = 256 * kMiB;
  auto pool_or = CachingPool::Create(gpu(), o);
  ASSERT_TRUE(pool_or.ok());
  CachingPool& pool = **pool_or;
  std::mt19937_64 rng(99);
  struct Live {
    uint64_t size;
    uint8_t fill;
    Stream* stream;  // where it was written
  };
  std::map<void*, Live> live;
  for (int op = 0; op < 3000; ++op) {
    Stream& s = gpu().stream(static_cast<int>(rng() % 2));
    if (live.empty() || (live.size() < 64 && rng() % 2 == 0)) {
      const uint64_t size = 256ull << (rng() % 17);  // 256 B .. 16 MiB
      auto p = pool.Allocate(size, s);
      ASSERT_TRUE(p.ok()) << p.status();
      const auto fill = static_cast<uint8_t>(rng());
      ASSERT_TRUE(s.Memset(*p, fill, size).ok());
      live[*p] = {size, fill, &s};
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      uint8_t edge[2] = {0, 0};
      Stream& w = *it->second.stream;
      ASSERT_TRUE(w.CopyDeviceToHost(&edge[0], it->first, 1).ok());
      ASSERT_TRUE(
          w.CopyDeviceToHost(&edge[1], static_cast<uint8_t*>(it->first) + it->second.size - 1, 1)
              .ok());
      ASSERT_TRUE(w.Synchronize().ok());
      ASSERT_EQ(edge[0], it->second.fill);
      ASSERT_EQ(edge[1], it->second.fill);
      ASSERT_TRUE(pool.Free(it->first, s).ok());
      live.erase(it);
    }
  }
  ASSERT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency();
  for (auto& [p, l] : live) ASSERT_TRUE(pool.Free(p).ok());
  pool.ReleaseCached();
  EXPECT_EQ(pool.GetStats().reserved_bytes, 256 * kMiB);
}

}  // namespace
}  // namespace inferd
