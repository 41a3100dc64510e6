// CudaDevice, CudaStream, CudaEvent, discovery and NVML on real GPUs. Tests
// skip when the machine has no CUDA device, except those that check the
// no-GPU behaviour itself.
#include "core/device/cuda/cuda_device.h"

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/device/cuda/cuda_status.h"
#include "core/device/cuda/nvml.h"
#include "core/device/discovery.h"
#include "core/device/host_device.h"
#include "gtest/gtest.h"
#include "tests/gpu/gpu_fixture.h"

namespace inferd {
namespace {

using testing_gpu::DeviceBuffer;
using testing_gpu::GpuTest;
using testing_gpu::PinnedBuffer;

int VisibleGpus() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 131 + (i >> 8));
  return v;
}

// Discovery ---------------------------------------------------------------

TEST(CudaDiscoveryTest, BuiltWithCuda) { EXPECT_TRUE(BuiltWithCuda()); }

TEST(CudaDiscoveryTest, NoGpuIsAnEmptyListNotAnError) {
  if (VisibleGpus() > 0) GTEST_SKIP() << "this machine has a GPU";
  auto all = DiscoverCudaDevices({}, 2);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->empty());
  auto some = DiscoverCudaDevices({0}, 2);
  ASSERT_TRUE(some.ok()) << some.status();
  EXPECT_TRUE(some->empty());
}

TEST_F(GpuTest, DiscoveryIndexesDevicesInOrder) {
  ASSERT_EQ(static_cast<int>(devices_.size()), VisibleGpus());
  for (size_t i = 0; i < devices_.size(); ++i) {
    const DeviceInfo& info = devices_[i]->info();
    EXPECT_EQ(info.index, static_cast<int>(i));
    EXPECT_EQ(info.ordinal, static_cast<int>(i));
    EXPECT_EQ(info.kind, DeviceKind::kCuda);
    EXPECT_FALSE(info.name.empty());
    EXPECT_GT(info.total_memory_bytes, 0u);
    EXPECT_GE(info.compute_capability_major, 1);
    EXPECT_EQ(info.num_streams, 2);
    EXPECT_EQ(devices_[i]->num_streams(), 2);
    EXPECT_NE(devices_[i]->stream(0).native_handle(), devices_[i]->stream(1).native_handle());
  }
}

TEST_F(GpuTest, DiscoveryHonoursAndChecksOrdinals) {
  const int count = VisibleGpus();
  auto last = DiscoverCudaDevices({count - 1}, 1);
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_EQ(last->size(), 1u);
  EXPECT_EQ((*last)[0]->index(), 0);
  EXPECT_EQ((*last)[0]->info().ordinal, count - 1);

  auto missing = DiscoverCudaDevices({count}, 1);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("device.cuda_devices"), std::string::npos)
      << missing.status();
  EXPECT_NE(missing.status().message().find(absl::StrCat(count)), std::string::npos)
      << missing.status();

  auto twice = DiscoverCudaDevices({0, 0}, 1);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
}

// Memory -------------------------------------------------------------------

TEST_F(GpuTest, ReportsMemoryAndAllocationsTakeFromIt) {
  auto before = gpu().GetMemoryInfo();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_GT(before->total_bytes, 0u);
  EXPECT_LE(before->total_bytes, gpu().info().total_memory_bytes);
  EXPECT_LE(before->free_bytes, before->total_bytes);
  constexpr size_t kBytes = 256u << 20;
  DeviceBuffer buf(gpu(), kBytes);
  ASSERT_NE(buf.get(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buf.get()) % 256, 0u);
  auto after = gpu().GetMemoryInfo();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_LE(after->free_bytes + kBytes, before->free_bytes);
}

TEST_F(GpuTest, AllocationBeyondTotalIsResourceExhausted) {
  const uint64_t total = gpu().info().total_memory_bytes;
  const size_t request = total + (1ull << 30);
  auto p = gpu().AllocateRaw(request);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kResourceExhausted);
  const std::string message(p.status().message());
  EXPECT_NE(message.find("device 0"), std::string::npos) << message;
  EXPECT_NE(message.find(absl::StrCat(request)), std::string::npos) << message;
  EXPECT_NE(message.find("free"), std::string::npos) << message;
  // The failure left no error behind: the next calls work.
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  DeviceBuffer small(gpu(), 1 << 20);
  EXPECT_NE(small.get(), nullptr);
  EXPECT_TRUE(gpu().Synchronize().ok());
}

