#include "core/device/host_device.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/device/host_kernels.h"
#include "core/device/posix_shm.h"

namespace inferd {
namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define INFERD_HOST_DEVICE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define INFERD_HOST_DEVICE_ASAN 1
#endif

// Tensor memory from this size up is mapped and unmapped directly, so a
// freed tensor's pages go back to the system at once: through malloc they
// could stay in the process (glibc raises its mmap threshold after large
// frees and keeps freed heap memory). AddressSanitizer builds keep malloc
// so overflows of tensor memory are caught.
bool DirectlyMapped(size_t rounded) {
#ifdef INFERD_HOST_DEVICE_ASAN
  return false;
#else
  constexpr size_t kDirectMapBytes = 1 << 20;
  return rounded >= kDirectMapBytes;
#endif
}

void* AllocateHostMemory(size_t align, size_t rounded) {
  if (DirectlyMapped(rounded)) {
    void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  return std::aligned_alloc(align, rounded);
}

void FreeHostMemory(void* p, size_t rounded) {
  if (DirectlyMapped(rounded)) {
    munmap(p, rounded);
  } else {
    std::free(p);
  }
}

}  // namespace

// One in-order queue served by one worker thread (or, when idle and
// inline_when_idle is set, by the enqueuing thread). Thread-safe.
class HostStream final : public Stream {
 public:
  using Op = absl::AnyInvocable<absl::Status() &&>;

  HostStream(HostDevice* device, int id, bool inline_when_idle)
      : device_(device), id_(id), inline_when_idle_(inline_when_idle) {
    worker_ = std::thread([this] { WorkerLoop(); });
  }

  ~HostStream() override {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    worker_.join();
  }

  // Runs `op` after all earlier ops. Never fails. `may_block` ops always
  // go to the worker so that the caller is never blocked by them.
  void Enqueue(Op op, bool may_block = false) {
    mu_.Lock();
    if (inline_when_idle_ && !may_block && !running_ && queue_.empty() &&
        !AsyncOnlyScope::Active()) {
      running_ = true;
      mu_.Unlock();
      absl::Status st = Run(std::move(op));
      mu_.Lock();
      if (!st.ok() && error_.ok()) error_ = st;
      running_ = false;
      mu_.Unlock();
      return;
    }
    queue_.push_back(std::move(op));
    mu_.Unlock();
  }

  // inferd::Stream
  Device& device() override { return *device_; }
  int id() const override { return id_; }

  absl::Status CopyHostToDevice(void* dst, const void* src, size_t bytes) override {
    return Copy(dst, src, bytes);
  }
  absl::Status CopyDeviceToHost(void* dst, const void* src, size_t bytes) override {
    return Copy(dst, src, bytes);
  }
  absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes) override {
    return Copy(dst, src, bytes);
  }
  absl::Status CopyFromPeer(void* dst, Device& src_device, const void* src,
                            size_t bytes) override {
    if (src_device.info().kind != DeviceKind::kHost) {
      return absl::InvalidArgumentError(absl::StrCat(
          "copy from ", DeviceKindName(src_device.info().kind), " device ",
          src_device.index(), " to host device ", device_->index(), " is not supported"));
    }
    return Copy(dst, src, bytes);
  }
  absl::Status Memset(void* dst, uint8_t value, size_t bytes) override {
    if (bytes > 0 && dst == nullptr) return absl::InvalidArgumentError("memset: null dst");
    Enqueue([dst, value, bytes]() mutable {
      std::memset(dst, value, bytes);
      return absl::OkStatus();
    });
    return absl::OkStatus();
  }

  // The callback takes the error of the ops before it (see error_).
  absl::Status ThenCallback(absl::AnyInvocable<void(absl::Status) &&> fn) override {
    Enqueue([this, fn = std::move(fn)]() mutable -> absl::Status {
      absl::Status st;
      {
        absl::MutexLock lock(&mu_);
        st = std::exchange(error_, absl::OkStatus());
      }
      std::move(fn)(std::move(st));
      return absl::OkStatus();
    });
    return absl::OkStatus();
  }

  absl::Status RecordEvent(Event& event) override;
  absl::Status WaitEvent(Event& event) override;

  absl::Status MarkTime(int64_t* ns) override {
    Enqueue([ns]() mutable {
      *ns = absl::GetCurrentTimeNanos();
      return absl::OkStatus();
    });
    return absl::OkStatus();
  }

