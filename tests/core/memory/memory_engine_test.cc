#include "core/memory/memory_engine.h"

#include <cstring>
#include <numeric>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/device/host_device.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace inferd {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

class MemoryEngineTest : public ::testing::Test {
 protected:
  // Builds `n` host devices of `capacity` bytes and an engine over them.
  void Build(int n, uint64_t capacity, MemoryEngineOptions options = Defaults()) {
    for (int i = 0; i < n; ++i) {
      HostDeviceOptions ho;
      ho.index = i;
      ho.ordinal = i;
      ho.capacity_bytes = capacity;
      ho.num_streams = 2;
      devices_.push_back(std::make_unique<HostDevice>(ho));
    }
    std::vector<Device*> raw;
    for (auto& d : devices_) raw.push_back(d.get());
    auto engine = MemoryEngine::Create(options, raw, &clock_, registry_);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(engine).value();
  }

  static MemoryEngineOptions Defaults() {
    MemoryEngineOptions o;
    o.pool_size_mb = 0;
    o.max_pool_fraction = 1.0;
    o.enable_monitoring = false;
    o.default_lease = absl::Seconds(60);
    return o;
  }

  TensorInfo Alloc(uint64_t bytes, int device = 0, absl::Duration lease = absl::ZeroDuration(),
                   const std::string& owner = "client") {
    TensorRequest r;
    r.device = device;
    r.dtype = DataType::kUint8;
    r.shape = {static_cast<int64_t>(bytes)};
    r.owner = owner;
    r.lease = lease;
    auto info = engine_->AllocateTensor(r);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : TensorInfo();
  }

  std::vector<uint8_t> Pattern(uint64_t bytes, uint8_t seed) {
    std::vector<uint8_t> v(bytes);
    for (uint64_t i = 0; i < bytes; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
    return v;
  }

  std::vector<uint8_t> Read(const TensorId& id, uint64_t bytes) {
    std::vector<uint8_t> out(bytes);
    absl::Status st = engine_->ReadTensor(id, 0, absl::MakeSpan(out));
    EXPECT_TRUE(st.ok()) << st;
    return out;
  }

  std::string Scrape() {
    prometheus::TextSerializer s;
    std::ostringstream os;
    s.Serialize(os, registry_.Collect());
    return os.str();
  }

  FakeClock clock_;
  prometheus::Registry registry_;
  std::vector<std::unique_ptr<HostDevice>> devices_;
  std::unique_ptr<MemoryEngine> engine_;
};

TEST_F(MemoryEngineTest, WritesAndReadsBackInChunksAndStartsZeroed) {
  Build(1, 256 * kMiB);
  const uint64_t bytes = 3 * kMiB + 123;
  TensorInfo info = Alloc(bytes);
  EXPECT_EQ(info.byte_size, bytes);
  EXPECT_EQ(Read(info.id, bytes), std::vector<uint8_t>(bytes, 0));
  const std::vector<uint8_t> data = Pattern(bytes, 3);
  for (uint64_t off = 0; off < bytes; off += kMiB) {
    const uint64_t n = std::min(kMiB, bytes - off);
    ASSERT_TRUE(engine_->WriteTensor(info.id, off, absl::MakeConstSpan(data.data() + off, n)).ok());
  }
  EXPECT_EQ(Read(info.id, bytes), data);
  std::vector<uint8_t> tail(100);
  ASSERT_TRUE(engine_->ReadTensor(info.id, bytes - 100, absl::MakeSpan(tail)).ok());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), data.end() - 100));
}

