// MemoryEngine: everything a client or another engine allocates on a device
// goes through here. It owns one CachingPool per device and the TensorStore;
// reclaims memory (expired leases, then cached segments) when a device runs
// full or passes the GC threshold; compacts idle fragmented devices by
// moving unpinned tensors; sizes batches from free memory; and exports
// stats and Prometheus metrics. docs/MEMORY.md describes the design.
//
// Other engines use two doors:
//  - Pin(id) returns a TensorPin whose device_ptr() stays valid (the tensor
//    is neither freed nor moved) until the pin goes; work using the pointer
//    must have completed by then.
//  - AllocateScratch / FreeScratch hand out raw, stream-ordered device
//    buffers (model inputs, outputs, workspaces) from the same pools, with
//    the same GC on exhaustion. Scratch buffers are never moved.
#ifndef INFERD_CORE_MEMORY_MEMORY_ENGINE_H_
#define INFERD_CORE_MEMORY_MEMORY_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "core/device/device.h"
#include "core/device/device_allocator.h"
#include "core/memory/bytes_layout_guard.h"
#include "core/memory/caching_pool.h"
#include "core/memory/memory_metrics.h"
#include "core/memory/memory_types.h"
#include "core/memory/staging_pool.h"
#include "core/memory/tensor_store.h"
#include "core/util/clock.h"
#include "prometheus/registry.h"

namespace inferd {

// Thread-safe. Devices, clock and registry are borrowed and must outlive the
// engine; pins and scratch buffers must be returned before it goes.
class MemoryEngine {
 public:
  // Builds the pools (reserving pool_size_mb on each device) and starts the
  // monitor when enabled. INVALID_ARGUMENT naming the option for bad
  // options or device lists; RESOURCE_EXHAUSTED naming the device when the
  // reservation does not fit.
  static absl::StatusOr<std::unique_ptr<MemoryEngine>> Create(const MemoryEngineOptions& options,
                                                              const std::vector<Device*>& devices,
                                                              Clock* clock,
                                                              prometheus::Registry& registry);
  ~MemoryEngine();

  MemoryEngine(const MemoryEngine&) = delete;
  MemoryEngine& operator=(const MemoryEngine&) = delete;

  // Allocates a tensor (zeroed unless disabled) and registers it; serves
  // optimize_memory_allocation(device_id, tensor_size). INVALID_ARGUMENT for
  // a bad device, dtype, shape (rank above max_dims), size or lease;
  // RESOURCE_EXHAUSTED naming the device, requested and free bytes when even
  // GC leaves no room. A BYTES tensor is unusable (Pin refuses it) until
  // written in full, in order, with a valid layout, unless
  // request.layout_checked or its zeroed bytes already are one.
  absl::StatusOr<TensorInfo> AllocateTensor(const TensorRequest& request);

  // Copy `data` into the tensor at byte `offset` / the tensor's bytes at
  // `offset` into `out`; return when the copy is done. Renew the lease.
  // NOT_FOUND; OUT_OF_RANGE when offset + size passes the tensor's end;
  // INVALID_ARGUMENT for an unusable BYTES tensor's write out of order or
  // with bytes that cannot be its layout.
  absl::Status WriteTensor(const TensorId& id, uint64_t offset, absl::Span<const uint8_t> data);
  absl::Status ReadTensor(const TensorId& id, uint64_t offset, absl::Span<uint8_t> out);

  // NOT_FOUND; FAILED_PRECONDITION while pinned.
  absl::Status FreeTensor(const TensorId& id);
  // See TensorStore::RenewLease.
  absl::StatusOr<absl::Time> RenewLease(const TensorId& id, absl::Duration lease);
  // INVALID_ARGUMENT for an unknown device filter or a bad page token.
  absl::StatusOr<TensorPage> ListTensors(const TensorListOptions& options) const;
  absl::StatusOr<TensorInfo> GetTensorInfo(const TensorId& id) const;
  // Pins a tensor for work that reads or writes it. NOT_FOUND;
  // FAILED_PRECONDITION for a BYTES tensor not yet usable.
  absl::StatusOr<TensorPin> Pin(const TensorId& id);
  // FAILED_PRECONDITION, saying what is missing, for a BYTES tensor not yet
  // usable; OK otherwise (also for unknown ids).
  absl::Status CheckUsable(const TensorId& id) const { return bytes_layouts_.CheckUsable(id); }