TEST_F(GpuTest, UtilizationIsAFractionOrUnavailable) {
  for (auto& d : devices_) {
    auto u = d->GetUtilization();
    if (u.ok()) {
      EXPECT_GE(*u, 0.0);
      EXPECT_LE(*u, 1.0);
    } else {
      EXPECT_EQ(u.status().code(), absl::StatusCode::kUnavailable) << u.status();
    }
    std::printf("device %d utilization: %s\n", d->index(),
                u.ok() ? absl::StrCat(*u).c_str() : std::string(u.status().message()).c_str());
  }
}

TEST(NvmlTest, MissingLibraryIsUnavailable) {
  Nvml nvml("libinferd-no-such-nvml.so.1");
  auto u = nvml.GetUtilization("00000000:01:00.0");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(u.status().message().find("libinferd-no-such-nvml.so.1"), std::string::npos)
      << u.status();
  // The outcome is remembered, not retried.
  EXPECT_EQ(nvml.GetUtilization("00000000:01:00.0").status(), u.status());
}

TEST(CudaStatusTest, NamesOpDeviceAndCudaError) {
  absl::Status st = CudaStatus(cudaErrorMemoryAllocation, "cudaMalloc", 3);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("cudaMalloc on device 3"), std::string::npos) << st;
  EXPECT_NE(st.message().find(cudaGetErrorString(cudaErrorMemoryAllocation)), std::string::npos);
  EXPECT_EQ(CudaStatus(cudaErrorInvalidValue, "x", 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CudaStatus(cudaErrorIllegalAddress, "x", 0).code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(CudaStatus(cudaSuccess, "x", 0).ok());
  EXPECT_TRUE(IsStickyCudaError(cudaErrorIllegalAddress));
  EXPECT_FALSE(IsStickyCudaError(cudaErrorMemoryAllocation));
}

// Copies --------------------------------------------------------------------

TEST_F(GpuTest, CopiesRoundTripThroughDevice) {
  for (size_t bytes : {size_t{1}, size_t{4097}, size_t{8} << 20}) {
    const std::vector<uint8_t> src = Pattern(bytes, 7);
    DeviceBuffer a(gpu(), bytes), b(gpu(), bytes);
    PinnedBuffer pinned_src(gpu(), bytes), pinned_dst(gpu(), bytes);
    std::memcpy(pinned_src.get(), src.data(), bytes);
    std::vector<uint8_t> pageable_dst(bytes, 0);
    Stream& s = gpu().stream(1);
    ASSERT_TRUE(s.CopyHostToDevice(a.get(), pinned_src.get(), bytes).ok());
    ASSERT_TRUE(s.CopyDeviceToDevice(b.get(), a.get(), bytes).ok());
    ASSERT_TRUE(s.CopyDeviceToHost(pinned_dst.get(), b.get(), bytes).ok());
    ASSERT_TRUE(s.Memset(a.get(), 0xab, bytes).ok());
    ASSERT_TRUE(s.CopyDeviceToHost(pageable_dst.data(), a.get(), bytes).ok());
    ASSERT_TRUE(s.Synchronize().ok());
    EXPECT_EQ(std::memcmp(pinned_dst.get(), src.data(), bytes), 0) << bytes << " bytes";
    EXPECT_EQ(pageable_dst, std::vector<uint8_t>(bytes, 0xab)) << bytes << " bytes";
    // Pageable source too.
    ASSERT_TRUE(s.CopyHostToDevice(b.get(), src.data(), bytes).ok());
    ASSERT_TRUE(s.CopyDeviceToHost(pageable_dst.data(), b.get(), bytes).ok());
    ASSERT_TRUE(s.Synchronize().ok());
    EXPECT_EQ(pageable_dst, src) << bytes << " bytes";
  }
  EXPECT_TRUE(gpu().stream(0).CopyHostToDevice(nullptr, nullptr, 0).ok());
  EXPECT_EQ(gpu().stream(0).CopyHostToDevice(nullptr, nullptr, 8).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GpuTest, CopyFromPeerWorksForSelfHostAndOtherGpus) {
  constexpr size_t kBytes = (4u << 20) + 3;
  const std::vector<uint8_t> src = Pattern(kBytes, 3);
  std::vector<uint8_t> out(kBytes);

  // From a host device (plain host memory).
  HostDevice host(HostDeviceOptions{});
  DeviceBuffer a(gpu(), kBytes), b(gpu(), kBytes);
  Stream& s = gpu().stream(0);
  ASSERT_TRUE(s.CopyFromPeer(a.get(), host, src.data(), kBytes).ok());
  // From the same GPU.
  ASSERT_TRUE(s.CopyFromPeer(b.get(), gpu(), a.get(), kBytes).ok());
  ASSERT_TRUE(s.CopyDeviceToHost(out.data(), b.get(), kBytes).ok());
  ASSERT_TRUE(s.Synchronize().ok());
  EXPECT_EQ(out, src);
  EXPECT_TRUE(gpu().CanAccessPeer(gpu()));
  EXPECT_FALSE(gpu().CanAccessPeer(host));

  // Between every ordered pair of GPUs.
  for (size_t i = 0; i < devices_.size(); ++i) {
    for (size_t j = 0; j < devices_.size(); ++j) {
      if (i == j) continue;
      Device& from = *devices_[i];
      Device& to = *devices_[j];
      int can = 0;
      ASSERT_EQ(cudaDeviceCanAccessPeer(&can, to.info().ordinal, from.info().ordinal), cudaSuccess);
      EXPECT_EQ(to.CanAccessPeer(from), can != 0) << i << " -> " << j;
      DeviceBuffer on_from(from, kBytes), on_to(to, kBytes);
      std::vector<uint8_t> back(kBytes, 0);
      const std::vector<uint8_t> data = Pattern(kBytes, static_cast<uint8_t>(i * 16 + j));
      ASSERT_TRUE(from.stream(0).CopyHostToDevice(on_from.get(), data.data(), kBytes).ok());
      ASSERT_TRUE(from.stream(0).Synchronize().ok());
      ASSERT_TRUE(to.stream(1).CopyFromPeer(on_to.get(), from, on_from.get(), kBytes).ok());
      ASSERT_TRUE(to.stream(1).CopyDeviceToHost(back.data(), on_to.get(), kBytes).ok());
      ASSERT_TRUE(to.stream(1).Synchronize().ok());
      EXPECT_EQ(back, data) << "peer copy " << i << " -> " << j;
    }
  }
  if (devices_.size() < 2) std::printf("one GPU: peer copies between GPUs not exercised\n");
}

// Callbacks -----------------------------------------------------------------

// Verifies that callbacks run in enqueue order, each after the copy enqueued
// before it, and that Synchronize returns only after they have run.
TEST_F(GpuTest, CallbacksRunInOrderAfterEarlierWork) {
  constexpr int kCount = 200;
  DeviceBuffer dev(gpu(), kCount);
  PinnedBuffer host(gpu(), kCount);
  std::memset(host.get(), 0xff, kCount);
  Stream& s = gpu().stream(0);
  absl::Mutex mu;
  std::vector<int> order;
  std::vector<int> seen(kCount, -1);
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(s.Memset(dev.bytes() + i, static_cast<uint8_t>(i), 1).ok());
    ASSERT_TRUE(s.CopyDeviceToHost(host.get() + i, dev.bytes() + i, 1).ok());
    ASSERT_TRUE(s.ThenCallback([&, i](absl::Status st) {
                   EXPECT_TRUE(st.ok()) << st;
                   absl::MutexLock lock(&mu);
                   order.push_back(i);
                   seen[i] = host.get()[i];
                 }).ok());
  }
  ASSERT_TRUE(s.Synchronize().ok());
  absl::MutexLock lock(&mu);
  std::vector<int> want(kCount);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(order, want);
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(seen[i], i % 256) << i;
}

// Verifies that a callback may enqueue more device work (it runs outside
// CUDA's host-function thread, where CUDA calls are not permitted).
TEST_F(GpuTest, CallbackMayEnqueueWork) {
  DeviceBuffer dev(gpu(), 64);
  PinnedBuffer host(gpu(), 64);
  std::memset(host.get(), 0, 64);
  Stream& s = gpu().stream(0);
  absl::Notification done;
  absl::Status inner;
  ASSERT_TRUE(s.ThenCallback([&](absl::Status) {
                 inner = s.Memset(dev.get(), 0x5a, 64);
                 if (inner.ok()) inner = s.CopyDeviceToHost(host.get(), dev.get(), 64);
                 if (inner.ok()) inner = s.ThenCallback([&](absl::Status) { done.Notify(); });
               }).ok());
  done.WaitForNotification();
  EXPECT_TRUE(inner.ok()) << inner;
  EXPECT_EQ(host.get()[0], 0x5a);
  EXPECT_EQ(host.get()[63], 0x5a);
}

// Verifies that MarkTime gives the GPU's time between marks, resolved by
// the next callback (or by Synchronize when no callback follows): the
// interval around device-to-device copies matches CUDA's own timing events
// around them, where enqueueing the copies takes a small part of it (the
// time of the calls, which is what a mark without the GPU's clock gives).
TEST_F(GpuTest, MarkTimeMeasuresTheGpuNotTheEnqueue) {
  constexpr size_t kBytes = size_t{256} << 20;
  DeviceBuffer a(gpu(), kBytes);
  DeviceBuffer b(gpu(), kBytes);
  Stream& s = gpu().stream(0);
  auto raw = static_cast<cudaStream_t>(s.native_handle());
  cudaEvent_t e0 = nullptr;
  cudaEvent_t e1 = nullptr;
  ASSERT_EQ(cudaEventCreate(&e0), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&e1), cudaSuccess);
  for (const bool with_callback : {true, false}) {
    SCOPED_TRACE(with_callback ? "resolved by a callback" : "resolved by Synchronize");
    int64_t marks[2] = {0, 0};
    ASSERT_TRUE(s.MarkTime(&marks[0]).ok());
    ASSERT_EQ(cudaEventRecord(e0, raw), cudaSuccess);
    const int64_t enqueue_start = absl::GetCurrentTimeNanos();
    for (int i = 0; i < 8; ++i) {
      ASSERT_TRUE(s.CopyDeviceToDevice(b.get(), a.get(), kBytes).ok());
      ASSERT_TRUE(s.CopyDeviceToDevice(a.get(), b.get(), kBytes).ok());
    }
    const int64_t enqueue_ns = absl::GetCurrentTimeNanos() - enqueue_start;
    ASSERT_EQ(cudaEventRecord(e1, raw), cudaSuccess);
    ASSERT_TRUE(s.MarkTime(&marks[1]).ok());
    int64_t seen[2] = {0, 0};
    if (with_callback) {
      absl::Notification done;
      ASSERT_TRUE(s.ThenCallback([&](absl::Status st) {
                     EXPECT_TRUE(st.ok()) << st;
                     seen[0] = marks[0];
                     seen[1] = marks[1];
                     done.Notify();
                   }).ok());
      done.WaitForNotification();
    } else {
      ASSERT_TRUE(s.Synchronize().ok());
      seen[0] = marks[0];
      seen[1] = marks[1];
    }
    float ms = 0;
    ASSERT_EQ(cudaEventElapsedTime(&ms, e0, e1), cudaSuccess);
    const double gpu_ns = static_cast<double>(ms) * 1e6;
    ASSERT_GT(gpu_ns, 4.0 * static_cast<double>(enqueue_ns)) << "copies too short to tell apart";
    EXPECT_NEAR(static_cast<double>(seen[1] - seen[0]), gpu_ns, 0.05 * gpu_ns + 20e3);
  }
  ASSERT_TRUE(s.Synchronize().ok());
  EXPECT_EQ(cudaEventDestroy(e0), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(e1), cudaSuccess);
}