  absl::Status Synchronize() override {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &HostStream::IdleLocked));
    return std::exchange(error_, absl::OkStatus());
  }

  void* native_handle() override { return nullptr; }

 private:
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !running_ && queue_.empty();
  }
  bool WorkReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || (!running_ && !queue_.empty());
  }

  absl::Status Copy(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return absl::OkStatus();
    if (dst == nullptr || src == nullptr) return absl::InvalidArgumentError("copy: null pointer");
    Enqueue([dst, src, bytes]() mutable {
      std::memcpy(dst, src, bytes);
      return absl::OkStatus();
    });
    return absl::OkStatus();
  }

  absl::Status Run(Op op) {
    const int64_t start = absl::GetCurrentTimeNanos();
    absl::Status st = std::move(op)();
    device_->AddBusyNanos(absl::GetCurrentTimeNanos() - start);
    return st;
  }

  void WorkerLoop() {
    while (true) {
      Op op;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &HostStream::WorkReadyLocked));
        if (queue_.empty()) return;  // stop_ and drained
        op = std::move(queue_.front());
        queue_.pop_front();
        running_ = true;
      }
      absl::Status st = Run(std::move(op));
      absl::MutexLock lock(&mu_);
      if (!st.ok() && error_.ok()) error_ = st;
      running_ = false;
    }
  }

  // Constant after construction.
  HostDevice* const device_;
  const int id_;
  const bool inline_when_idle_;

  absl::Mutex mu_;
  std::deque<Op> queue_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // The first error of an op since the last ThenCallback or Synchronize,
  // which takes it: a failed op (a model's exception, say) fails the work
  // it belongs to, not every later user of the stream. A host device has
  // no context to lose, unlike a CUDA device's sticky faults.
  absl::Status error_ ABSL_GUARDED_BY(mu_);

  std::thread worker_;
};

namespace {

// Completion counter shared by all records of one event. Thread-safe. Held
// through a shared_ptr by the event and by every queued record or wait, so
// that, as with a CUDA event, destroying the event while its work is still
// queued is safe: the queued closures keep the counter alive.
class HostEventState {
 public:
  // Returns the sequence number the next completion must reach.
  uint64_t NextRecord() {
    absl::MutexLock lock(&mu_);
    return ++recorded_;
  }
  void Complete(uint64_t seq) {
    absl::MutexLock lock(&mu_);
    if (seq > completed_) completed_ = seq;
  }
  uint64_t recorded() {
    absl::MutexLock lock(&mu_);
    return recorded_;
  }
  bool IsComplete() {
    absl::MutexLock lock(&mu_);
    return completed_ >= recorded_;
  }
  void WaitFor(uint64_t seq) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, seq]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return completed_ >= seq; };
    mu_.Await(absl::Condition(&reached));
  }

 private:
  absl::Mutex mu_;
  uint64_t recorded_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
};

// The Event of a HostDevice. Thread-safe.
class HostEvent final : public Event {
 public:
  const std::shared_ptr<HostEventState>& state() const { return state_; }

  // inferd::Event
  bool IsComplete() override { return state_->IsComplete(); }
  absl::Status Synchronize() override {
    state_->WaitFor(state_->recorded());
    return absl::OkStatus();
  }

 private:
  const std::shared_ptr<HostEventState> state_ = std::make_shared<HostEventState>();
};

}  // namespace

absl::Status HostStream::RecordEvent(Event& event) {
  auto* host_event = dynamic_cast<HostEvent*>(&event);
  if (host_event == nullptr) return absl::InvalidArgumentError("event is not a host event");
  std::shared_ptr<HostEventState> state = host_event->state();
  const uint64_t seq = state->NextRecord();
  Enqueue([state = std::move(state), seq]() mutable {
    state->Complete(seq);
    return absl::OkStatus();
  });
  return absl::OkStatus();
}

absl::Status HostStream::WaitEvent(Event& event) {
  auto* host_event = dynamic_cast<HostEvent*>(&event);
  if (host_event == nullptr) return absl::InvalidArgumentError("event is not a host event");
  std::shared_ptr<HostEventState> state = host_event->state();
  const uint64_t seq = state->recorded();
  if (state->IsComplete()) return absl::OkStatus();
  Enqueue(
      [state = std::move(state), seq]() mutable {
        state->WaitFor(seq);
        return absl::OkStatus();
      },
      /*may_block=*/true);
  return absl::OkStatus();
}

namespace {

class HostImportedMemory final : public ImportedMemory {
 public:
  explicit HostImportedMemory(std::unique_ptr<PosixShmMapping> mapping)
      : mapping_(std::move(mapping)) {}
  void* data() const override { return mapping_->data(); }

 private:
  const std::unique_ptr<PosixShmMapping> mapping_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ImportedMemory>> HostDevice::OpenIpcMemory(
    absl::string_view handle, uint64_t byte_size) {
  const absl::string_view prefix(kHostIpcHandlePrefix);
  if (handle.size() != kIpcHandleBytes || handle.substr(0, prefix.size()) != prefix) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_handle: not an IPC handle of host device ", info_.index,
        " (host devices take the stand-in handle described in docs/SHARED_MEMORY.md)"));
  }
  absl::string_view key = handle.substr(prefix.size());
  key = key.substr(0, key.find('\0'));
  absl::StatusOr<std::unique_ptr<PosixShmMapping>> mapping =
      PosixShmMapping::Map(key, 0, byte_size, "raw_handle");
  if (!mapping.ok()) return mapping.status();
  return std::unique_ptr<ImportedMemory>(new HostImportedMemory(*std::move(mapping)));
}

