// HostDevice: a Device made of CPU memory with a configured capacity and one
// worker thread per stream, standing in for a GPU. Every engine's tests run
// on it; the daemon uses it where no GPU exists (or with --host-devices N).
#ifndef INFERD_CORE_DEVICE_HOST_DEVICE_H_
#define INFERD_CORE_DEVICE_HOST_DEVICE_H_

#include <atomic>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "core/device/device.h"

namespace inferd {

struct HostDeviceOptions {
  int index = 0;
  int ordinal = 0;
  uint64_t capacity_bytes = 1ull << 30;
  int num_streams = 4;
  // When a stream is idle, run newly enqueued work on the caller's thread
  // instead of waking the worker (same ordering, no thread hop), unless the
  // caller holds an AsyncOnlyScope. Off gives fully asynchronous streams,
  // as a GPU has.
  bool inline_when_idle = true;
};

class HostStream;

// How a host device's stand-in IPC handle starts (see OpenIpcMemory).
inline constexpr char kHostIpcHandlePrefix[] = "inferd-host-shm:";

// Thread-safe.
class HostDevice final : public Device {
 public:
  explicit HostDevice(const HostDeviceOptions& options);
  ~HostDevice() override;

  // inferd::Device
  const DeviceInfo& info() const override { return info_; }
  absl::StatusOr<MemoryInfo> GetMemoryInfo() override;
  absl::StatusOr<double> GetUtilization() override;
  absl::StatusOr<void*> AllocateRaw(size_t bytes) override;
  void FreeRaw(void* ptr) override;
  void DiscardMemory(void* ptr, size_t bytes) override;
  absl::StatusOr<void*> AllocatePinnedHost(size_t bytes) override;
  void FreePinnedHost(void* ptr) override;
  int num_streams() const override { return static_cast<int>(streams_.size()); }
  Stream& stream(int i) override;
  std::unique_ptr<Event> CreateEvent() override;
  Kernels& kernels() override;
  bool CanAccessPeer(const Device& other) const override;
  absl::Status Synchronize() override;
  // The stand-in handle: the bytes of kHostIpcHandlePrefix, then a POSIX
  // shared-memory key, NUL-padded to kIpcHandleBytes.
  absl::StatusOr<std::unique_ptr<ImportedMemory>> OpenIpcMemory(absl::string_view handle,
                                                              uint64_t byte_size) override;

  // Adds `ns` of busy time (streams report the work they ran).
  void AddBusyNanos(int64_t ns) { busy_ns_.fetch_add(ns, std::memory_order_relaxed); }

 private:
  // Constant after construction.
  DeviceInfo info_;
  uint64_t capacity_bytes_;
  std::vector<std::unique_ptr<HostStream>> streams_;
  std::unique_ptr<Kernels> kernels_;

  std::atomic<int64_t> busy_ns_{0};

  absl::Mutex mu_;
  uint64_t allocated_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<void*, size_t> allocations_ ABSL_GUARDED_BY(mu_);
  int64_t last_util_busy_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_util_wall_ns_ ABSL_GUARDED_BY(mu_) = 0;
  double last_util_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_HOST_DEVICE_H_
