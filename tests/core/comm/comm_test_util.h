// Shared set-up of the comm engine tests: N host devices (optionally behind
// a wrapper that denies peer access, fails copies on demand and counts the
// threads waiting for its events), a memory engine over them, tensor
// helpers, and a blocker that holds a stream at a known point.
#ifndef INFERD_TESTS_CORE_COMM_COMM_TEST_UTIL_H_
#define INFERD_TESTS_CORE_COMM_COMM_TEST_UTIL_H_

#include <atomic>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/device/host_device.h"
#include "core/memory/memory_engine.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace inferd::testing_comm {

class WrappedDevice;

// An event of a WrappedDevice: forwards to the inner device's event and
// tells the device while a thread waits in Synchronize. Thread-safe.
class WrappedEvent final : public Event {
 public:
  WrappedEvent(WrappedDevice* device, std::unique_ptr<Event> inner)
      : device_(device), inner_(std::move(inner)) {}

  Event& inner() { return *inner_; }
  // The inner event of a WrappedEvent; other events as they are.
  static Event& Unwrap(Event& e) {
    auto* w = dynamic_cast<WrappedEvent*>(&e);
    return w != nullptr ? w->inner() : e;
  }

  bool IsComplete() override { return inner_->IsComplete(); }
  absl::Status Synchronize() override;

 private:
  WrappedDevice* const device_;
  std::unique_ptr<Event> inner_;
};

// Forwards to a HostStream but reports the wrapper as its device; fails
// copies while the device's fault switch is on. Thread-safe.
class WrappedStream final : public Stream {
 public:
  WrappedStream(WrappedDevice* device, Stream* inner) : device_(device), inner_(inner) {}

  Device& device() override;
  int id() const override { return inner_->id(); }
  absl::Status CopyHostToDevice(void* dst, const void* src, size_t bytes) override {
    if (absl::Status st = Fault(); !st.ok()) return st;
    return inner_->CopyHostToDevice(dst, src, bytes);
  }
  absl::Status CopyDeviceToHost(void* dst, const void* src, size_t bytes) override {
    if (absl::Status st = Fault(); !st.ok()) return st;
    return inner_->CopyDeviceToHost(dst, src, bytes);
  }
  absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes) override {
    if (absl::Status st = Fault(); !st.ok()) return st;
    return inner_->CopyDeviceToDevice(dst, src, bytes);
  }
  absl::Status CopyFromPeer(void* dst, Device& src_device, const void* src, size_t bytes) override {
    if (absl::Status st = Fault(); !st.ok()) return st;
    return inner_->CopyFromPeer(dst, src_device, src, bytes);
  }
  absl::Status Memset(void* dst, uint8_t value, size_t bytes) override {
    return inner_->Memset(dst, value, bytes);
  }
  absl::Status ThenCallback(absl::AnyInvocable<void(absl::Status) &&> fn) override {
    return inner_->ThenCallback(std::move(fn));
  }
  absl::Status RecordEvent(Event& event) override {
    return inner_->RecordEvent(WrappedEvent::Unwrap(event));
  }
  absl::Status WaitEvent(Event& event) override {
    return inner_->WaitEvent(WrappedEvent::Unwrap(event));
  }
  absl::Status Synchronize() override { return inner_->Synchronize(); }
  void* native_handle() override { return nullptr; }

 private:
  absl::Status Fault();
  WrappedDevice* const device_;
  Stream* const inner_;
};

// A HostDevice behind a wrapper: CanAccessPeer answers `peer_access`, and
// copies fail with INTERNAL while fail_copies is set. Thread-safe.
class WrappedDevice final : public Device {
 public:
  WrappedDevice(std::unique_ptr<HostDevice> inner, bool peer_access)
      : inner_(std::move(inner)), peer_access_(peer_access) {
    for (int i = 0; i < inner_->num_streams(); ++i) {
      streams_.push_back(std::make_unique<WrappedStream>(this, &inner_->stream(i)));
    }
  }

  std::atomic<bool> fail_copies{false};

  const DeviceInfo& info() const override { return inner_->info(); }
  absl::StatusOr<MemoryInfo> GetMemoryInfo() override { return inner_->GetMemoryInfo(); }
  absl::StatusOr<double> GetUtilization() override { return inner_->GetUtilization(); }
  absl::StatusOr<void*> AllocateRaw(size_t bytes) override { return inner_->AllocateRaw(bytes); }
  void FreeRaw(void* ptr) override { inner_->FreeRaw(ptr); }
  absl::StatusOr<void*> AllocatePinnedHost(size_t bytes) override {
    return inner_->AllocatePinnedHost(bytes);
  }
  void FreePinnedHost(void* ptr) override { inner_->FreePinnedHost(ptr); }
  int num_streams() const override { return static_cast<int>(streams_.size()); }
  Stream& stream(int i) override { return *streams_[static_cast<size_t>(i) % streams_.size()]; }
  std::unique_ptr<Event> CreateEvent() override {
    return std::make_unique<WrappedEvent>(this, inner_->CreateEvent());
  }
  Kernels& kernels() override { return inner_->kernels(); }
  bool CanAccessPeer(const Device& other) const override { return &other == this || peer_access_; }
  absl::Status Synchronize() override { return inner_->Synchronize(); }