// Verifies that marks belong to the thread that recorded them: with two
// threads enqueueing on one stream (a model whose executions queue on one
// stream), thread A's callback resolves A's mark and leaves B's, which B's
// own callback resolves later. Before, a callback took every mark recorded
// so far, so it could write into another execution's marks after that
// execution had ended and freed them.
TEST_F(GpuTest, MarksBelongToTheThreadThatRecordedThem) {
  Stream& s = gpu().stream(2);
  ASSERT_TRUE(s.Synchronize().ok());
  int64_t a_mark = 0;
  int64_t b_mark = 0;
  int64_t a_call = 0;
  int64_t b_call = 0;
  // A's mark, then B's (on another thread), then A's callback, then B's.
  ASSERT_TRUE(s.MarkTime(&a_mark).ok());
  a_call = a_mark;
  std::thread([&] {
    ASSERT_TRUE(s.MarkTime(&b_mark).ok());
    b_call = b_mark;
  }).join();
  absl::SleepFor(absl::Milliseconds(2));  // callbacks run a measurable time later
  int64_t b_seen_by_a = 0;
  int64_t a_seen_by_a = 0;
  ASSERT_TRUE(s.ThenCallback([&](absl::Status st) {
                 EXPECT_TRUE(st.ok()) << st;
                 a_seen_by_a = a_mark;
                 b_seen_by_a = b_mark;
               }).ok());
  int64_t b_seen_by_b = 0;
  std::thread([&] {
    absl::Notification done;
    ASSERT_TRUE(s.ThenCallback([&](absl::Status st) {
                   EXPECT_TRUE(st.ok()) << st;
                   b_seen_by_b = b_mark;
                   done.Notify();
                 }).ok());
    done.WaitForNotification();
  }).join();
  ASSERT_TRUE(s.Synchronize().ok());
  EXPECT_NE(a_seen_by_a, a_call) << "A's callback did not resolve A's mark";
  EXPECT_EQ(b_seen_by_a, b_call) << "A's callback resolved B's mark";
  EXPECT_NE(b_seen_by_b, b_call) << "B's callback did not resolve B's mark";
}