HostDevice::HostDevice(const HostDeviceOptions& options)
    : capacity_bytes_(options.capacity_bytes), kernels_(NewHostKernels()) {
  info_.index = options.index;
  info_.kind = DeviceKind::kHost;
  info_.name = absl::StrCat("host-", options.ordinal);
  info_.ordinal = options.ordinal;
  info_.total_memory_bytes = options.capacity_bytes;
  info_.num_streams = options.num_streams < 1 ? 1 : options.num_streams;
  for (int i = 0; i < info_.num_streams; ++i) {
    streams_.push_back(std::make_unique<HostStream>(this, i, options.inline_when_idle));
  }
  last_util_wall_ns_ = absl::GetCurrentTimeNanos();
}

HostDevice::~HostDevice() {
  streams_.clear();
  absl::MutexLock lock(&mu_);
  for (auto& [ptr, size] : allocations_) FreeHostMemory(ptr, size);
  allocations_.clear();
}

absl::StatusOr<MemoryInfo> HostDevice::GetMemoryInfo() {
  absl::MutexLock lock(&mu_);
  return MemoryInfo{capacity_bytes_, capacity_bytes_ - allocated_bytes_};
}

absl::StatusOr<double> HostDevice::GetUtilization() {
  const int64_t now = absl::GetCurrentTimeNanos();
  const int64_t busy = busy_ns_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  const int64_t wall = now - last_util_wall_ns_;
  // Refresh at most every 100 ms so frequent readers see a stable figure.
  if (wall >= 100'000'000) {
    double u = static_cast<double>(busy - last_util_busy_ns_) /
               (static_cast<double>(wall) * static_cast<double>(streams_.size()));
    last_util_ = u < 0 ? 0 : (u > 1 ? 1 : u);
    last_util_busy_ns_ = busy;
    last_util_wall_ns_ = now;
  }
  return last_util_;
}

absl::StatusOr<void*> HostDevice::AllocateRaw(size_t bytes) {
  constexpr size_t kAlign = 256;
  if (bytes == 0) bytes = 1;
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  if (rounded < bytes) return absl::InvalidArgumentError("allocation size overflows");
  absl::MutexLock lock(&mu_);
  if (rounded > capacity_bytes_ - allocated_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "device ", info_.index, " (", info_.name, "): cannot allocate ", rounded,
        " bytes, ", capacity_bytes_ - allocated_bytes_, " of ", capacity_bytes_, " bytes free"));
  }
  void* p = AllocateHostMemory(kAlign, rounded);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("device ", info_.index, ": host allocation of ", rounded, " bytes failed"));
  }
  allocated_bytes_ += rounded;
  allocations_.emplace(p, rounded);
  return p;
}

void HostDevice::FreeRaw(void* ptr) {
  if (ptr == nullptr) return;
  absl::MutexLock lock(&mu_);
  auto it = allocations_.find(ptr);
  if (it == allocations_.end()) return;
  const size_t size = it->second;
  allocated_bytes_ -= size;
  allocations_.erase(it);
  FreeHostMemory(ptr, size);
}

void HostDevice::DiscardMemory(void* ptr, size_t bytes) {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(ptr) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(ptr) + bytes) / page * page;
  if (end <= begin) return;
  // Private anonymous memory (mmap or malloc's): the pages go back to the
  // system and read as zeros next time. Advice only: a failure changes
  // nothing but the process's size.
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

absl::StatusOr<void*> HostDevice::AllocatePinnedHost(size_t bytes) {
  void* p = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  if (p == nullptr) return absl::ResourceExhaustedError("pinned host allocation failed");
  return p;
}

void HostDevice::FreePinnedHost(void* ptr) { std::free(ptr); }

Stream& HostDevice::stream(int i) { return *streams_[static_cast<size_t>(i) % streams_.size()]; }

std::unique_ptr<Event> HostDevice::CreateEvent() { return std::make_unique<HostEvent>(); }

Kernels& HostDevice::kernels() { return *kernels_; }

bool HostDevice::CanAccessPeer(const Device& other) const {
  return other.info().kind == DeviceKind::kHost;
}

absl::Status HostDevice::Synchronize() {
  absl::Status first;
  for (auto& s : streams_) {
    absl::Status st = s->Synchronize();
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

// Used by host kernels to enqueue work on a host stream.
absl::Status EnqueueOnHostStream(Stream& stream, absl::AnyInvocable<absl::Status() &&> op) {
  auto* host = dynamic_cast<HostStream*>(&stream);
  if (host == nullptr) return absl::InvalidArgumentError("not a host stream");
  host->Enqueue(std::move(op));
  return absl::OkStatus();
}

}  // namespace inferd