  // Returns once `n` threads wait in Synchronize of this device's events.
  void AwaitEventWaiters(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return event_waiters_ >= n; };
    mu_.Await(absl::Condition(&reached));
  }
  void AddEventWaiter(int delta) {
    absl::MutexLock lock(&mu_);
    event_waiters_ += delta;
  }

 private:
  std::unique_ptr<HostDevice> inner_;
  const bool peer_access_;
  std::vector<std::unique_ptr<WrappedStream>> streams_;
  absl::Mutex mu_;
  int event_waiters_ ABSL_GUARDED_BY(mu_) = 0;
};

inline absl::Status WrappedEvent::Synchronize() {
  device_->AddEventWaiter(+1);
  absl::Status st = inner_->Synchronize();
  device_->AddEventWaiter(-1);
  return st;
}

// Holds `stream` (of a device with asynchronous streams: inline_when_idle
// off) from construction until Release or destruction: work enqueued
// meanwhile waits behind it. Used from the test's thread.
class StreamBlocker {
 public:
  explicit StreamBlocker(Stream& stream) : release_(std::make_shared<absl::Notification>()) {
    absl::Status st =
        stream.ThenCallback([release = release_](absl::Status) { release->WaitForNotification(); });
    EXPECT_TRUE(st.ok()) << st;
  }
  ~StreamBlocker() { Release(); }
  StreamBlocker(const StreamBlocker&) = delete;
  StreamBlocker& operator=(const StreamBlocker&) = delete;

  void Release() {
    if (!release_->HasBeenNotified()) release_->Notify();
  }

 private:
  std::shared_ptr<absl::Notification> release_;
};

inline Device& WrappedStream::device() { return *device_; }
inline absl::Status WrappedStream::Fault() {
  if (device_->fail_copies.load()) return absl::InternalError("injected copy fault");
  return absl::OkStatus();
}

struct DeviceSetup {
  int count = 4;
  uint64_t capacity = 256ull << 20;
  int streams = 4;
  bool inline_when_idle = true;
  bool wrapped = false;     // behind WrappedDevice
  bool peer_access = true;  // for wrapped devices
};

// Devices plus a memory engine over them. Not thread-safe (set-up only).
class CommFixture : public ::testing::Test {
 protected:
  void BuildDevices(const DeviceSetup& setup) {
    for (int i = 0; i < setup.count; ++i) {
      HostDeviceOptions ho;
      ho.index = i;
      ho.ordinal = i;
      ho.capacity_bytes = setup.capacity;
      ho.num_streams = setup.streams;
      ho.inline_when_idle = setup.inline_when_idle;
      auto host = std::make_unique<HostDevice>(ho);
      if (setup.wrapped) {
        devices_.push_back(std::make_unique<WrappedDevice>(std::move(host), setup.peer_access));
      } else {
        devices_.push_back(std::move(host));
      }
      raw_.push_back(devices_.back().get());
    }
    MemoryEngineOptions mo;
    mo.pool_size_mb = 0;
    mo.max_pool_fraction = 1.0;
    mo.enable_monitoring = false;
    auto memory = MemoryEngine::Create(mo, raw_, &clock_, registry_);
    ASSERT_TRUE(memory.ok()) << memory.status();
    memory_ = *std::move(memory);
  }

  // A tensor on `device` holding `bytes` (its byte size must match).
  TensorId MakeTensor(int device, DataType dtype, std::vector<int64_t> shape,
                      const std::vector<uint8_t>& bytes) {
    TensorRequest r;
    r.device = device;
    r.dtype = dtype;
    r.shape = std::move(shape);
    r.owner = "test";
    auto info = memory_->AllocateTensor(r);
    EXPECT_TRUE(info.ok()) << info.status();
    if (!info.ok()) return TensorId();
    EXPECT_EQ(info->byte_size, bytes.size());
    absl::Status st = memory_->WriteTensor(info->id, 0, bytes);
    EXPECT_TRUE(st.ok()) << st;
    return info->id;
  }

  std::vector<uint8_t> ReadTensor(const TensorId& id) {
    auto info = memory_->GetTensorInfo(id);
    EXPECT_TRUE(info.ok()) << info.status();
    if (!info.ok()) return {};
    std::vector<uint8_t> out(info->byte_size);
    absl::Status st = memory_->ReadTensor(id, 0, absl::MakeSpan(out));
    EXPECT_TRUE(st.ok()) << st;
    return out;
  }

  static std::vector<uint8_t> Pattern(uint64_t bytes, uint32_t seed) {
    std::vector<uint8_t> v(bytes);
    for (uint64_t i = 0; i < bytes; ++i) {
      v[i] = static_cast<uint8_t>(seed * 31 + i * 7 + (i >> 8) * 13);
    }
    return v;
  }

  std::string Scrape() {
    prometheus::TextSerializer s;
    std::ostringstream os;
    s.Serialize(os, registry_.Collect());
    return os.str();
  }

  FakeClock clock_;
  prometheus::Registry registry_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<Device*> raw_;
  std::unique_ptr<MemoryEngine> memory_;
};

}  // namespace inferd::testing_comm

#endif  // INFERD_TESTS_CORE_COMM_COMM_TEST_UTIL_H_