// Verifies that inside an InlineCompletionScope a callback after a small
// copy on an idle stream runs on the calling thread once its work is done
// (at least once in 20 tries: the wait is bounded), always exactly once and
// after the copy; inside an AsyncOnlyScope it never runs there.
TEST_F(GpuTest, LoneCallbackMayRunOnTheCallingThread) {
  DeviceBuffer dev(gpu(), 64);
  PinnedBuffer host(gpu(), 64);
  Stream& s = gpu().stream(1);
  ASSERT_TRUE(s.Synchronize().ok());
  int inline_runs = 0;
  for (int i = 0; i < 20; ++i) {
    std::memset(host.get(), 0, 64);
    std::atomic<int> runs{0};
    std::atomic<bool> here{false};
    uint8_t seen = 0;
    const std::thread::id me = std::this_thread::get_id();
    {
      InlineCompletionScope lone(true);
      ASSERT_TRUE(s.Memset(dev.get(), static_cast<uint8_t>(i + 1), 64).ok());
      ASSERT_TRUE(s.CopyDeviceToHost(host.get(), dev.get(), 64).ok());
      ASSERT_TRUE(s.ThenCallback([&](absl::Status st) {
                     EXPECT_TRUE(st.ok()) << st;
                     seen = host.get()[63];
                     here = std::this_thread::get_id() == me;
                     runs.fetch_add(1);
                   }).ok());
    }
    ASSERT_TRUE(s.Synchronize().ok());
    while (runs.load() == 0) std::this_thread::yield();
    EXPECT_EQ(runs.load(), 1);
    EXPECT_EQ(seen, static_cast<uint8_t>(i + 1));
    inline_runs += here.load() ? 1 : 0;
  }
  EXPECT_GE(inline_runs, 1);
  std::atomic<bool> async_here{true};
  absl::Notification done;
  {
    InlineCompletionScope lone(true);
    AsyncOnlyScope async_only;
    const std::thread::id me = std::this_thread::get_id();
    ASSERT_TRUE(s.ThenCallback([&](absl::Status) {
                   async_here = std::this_thread::get_id() == me;
                   done.Notify();
                 }).ok());
  }
  done.WaitForNotification();
  EXPECT_FALSE(async_here.load());
}