TEST_F(MemoryEngineTest, RejectsCopiesPastTheEnd) {
  Build(1, 64 * kMiB);
  TensorInfo info = Alloc(1000);
  std::vector<uint8_t> buf(10);
  EXPECT_EQ(engine_->WriteTensor(info.id, 995, absl::MakeConstSpan(buf)).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(engine_->ReadTensor(info.id, ~0ull - 3, absl::MakeSpan(buf)).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(engine_->WriteTensor(info.id, 990, absl::MakeConstSpan(buf)).ok());
  EXPECT_EQ(engine_->ReadTensor(TensorId{1, 2}, 0, absl::MakeSpan(buf)).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MemoryEngineTest, ValidatesAllocationRequests) {
  MemoryEngineOptions o = Defaults();
  o.max_tensor_bytes = 8 * kMiB;
  Build(1, 64 * kMiB, o);
  auto code = [&](TensorRequest r) { return engine_->AllocateTensor(r).status().code(); };
  TensorRequest base;
  base.device = 0;
  base.dtype = DataType::kFp32;
  base.shape = {4, 4};
  EXPECT_TRUE(engine_->AllocateTensor(base).ok());
  TensorRequest r = base;
  r.dtype = DataType::kInvalid;
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = base;
  r.shape = {4, -1};
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = base;
  r.shape = {1ll << 40, 1ll << 40};
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = base;
  r.byte_size = 65;
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = base;
  r.dtype = DataType::kBytes;
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r.byte_size = 100;
  EXPECT_TRUE(engine_->AllocateTensor(r).ok());
  r = base;
  r.shape = {16 * 1024 * 1024};  // 64 MiB > max_tensor_bytes
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = base;
  r.device = 3;
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
  r = base;
  r.lease = absl::Hours(48);
  EXPECT_EQ(code(r), absl::StatusCode::kInvalidArgument);
}

TEST_F(MemoryEngineTest, AnyDeviceChoosesTheOneWithMostFreeMemory) {
  Build(2, 128 * kMiB);
  Alloc(40 * kMiB, 0);
  TensorRequest r;
  r.dtype = DataType::kUint8;
  r.shape = {1024};
  auto info = engine_->AllocateTensor(r);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->device, 1);
}

TEST_F(MemoryEngineTest, MaintenanceFreesExpiredLeases) {
  Build(1, 64 * kMiB);
  TensorInfo info = Alloc(kMiB, 0, absl::Seconds(30));
  TensorInfo keep = Alloc(kMiB, 0, absl::Seconds(120));
  clock_.Advance(absl::Seconds(31));
  MaintenanceReport report = engine_->RunMaintenanceOnce();
  EXPECT_EQ(report.expired_tensors, 1u);
  EXPECT_EQ(engine_->GetTensorInfo(info.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(engine_->GetTensorInfo(keep.id).ok());
  DeviceMemoryStats s = *engine_->GetDeviceStats(0);
  EXPECT_EQ(s.lease_expirations, 1u);
  EXPECT_EQ(s.active_tensors, 1u);
  EXPECT_EQ(s.allocated_bytes, kMiB);
}

TEST_F(MemoryEngineTest, PinnedTensorSurvivesExpiryAndFree) {
  Build(1, 64 * kMiB);
  TensorInfo info = Alloc(kMiB, 0, absl::Seconds(10));
  auto pin = engine_->Pin(info.id);
  ASSERT_TRUE(pin.ok());
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(engine_->RunMaintenanceOnce().expired_tensors, 0u);
  EXPECT_EQ(engine_->FreeTensor(info.id).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine_->Compact(0).ok(), true);
  EXPECT_EQ(engine_->GetTensorInfo(info.id)->pin_count, 1);
  pin->Reset();
  EXPECT_TRUE(engine_->FreeTensor(info.id).ok());
  EXPECT_EQ(engine_->GetDeviceStats(0)->allocated_bytes, 0u);
}

// Verifies the GC order on exhaustion: expired leases first (cached
// segments stay), then cached segments, then the error naming the device,
// requested and free bytes.
TEST_F(MemoryEngineTest, GcReclaimsExpiredLeasesThenCachedSegmentsThenFails) {
  MemoryEngineOptions o = Defaults();
  o.max_pool_mb = 64;
  Build(1, 64 * kMiB, o);
  TensorInfo expiring = Alloc(30 * kMiB, 0, absl::Seconds(10));
  TensorInfo cached = Alloc(20 * kMiB, 0, absl::Seconds(600));
  ASSERT_TRUE(engine_->FreeTensor(cached.id).ok());  // a fully free 20 MiB segment
  EXPECT_EQ(engine_->GetDeviceStats(0)->reserved_bytes, 50 * kMiB);
  clock_.Advance(absl::Seconds(11));

  TensorInfo d = Alloc(30 * kMiB, 0, absl::Seconds(600));  // fits once `expiring` goes
  DeviceMemoryStats s = *engine_->GetDeviceStats(0);
  EXPECT_EQ(engine_->GetTensorInfo(expiring.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.gc_runs, 1u);
  EXPECT_EQ(s.lease_expirations, 1u);
  EXPECT_EQ(s.reserved_bytes, 50 * kMiB);  // the cached segment was not needed
  EXPECT_EQ(s.segments, 2u);

  TensorInfo e = Alloc(30 * kMiB, 0, absl::Seconds(600));  // needs the cached segment gone
  s = *engine_->GetDeviceStats(0);
  EXPECT_EQ(s.gc_runs, 2u);
  EXPECT_EQ(s.reserved_bytes, 60 * kMiB);
  EXPECT_EQ(s.gc_reclaimed_bytes, 50 * kMiB);  // 30 MiB expired + 20 MiB released

  TensorRequest r;
  r.device = 0;
  r.dtype = DataType::kUint8;
  r.shape = {static_cast<int64_t>(10 * kMiB)};
  auto f = engine_->AllocateTensor(r);
  ASSERT_EQ(f.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(f.status().message(),
            "device 0: cannot allocate 10485760 bytes (free 4194304 of 67108864 bytes after GC)");
  EXPECT_TRUE(engine_->GetTensorInfo(d.id).ok());
  EXPECT_TRUE(engine_->GetTensorInfo(e.id).ok());
}

TEST_F(MemoryEngineTest, GcAboveThresholdReleasesCachedSegments) {
  MemoryEngineOptions o = Defaults();
  o.gc_threshold = 0.5;
  Build(1, 64 * kMiB, o);
  TensorInfo a = Alloc(40 * kMiB);
  ASSERT_TRUE(engine_->FreeTensor(a.id).ok());
  EXPECT_EQ(engine_->GetDeviceStats(0)->reserved_bytes, 40 * kMiB);
  MaintenanceReport report = engine_->RunMaintenanceOnce();
  EXPECT_EQ(report.gc_runs, 1u);
  EXPECT_EQ(report.released_bytes, 40 * kMiB);
  EXPECT_EQ(engine_->GetDeviceStats(0)->reserved_bytes, 0u);
  EXPECT_EQ(engine_->RunMaintenanceOnce().gc_runs, 0u);  // below the threshold now
}

TEST_F(MemoryEngineTest, ReleaseSegmentsOnGrowKeepsTheReservedSetTight) {
  for (bool release : {false, true}) {
    SCOPED_TRACE(release);
    devices_.clear();
    MemoryEngineOptions o = Defaults();
    o.release_segments_on_grow = release;
    Build(1, 256 * kMiB, o);
    TensorInfo a = Alloc(40 * kMiB);
    ASSERT_TRUE(engine_->FreeTensor(a.id).ok());
    TensorInfo b = Alloc(60 * kMiB);  // does not fit the cached 40 MiB segment
    EXPECT_EQ(engine_->GetDeviceStats(0)->reserved_bytes, (release ? 60 : 100) * kMiB);
    ASSERT_TRUE(engine_->FreeTensor(b.id).ok());
    engine_.reset();
  }
}

TEST_F(MemoryEngineTest, CompactionPreservesContentsAndHandles) {
  Build(1, 256 * kMiB);
  std::vector<TensorInfo> tensors;
  for (int i = 0; i < 12; ++i) tensors.push_back(Alloc(3 * kMiB));  // two 20 MiB segments
  std::vector<std::pair<TensorInfo, std::vector<uint8_t>>> kept;
  for (int i = 0; i < 12; ++i) {
    if (i % 2 == 0) {
      ASSERT_TRUE(engine_->FreeTensor(tensors[static_cast<size_t>(i)].id).ok());
    } else {
      std::vector<uint8_t> data = Pattern(3 * kMiB, static_cast<uint8_t>(i));
      ASSERT_TRUE(
          engine_->WriteTensor(tensors[static_cast<size_t>(i)].id, 0, absl::MakeConstSpan(data))
              .ok());
      kept.emplace_back(tensors[static_cast<size_t>(i)], std::move(data));
    }
  }
  DeviceMemoryStats before = *engine_->GetDeviceStats(0);
  EXPECT_EQ(before.segments, 2u);
  auto result = engine_->Compact(0);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->moved_tensors, 3u);
  EXPECT_EQ(result->released_bytes, 20 * kMiB);
  EXPECT_LT(result->fragmentation_after, result->fragmentation_before);
  DeviceMemoryStats after = *engine_->GetDeviceStats(0);
  EXPECT_EQ(after.segments, 1u);
  EXPECT_EQ(after.compactions, 1u);
  EXPECT_EQ(after.compaction_moved_bytes, 9 * kMiB);
  for (auto& [info, data] : kept) {
    auto now = engine_->GetTensorInfo(info.id);
    ASSERT_TRUE(now.ok());
    EXPECT_EQ(now->byte_size, info.byte_size);
    EXPECT_EQ(Read(info.id, data.size()), data) << FormatTensorId(info.id);
  }
}

// Verifies that Compact may return while its stream is still busy: the
// event it records stays valid until the stream reaches it (the queued
// record used to write to the event Compact had already freed; concurrent
// Compact calls during allocation traffic aborted the daemon).
TEST_F(MemoryEngineTest, CompactReturnsWhileItsStreamIsBusy) {
  Build(1, 64 * kMiB);
  Stream& stream = devices_[0]->stream(0);
  absl::Notification entered;
  absl::Notification release;
  std::thread holder([&] {
    ASSERT_TRUE(stream
                    .ThenCallback([&](absl::Status) {
                      entered.Notify();
                      release.WaitForNotification();
                    })
                    .ok());
  });
  entered.WaitForNotification();
  for (int i = 0; i < 3; ++i) {
    auto result = engine_->Compact(0);
    EXPECT_TRUE(result.ok()) << result.status();
  }
  release.Notify();
  holder.join();
  EXPECT_TRUE(stream.Synchronize().ok());
  TensorInfo t = Alloc(kMiB);
  EXPECT_TRUE(engine_->FreeTensor(t.id).ok());
}

TEST_F(MemoryEngineTest, CompactionNeverMovesAPinnedTensor) {
  Build(1, 256 * kMiB);
  std::vector<TensorInfo> t;
  for (int i = 0; i < 12; ++i) t.push_back(Alloc(3 * kMiB));
  for (int i = 0; i < 11; ++i) ASSERT_TRUE(engine_->FreeTensor(t[static_cast<size_t>(i)].id).ok());
  auto pin = engine_->Pin(t[11].id);  // alone in the second segment
  ASSERT_TRUE(pin.ok());
  void* where = pin->device_ptr();
  auto result = engine_->Compact(0);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->moved_tensors, 0u);
  EXPECT_EQ(pin->device_ptr(), where);
  pin->Reset();
  ASSERT_TRUE(engine_->Compact(0).ok());
  auto repin = engine_->Pin(t[11].id);
  ASSERT_TRUE(repin.ok());
  EXPECT_NE(repin->device_ptr(), where);  // moved once unpinned
}

TEST_F(MemoryEngineTest, MaintenanceCompactsOnlyIdleFragmentedDevices) {
  MemoryEngineOptions o = Defaults();
  o.defrag_threshold = 0.3;
  o.compaction_idle_time = absl::Seconds(5);
  Build(1, 256 * kMiB, o);
  std::vector<TensorInfo> t;
  for (int i = 0; i < 12; ++i) t.push_back(Alloc(3 * kMiB));
  for (int i = 0; i < 12; i += 2)
    ASSERT_TRUE(engine_->FreeTensor(t[static_cast<size_t>(i)].id).ok());
  ASSERT_GT(engine_->GetDeviceStats(0)->fragmentation, 0.3);
  EXPECT_EQ(engine_->RunMaintenanceOnce().compactions, 0u);  // allocated just now
  clock_.Advance(absl::Seconds(6));
  {
    auto pin = engine_->Pin(t[1].id);
    EXPECT_EQ(engine_->RunMaintenanceOnce().compactions, 0u);  // something is in use
  }
  MaintenanceReport report = engine_->RunMaintenanceOnce();
  EXPECT_EQ(report.compactions, 1u);
  EXPECT_EQ(report.moved_bytes, 9 * kMiB);
  EXPECT_LE(engine_->GetDeviceStats(0)->fragmentation, 0.3);
}

TEST_F(MemoryEngineTest, OptimalBatchSizeFollowsFreeMemory) {
  Build(1, 1024 * kMiB);
  BatchSizeRequest r;
  r.device = 0;
  r.model_size_mb = 100;
  r.input_shape = {3, 224, 224};
  r.dtype = DataType::kFp32;
  r.output_bytes_per_sample = 4000;
  r.activation_bytes_per_sample = kMiB;
  // (1024 MiB - 100 MiB) * 0.9 / (602112 + 4000 + 1048576) bytes = 526.99
  EXPECT_EQ(*engine_->GetOptimalBatchSize(r), 526);
  r.max_batch_size = 64;
  EXPECT_EQ(*engine_->GetOptimalBatchSize(r), 64);
  r.max_batch_size = 0;

  TensorInfo big = Alloc(500 * kMiB, 0, absl::Seconds(1));
  // (524 MiB - 100 MiB) * 0.9 / 1654688 = 241.8
  EXPECT_EQ(*engine_->GetOptimalBatchSize(r), 241);
  clock_.Advance(absl::Seconds(2));  // `big` expires: counted free after GC
  EXPECT_EQ(*engine_->GetOptimalBatchSize(r), 526);
  EXPECT_EQ(engine_->GetTensorInfo(big.id).status().code(), absl::StatusCode::kNotFound);

  r.model_size_mb = 1024;
  auto none = engine_->GetOptimalBatchSize(r);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(none.status().message().find("device 0"), std::string::npos);
  r.model_size_mb = 1;
  r.dtype = DataType::kBytes;
  EXPECT_EQ(engine_->GetOptimalBatchSize(r).status().code(), absl::StatusCode::kInvalidArgument);
  r.dtype = DataType::kFp32;
  r.input_shape = {3, -1};
  EXPECT_EQ(engine_->GetOptimalBatchSize(r).status().code(), absl::StatusCode::kInvalidArgument);
  r.input_shape = {};
  r.output_bytes_per_sample = 0;
  r.activation_bytes_per_sample = 0;
  r.dtype = DataType::kFp32;
  EXPECT_EQ(*engine_->GetOptimalBatchSize(r), (1023 * kMiB * 9 / 10) / 4);
}

// A model far larger than uint64 bytes (found by the batch_size fuzzer):
// RESOURCE_EXHAUSTED with a saturated byte count, no float-to-int overflow
// (UBSan aborts the sanitizer build on the cast).
TEST_F(MemoryEngineTest, OptimalBatchSizeWithAstronomicalModelSize) {
  Build(1, 64 * kMiB);
  BatchSizeRequest r;
  r.input_shape = {1};
  r.dtype = DataType::kUint8;
  for (double mb : {1e300, 1.7e13, 1e15}) {
    r.model_size_mb = mb;
    auto none = engine_->GetOptimalBatchSize(r);
    EXPECT_EQ(none.status().code(), absl::StatusCode::kResourceExhausted) << mb;
  }
  r.model_size_mb = 1e300;
  EXPECT_NE(engine_->GetOptimalBatchSize(r).status().message().find("18446744073709551615 bytes"),
            std::string::npos);
}

// A BYTES tensor as the wire lays it out: per element a 4-byte
// little-endian length and the bytes.
std::vector<uint8_t> BytesElements(const std::vector<std::string>& elements) {
  std::vector<uint8_t> out;
  for (const std::string& e : elements) {
    const uint32_t n = static_cast<uint32_t>(e.size());
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
    out.insert(out.end(), e.begin(), e.end());
  }
  return out;
}

TensorRequest BytesRequest(int64_t elements, uint64_t byte_size) {
  TensorRequest r;
  r.device = 0;
  r.dtype = DataType::kBytes;
  r.shape = {elements};
  r.byte_size = byte_size;
  return r;
}

// Verifies that a BYTES tensor is usable only once written in full, in
// order, with a valid layout (it used to be stored unchecked, and a task
// reading it trusted lengths that pointed past its end).
TEST_F(MemoryEngineTest, BytesTensorIsUsableOnlyOnceWrittenInFullWithAValidLayout) {
  Build(1, 64 * kMiB);
  const std::vector<uint8_t> data = BytesElements({"ab", ""});
  auto info = engine_->AllocateTensor(BytesRequest(2, data.size()));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(engine_->Pin(info->id).status().code(), absl::StatusCode::kFailedPrecondition);
  const auto part = absl::MakeConstSpan(data);
  ASSERT_TRUE(engine_->WriteTensor(info->id, 0, part.subspan(0, 5)).ok());
  absl::Status early = engine_->Pin(info->id).status();
  EXPECT_EQ(early.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(early.message().find("5 of 10 bytes"), std::string::npos) << early;
  EXPECT_EQ(engine_->WriteTensor(info->id, 7, part.subspan(7)).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(engine_->WriteTensor(info->id, 5, part.subspan(5)).ok());
  EXPECT_TRUE(engine_->Pin(info->id).ok());
  EXPECT_TRUE(engine_->CheckUsable(info->id).ok());
}

TEST_F(MemoryEngineTest, BytesLengthPastTheEndIsRefusedAndTheTensorStaysUnusable) {
  Build(1, 64 * kMiB);
  auto info = engine_->AllocateTensor(BytesRequest(1, 8));
  ASSERT_TRUE(info.ok()) << info.status();
  // One element whose length says 64,000,000 bytes.
  const std::vector<uint8_t> bad = {0x00, 0x90, 0xd0, 0x03, 'a', 'b', 'c', 'd'};
  absl::Status st = engine_->WriteTensor(info->id, 0, bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("64000000"), std::string::npos) << st;
  EXPECT_EQ(engine_->Pin(info->id).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(engine_->FreeTensor(info->id).ok());
}

TEST_F(MemoryEngineTest, ZeroedBytesOfEmptyElementsAreUsableAtOnce) {
  Build(1, 64 * kMiB);
  auto empty = engine_->AllocateTensor(BytesRequest(3, 12));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(engine_->Pin(empty->id).ok());
  TensorRequest checked = BytesRequest(1, 9);
  checked.layout_checked = true;
  auto copy = engine_->AllocateTensor(checked);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_TRUE(engine_->Pin(copy->id).ok());
}

// Verifies that limits.max_dims holds for allocations too (only ModelInfer
// enforced it; AllocateTensor took 65 dimensions).
TEST_F(MemoryEngineTest, RejectsShapesAboveMaxDims) {
  MemoryEngineOptions o = Defaults();
  o.max_dims = 16;
  Build(1, 64 * kMiB, o);
  TensorRequest r;
  r.device = 0;
  r.dtype = DataType::kUint8;
  r.shape.assign(17, 1);
  absl::Status st = engine_->AllocateTensor(r).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("limits.max_dims"), std::string::npos) << st;
  r.shape.assign(16, 1);
  EXPECT_TRUE(engine_->AllocateTensor(r).ok());
}

TEST_F(MemoryEngineTest, ListsTensorsByOwnerAndDevice) {
  Build(2, 64 * kMiB);
  Alloc(100, 0, absl::ZeroDuration(), "a");
  Alloc(100, 1, absl::ZeroDuration(), "a");
  Alloc(100, 1, absl::ZeroDuration(), "b");
  TensorListOptions o;
  o.owner = "a";
  EXPECT_EQ(engine_->ListTensors(o)->tensors.size(), 2u);
  o.device = 1;
  EXPECT_EQ(engine_->ListTensors(o)->tensors.size(), 1u);
  o.device = 7;
  EXPECT_EQ(engine_->ListTensors(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MemoryEngineTest, ScratchBuffersAreStreamOrderedAndAccounted) {
  Build(1, 64 * kMiB);
  Stream& s1 = devices_[0]->stream(1);
  auto p = engine_->AllocateScratch(0, 5000, s1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(engine_->GetDeviceStats(0)->active_blocks, 1u);
  EXPECT_EQ(engine_->GetDeviceStats(0)->active_tensors, 0u);
  ASSERT_TRUE(engine_->FreeScratch(0, *p, s1).ok());
  auto again = engine_->AllocateScratch(0, 5000, s1);
  EXPECT_EQ(*again, *p);
  EXPECT_EQ(engine_->AllocateScratch(2, 10, s1).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(engine_->FreeScratch(0, *again, s1).ok());

  std::unique_ptr<DeviceAllocator> allocator = engine_->NewScratchAllocator();
  auto q = allocator->Allocate(*devices_[0], s1, 5000);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, *p);  // the same pool
  allocator->Free(*devices_[0], s1, *q);
  EXPECT_EQ(engine_->GetDeviceStats(0)->active_blocks, 0u);
}

TEST_F(MemoryEngineTest, ExportsMetricsPerDevice) {
  Build(1, 64 * kMiB);
  TensorInfo a = Alloc(kMiB, 0, absl::Seconds(5));
  Alloc(2 * kMiB);
  clock_.Advance(absl::Seconds(6));
  engine_->RunMaintenanceOnce();
  const std::string text = Scrape();
  for (const char* line :
       {"inferd_memory_total_bytes{device=\"0\"} 67108864",
        "inferd_memory_allocated_bytes{device=\"0\"} 2097152",
        "inferd_memory_reserved_bytes{device=\"0\"} 23068672",  // 20 MiB + 2 MiB small
        "inferd_memory_active_tensors{device=\"0\"} 1",
        "inferd_memory_allocations_total{device=\"0\"} 2",
        "inferd_memory_frees_total{device=\"0\"} 1",
        "inferd_memory_lease_expirations_total{device=\"0\"} 1",
        "inferd_memory_gc_runs_total{device=\"0\"} 0",
        "inferd_memory_compactions_total{device=\"0\"} 0",
        "inferd_memory_fragmentation_ratio{device=\"0\"}",
        "inferd_memory_largest_free_block_bytes{device=\"0\"}",
        "inferd_memory_gc_reclaimed_bytes_total{device=\"0\"} 0",
        "inferd_memory_compaction_moved_bytes_total{device=\"0\"} 0"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  (void)a;
}

TEST_F(MemoryEngineTest, RejectsBadOptions) {
  HostDevice dev(HostDeviceOptions{});
  auto make = [&](MemoryEngineOptions o) {
    return MemoryEngine::Create(o, {&dev}, &clock_, registry_).status().code();
  };
  MemoryEngineOptions o = Defaults();
  o.gc_threshold = 1.5;
  EXPECT_EQ(make(o), absl::StatusCode::kInvalidArgument);
  o = Defaults();
  o.defrag_threshold = 0;
  EXPECT_EQ(make(o), absl::StatusCode::kInvalidArgument);
  o = Defaults();
  o.pool_size_mb = 4096;  // more than the 1 GiB device
  EXPECT_EQ(make(o), absl::StatusCode::kInvalidArgument);
  o = Defaults();
  o.stream_index = 9;
  EXPECT_EQ(make(o), absl::StatusCode::kInvalidArgument);
  o = Defaults();
  EXPECT_EQ(MemoryEngine::Create(o, {&dev, &dev}, &clock_, registry_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A FakeClock that counts reads, so a test can wait for the monitor thread
// to make progress without sleeping.
class CountingClock : public FakeClock {
 public:
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    ++reads_;
    return FakeClock::Now();
  }
  int64_t reads() const {
    absl::MutexLock lock(&mu_);
    return reads_;
  }
  void AwaitReads(int64_t n) const {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return reads_ >= n; };
    mu_.Await(absl::Condition(&reached));
  }

 private:
  mutable absl::Mutex mu_;
  mutable int64_t reads_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(MemoryEngineMonitorTest, MonitorThreadReclaimsExpiredTensors) {
  HostDevice dev(HostDeviceOptions{});
  CountingClock clock;
  prometheus::Registry registry;
  MemoryEngineOptions o;
  o.pool_size_mb = 0;
  o.monitor_interval = absl::Milliseconds(1);
  auto engine = MemoryEngine::Create(o, {&dev}, &clock, registry);
  ASSERT_TRUE(engine.ok());
  TensorRequest r;
  r.device = 0;
  r.dtype = DataType::kUint8;
  r.shape = {4096};
  r.lease = absl::Seconds(1);
  auto info = (*engine)->AllocateTensor(r);
  ASSERT_TRUE(info.ok());
  clock.Advance(absl::Seconds(2));
  // Each pass reads the clock at least once, passes run one after another:
  // two reads after now mean a whole pass has run since the advance.
  clock.AwaitReads(clock.reads() + 2);
  EXPECT_EQ((*engine)->GetTensorInfo(info->id).status().code(), absl::StatusCode::kNotFound);
}

// Verifies that destruction wakes the monitor at once (an hour-long interval
// would otherwise hang the test).
TEST(MemoryEngineMonitorTest, DestructionStopsTheMonitorPromptly) {
  HostDevice dev(HostDeviceOptions{});
  FakeClock clock;
  prometheus::Registry registry;
  MemoryEngineOptions o;
  o.pool_size_mb = 16;
  o.monitor_interval = absl::Hours(1);
  auto engine = MemoryEngine::Create(o, {&dev}, &clock, registry);
  ASSERT_TRUE(engine.ok());
  engine->reset();
  SUCCEED();
}

// After a burst, an idle device's cached free blocks give their memory back
// (the daemon's RSS falls back on host devices), once per change.
TEST_F(MemoryEngineTest, IdleDeviceDiscardsCachedFreeMemoryOnce) {
  MemoryEngineOptions o = Defaults();
  o.pool_size_mb = 16;
  o.compaction_idle_time = absl::Seconds(5);
  Build(1, 64 * kMiB, o);
  EXPECT_EQ(engine_->RunMaintenanceOnce().discarded_bytes, 0u);  // nothing happened yet
  TensorInfo a = Alloc(4 * kMiB);
  ASSERT_TRUE(engine_->FreeTensor(a.id).ok());
  EXPECT_EQ(engine_->RunMaintenanceOnce().discarded_bytes, 0u);  // not idle yet
  clock_.Advance(absl::Seconds(6));
  EXPECT_EQ(engine_->RunMaintenanceOnce().discarded_bytes, 16 * kMiB);
  EXPECT_EQ(engine_->RunMaintenanceOnce().discarded_bytes, 0u);  // no change since
  EXPECT_EQ(engine_->GetDeviceStats(0)->reserved_bytes, 16 * kMiB);
}

}  // namespace
}  // namespace inferd
