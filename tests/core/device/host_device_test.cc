#include "core/device/host_device.h"

#include <atomic>
#include <cstring>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

#include <unistd.h>

#include "absl/synchronization/notification.h"
#include "core/device/host_kernels.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

HostDeviceOptions Options(bool inline_when_idle) {
  HostDeviceOptions o;
  o.capacity_bytes = 1 << 20;
  o.num_streams = 2;
  o.inline_when_idle = inline_when_idle;
  return o;
}

class HostDeviceTest : public ::testing::TestWithParam<bool> {};

TEST_P(HostDeviceTest, AllocatesWithinCapacity) {
  HostDevice dev(Options(GetParam()));
  auto a = dev.AllocateRaw(512 << 10);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = dev.AllocateRaw(600 << 10);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(b.status().message().find("device 0"), std::string::npos) << b.status();
  auto info = dev.GetMemoryInfo();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->total_bytes, 1u << 20);
  EXPECT_EQ(info->free_bytes, (1u << 20) - (512u << 10));
  dev.FreeRaw(*a);
  EXPECT_EQ(dev.GetMemoryInfo()->free_bytes, 1u << 20);
}

TEST_P(HostDeviceTest, CopiesRunInOrderAndCallbackSeesThem) {
  HostDevice dev(Options(GetParam()));
  std::vector<int32_t> src(1000), dst(1000, -1);
  std::iota(src.begin(), src.end(), 0);
  auto buf = dev.AllocateRaw(src.size() * 4);
  ASSERT_TRUE(buf.ok());
  Stream& s = dev.stream(0);
  ASSERT_TRUE(s.CopyHostToDevice(*buf, src.data(), src.size() * 4).ok());
  ASSERT_TRUE(dev.kernels().Scale(s, DataType::kInt32, *buf, 2.0, *buf, src.size()).ok());
  ASSERT_TRUE(s.CopyDeviceToHost(dst.data(), *buf, src.size() * 4).ok());
  absl::Notification done;
  ASSERT_TRUE(s.ThenCallback([&](absl::Status st) {
                 EXPECT_TRUE(st.ok());
                 done.Notify();
               }).ok());
  done.WaitForNotification();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(dst[i], 2 * i);
  dev.FreeRaw(*buf);
}