// Events --------------------------------------------------------------------

TEST_F(GpuTest, NeverRecordedEventIsComplete) {
  auto ev = gpu().CreateEvent();
  EXPECT_TRUE(ev->IsComplete());
  EXPECT_TRUE(ev->Synchronize().ok());
  EXPECT_TRUE(gpu().stream(0).WaitEvent(*ev).ok());
  HostDevice host(HostDeviceOptions{});
  auto host_event = host.CreateEvent();
  EXPECT_EQ(gpu().stream(0).RecordEvent(*host_event).code(), absl::StatusCode::kInvalidArgument);
}

void CUDART_CB BlockUntilNotified(void* arg) {
  static_cast<absl::Notification*>(arg)->WaitForNotification();
}

// Verifies that a stream waiting on an event runs nothing until the work
// recorded before the event has run on the other stream.
TEST_F(GpuTest, EventOrdersWorkAcrossStreams) {
  Stream& s0 = gpu().stream(0);
  Stream& s1 = gpu().stream(1);
  DeviceBuffer dev(gpu(), 4096);
  PinnedBuffer host(gpu(), 4096);
  std::memset(host.get(), 0, 4096);
  ASSERT_TRUE(s0.Memset(dev.get(), 0, 4096).ok());
  ASSERT_TRUE(s0.Synchronize().ok());

  absl::Notification release;
  {
    ScopedCudaDevice guard(gpu().info().ordinal);
    ASSERT_EQ(cudaLaunchHostFunc(static_cast<cudaStream_t>(s0.native_handle()),
                                 &BlockUntilNotified, &release),
              cudaSuccess);
  }
  ASSERT_TRUE(s0.Memset(dev.get(), 7, 4096).ok());
  auto ev = gpu().CreateEvent();
  ASSERT_TRUE(s0.RecordEvent(*ev).ok());
  ASSERT_TRUE(s1.WaitEvent(*ev).ok());
  ASSERT_TRUE(s1.CopyDeviceToHost(host.get(), dev.get(), 4096).ok());
  std::atomic<bool> copied{false};
  ASSERT_TRUE(s1.ThenCallback([&](absl::Status) { copied = true; }).ok());

  EXPECT_FALSE(ev->IsComplete());
  EXPECT_FALSE(copied.load());
  release.Notify();
  ASSERT_TRUE(s1.Synchronize().ok());
  EXPECT_TRUE(copied.load());
  EXPECT_TRUE(ev->IsComplete());
  EXPECT_TRUE(ev->Synchronize().ok());
  EXPECT_EQ(std::vector<uint8_t>(host.get(), host.get() + 4096), std::vector<uint8_t>(4096, 7));
}