  // Returns a buffer of `bytes` on `device` for work on `stream` (a stream
  // of that device), reclaiming as AllocateTensor does. FreeScratch returns
  // a pointer from AllocateScratch (never a tensor's), with the last work
  // using it enqueued on `stream`; it makes no driver call, so it may run in
  // a stream callback. INVALID_ARGUMENT for an unknown device or pointer.
  absl::StatusOr<void*> AllocateScratch(int device, uint64_t bytes, Stream& stream);
  absl::Status FreeScratch(int device, void* ptr, Stream& stream);
  // The same, as the DeviceAllocator the inference path takes (for example
  // in place of NewRawDeviceAllocator). Must not outlive the engine.
  std::unique_ptr<DeviceAllocator> NewScratchAllocator();
  // The pinned staging pool of `device`, or null (a host device, staging
  // off, an unknown device).
  StagingPool* Staging(int device) const;

  // Moves unpinned tensors of `device` so free space coalesces, then
  // releases emptied segments. Handles stay valid and contents identical.
  // ABORTED when a compaction of the device is already running.
  absl::StatusOr<CompactionResult> Compact(int device);

  // Returns the largest batch (>= 1, <= max_batch_size when set) whose
  // inputs, outputs and activations fit in the device's free memory after
  // reclaiming expired leases, less the model and the safety margin.
  // RESOURCE_EXHAUSTED when not even one sample fits; INVALID_ARGUMENT for
  // bad shapes, dtypes or sizes.
  absl::StatusOr<int64_t> GetOptimalBatchSize(const BatchSizeRequest& request);

  // Refreshes the metrics and returns every device's stats, by index.
  std::vector<DeviceMemoryStats> GetStats();
  absl::StatusOr<DeviceMemoryStats> GetDeviceStats(int device);

  // One monitor pass over every device: free expired tensors; GC above the
  // threshold; compact idle fragmented devices; refresh the metrics.
  MaintenanceReport RunMaintenanceOnce();

  int num_devices() const { return static_cast<int>(devices_.size()); }

 private:
  struct DeviceState;

  MemoryEngine(const MemoryEngineOptions& options, Clock* clock, prometheus::Registry& registry);

  absl::StatusOr<DeviceState*> Find(int device) const;
  // Allocates from the pool; on exhaustion runs GC (expired leases, then
  // cached segments) and retries, then fails with the exhaustion message.
  absl::StatusOr<void*> AllocateOnDevice(DeviceState& d, uint64_t bytes, Stream& stream);
  // Frees the expired tensors of `d`; returns their bytes.
  uint64_t ReclaimExpired(DeviceState& d, uint64_t* count);
  void ReleaseTensorMemory(DeviceState& d, void* ptr);
  // Allocatable bytes: cached free plus what the pool may still take.
  uint64_t FreeBytes(DeviceState& d, const PoolStats& pool) const;
  bool IdleForCompaction(DeviceState& d) const;
  // No allocation for compaction_idle_time: cached free memory may go.
  bool IdleForDiscard(const DeviceState& d) const;
  DeviceMemoryStats Snapshot(DeviceState& d);
  void MonitorLoop();

  // Constant after construction.
  const MemoryEngineOptions options_;
  Clock* const clock_;
  MemoryMetrics metrics_;
  std::vector<std::unique_ptr<DeviceState>> devices_;
  std::unique_ptr<TensorStore> store_;
  BytesLayoutGuard bytes_layouts_;

  absl::Mutex monitor_mu_;
  bool stop_ ABSL_GUARDED_BY(monitor_mu_) = false;
  std::thread monitor_;
};

}  // namespace inferd

#endif  // INFERD_CORE_MEMORY_MEMORY_ENGINE_H_