// Verifies that a failed op fails the callback after it and no later one:
// a model's exception must not poison the stream for every later request.
TEST_P(HostDeviceTest, OpErrorReachesTheNextCallbackOnly) {
  HostDevice dev(Options(GetParam()));
  Stream& s = dev.stream(0);
  ASSERT_TRUE(EnqueueOnHostStream(s, [] { return absl::InternalError("model raised"); }).ok());
  absl::Status first;
  absl::Status second;
  absl::Notification done;
  ASSERT_TRUE(s.ThenCallback([&](absl::Status st) { first = std::move(st); }).ok());
  ASSERT_TRUE(s.ThenCallback([&](absl::Status st) {
                 second = std::move(st);
                 done.Notify();
               }).ok());
  done.WaitForNotification();
  EXPECT_EQ(first.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(first.message(), "model raised");
  EXPECT_TRUE(second.ok()) << second;
  ASSERT_TRUE(EnqueueOnHostStream(s, [] { return absl::DataLossError("bad"); }).ok());
  EXPECT_EQ(s.Synchronize().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(s.Synchronize().ok());
}

// Verifies that a stream waiting on an event runs nothing until the work
// recorded before the event has run on the other stream.
TEST_P(HostDeviceTest, EventOrdersWorkAcrossStreams) {
  HostDevice dev(Options(GetParam()));
  std::atomic<int> stage{0};
  absl::Notification release;
  Stream& s0 = dev.stream(0);
  Stream& s1 = dev.stream(1);
  auto ev = dev.CreateEvent();
  EXPECT_TRUE(ev->IsComplete());
  // In inline mode the blocking callback runs on `holder`, else on s0's worker.
  absl::Notification entered;
  std::thread holder([&] {
    ASSERT_TRUE(s0.ThenCallback([&](absl::Status) {
                   entered.Notify();
                   release.WaitForNotification();
                   stage = 1;
                 }).ok());
  });
  entered.WaitForNotification();
  ASSERT_TRUE(s0.RecordEvent(*ev).ok());
  EXPECT_FALSE(ev->IsComplete());
  ASSERT_TRUE(s1.WaitEvent(*ev).ok());
  std::atomic<int> seen{-1};
  std::thread submitter([&] {
    ASSERT_TRUE(s1.ThenCallback([&](absl::Status) { seen = stage.load(); }).ok());
  });
  release.Notify();
  holder.join();
  submitter.join();
  ASSERT_TRUE(s1.Synchronize().ok());
  ASSERT_TRUE(ev->Synchronize().ok());
  EXPECT_TRUE(ev->IsComplete());
  EXPECT_EQ(seen.load(), 1);
}

// Verifies that an event may be destroyed while its record and a wait for
// it are still queued behind other work (the memory engine's compaction
// drops its event so; AddressSanitizer reported the queued record writing
// to the freed event).
TEST_P(HostDeviceTest, EventDestroyedWhileRecordAndWaitAreQueued) {
  HostDevice dev(Options(GetParam()));
  Stream& s0 = dev.stream(0);
  Stream& s1 = dev.stream(1);
  absl::Notification entered;
  absl::Notification release;
  std::thread holder([&] {
    ASSERT_TRUE(s0.ThenCallback([&](absl::Status) {
                   entered.Notify();
                   release.WaitForNotification();
                 }).ok());
  });
  entered.WaitForNotification();
  {
    std::unique_ptr<Event> ev = dev.CreateEvent();
    ASSERT_TRUE(s0.RecordEvent(*ev).ok());
    ASSERT_TRUE(s1.WaitEvent(*ev).ok());
    EXPECT_FALSE(ev->IsComplete());
  }
  bool s1_ran = false;
  ASSERT_TRUE(s1.ThenCallback([&](absl::Status) { s1_ran = true; }).ok());
  release.Notify();
  holder.join();
  EXPECT_TRUE(s0.Synchronize().ok());
  EXPECT_TRUE(s1.Synchronize().ok());
  EXPECT_TRUE(s1_ran);
}

TEST_P(HostDeviceTest, KernelsRejectBytes) {
  HostDevice dev(Options(GetParam()));
  char a[4], b[4], c[4];
  auto st = dev.kernels().Add(dev.stream(0), DataType::kBytes, a, b, c, 4);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("BYTES"), std::string::npos);
}

TEST_P(HostDeviceTest, AddAndReduceAllDtypes) {
  HostDevice dev(Options(GetParam()));
  for (DataType t : kAllFixedDataTypes) {
    const size_t sz = DataTypeSize(t);
    std::vector<uint8_t> a(8 * sz, 0), b(8 * sz, 0), out(8 * sz, 0xff);
    ASSERT_TRUE(dev.kernels().Add(dev.stream(0), t, a.data(), b.data(), out.data(), 8).ok())
        << DataTypeName(t);
    ASSERT_TRUE(dev.stream(0).Synchronize().ok());
    EXPECT_EQ(out, a) << DataTypeName(t);  // 0 + 0 == 0 in every encoding
  }
}

INSTANTIATE_TEST_SUITE_P(InlineAndWorker, HostDeviceTest, ::testing::Bool());

// DiscardMemory gives whole pages inside the range back (they read as
// zeros) and leaves the partial pages at its ends alone.
TEST(HostDeviceDiscardTest, DiscardsWholePagesOnly) {
  HostDevice dev(HostDeviceOptions{});
  for (size_t size : {size_t{64} << 10, size_t{4} << 20}) {  // malloc'ed and mapped
    auto p = dev.AllocateRaw(size);
    ASSERT_TRUE(p.ok()) << p.status();
    auto* bytes = static_cast<uint8_t*>(*p);
    std::memset(bytes, 0xab, size);
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    // From the middle of a page to the middle of a later one.
    const uintptr_t base = reinterpret_cast<uintptr_t>(bytes);
    const uintptr_t first = (base + page - 1) / page * page + page / 2;
    const uintptr_t last = (base + size) / page * page - page / 2;
    dev.DiscardMemory(reinterpret_cast<void*>(first), last - first);
    auto at = [&](uintptr_t a) { return bytes[a - base]; };
    EXPECT_EQ(at(first), 0xab) << size;                  // partial first page kept
    EXPECT_EQ(at(first - page / 2 + page), 0) << size;   // whole pages: zeros
    EXPECT_EQ(at(last - page / 2 - 1), 0) << size;
    EXPECT_EQ(at(last - page / 2), 0xab) << size;        // partial last page kept
    EXPECT_EQ(at(last - 1), 0xab) << size;
    dev.FreeRaw(*p);
  }
}

}  // namespace
}  // namespace inferd