TEST_F(GpuTest, EventRecordedOnOneGpuOrdersAnother) {
  if (devices_.size() < 2) GTEST_SKIP() << "needs two GPUs";
  Device& a = *devices_[0];
  Device& b = *devices_[1];
  constexpr size_t kBytes = 1 << 20;
  DeviceBuffer on_a(a, kBytes), on_b(b, kBytes);
  std::vector<uint8_t> back(kBytes, 0);
  auto ev = a.CreateEvent();
  ASSERT_TRUE(a.stream(0).Memset(on_a.get(), 0x3c, kBytes).ok());
  ASSERT_TRUE(a.stream(0).RecordEvent(*ev).ok());
  ASSERT_TRUE(b.stream(0).WaitEvent(*ev).ok());
  ASSERT_TRUE(b.stream(0).CopyFromPeer(on_b.get(), a, on_a.get(), kBytes).ok());
  ASSERT_TRUE(b.stream(0).CopyDeviceToHost(back.data(), on_b.get(), kBytes).ok());
  ASSERT_TRUE(b.stream(0).Synchronize().ok());
  EXPECT_EQ(back, std::vector<uint8_t>(kBytes, 0x3c));
  // The same event can then be recorded on the other GPU.
  ASSERT_TRUE(b.stream(1).RecordEvent(*ev).ok());
  EXPECT_TRUE(ev->Synchronize().ok());
}

// Sticky errors -------------------------------------------------------------

// Runs in a child process: faults the device, then checks that a pending
// callback and a later one both receive the error. Exits 42 on success.
void FaultThenCheckCallbacks() {
  auto devices = DiscoverCudaDevices({0}, 1);
  if (!devices.ok() || devices->empty()) std::_Exit(2);
  Device& d = *(*devices)[0];
  Stream& s = d.stream(0);
  void* unmapped = reinterpret_cast<void*>(uintptr_t{1} << 12);
  if (!d.kernels().Add(s, DataType::kFp32, unmapped, unmapped, unmapped, 1 << 20).ok()) {
    std::_Exit(3);
  }
  absl::Notification pending_done, later_done;
  absl::Status pending_status, later_status;
  if (!s.ThenCallback([&](absl::Status st) {
          pending_status = st;
          pending_done.Notify();
        }).ok()) {
    std::_Exit(4);
  }
  const absl::Status sync = s.Synchronize();
  pending_done.WaitForNotification();
  (void)s.ThenCallback([&](absl::Status st) {
    later_status = st;
    later_done.Notify();
  });
  later_done.WaitForNotification();
  std::fprintf(stderr, "sync: %s\npending: %s\nlater: %s\n", sync.ToString().c_str(),
               pending_status.ToString().c_str(), later_status.ToString().c_str());
  std::_Exit(!sync.ok() && !pending_status.ok() && !later_status.ok() ? 42 : 1);
}

TEST(CudaStreamDeathTest, CallbacksReceiveStickyError) {
  if (VisibleGpus() == 0) GTEST_SKIP() << "no CUDA device";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(FaultThenCheckCallbacks(), ::testing::ExitedWithCode(42), "pending: INTERNAL");
}

}  // namespace
}  // namespace inferd
