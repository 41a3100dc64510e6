// The memory engine's plain option, request and result structs (what the
// composition root maps config onto and the gRPC adapter converts to and
// from proto).
#ifndef INFERD_CORE_MEMORY_MEMORY_TYPES_H_
#define INFERD_CORE_MEMORY_MEMORY_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/tensor/dtype.h"

namespace inferd {

struct MemoryEngineOptions {
  // memory_pool_size_mb: bytes each device's pool reserves at start.
  uint64_t pool_size_mb = 512;
  // Cap on a pool's reserved bytes: max_pool_mb when > 0, else this
  // fraction of the device's total memory.
  double max_pool_fraction = 0.95;
  uint64_t max_pool_mb = 0;
  // memory_gc_threshold: when a device's used fraction (1 - driver free /
  // total, so the pool's cached segments count as used) passes this, the
  // maintenance pass releases cached segments. (0, 1].
  double gc_threshold = 0.8;
  // memory_defrag_threshold: compact an idle device whose external
  // fragmentation passes this. (0, 1].
  double defrag_threshold = 0.3;
  // A device is idle for compaction when nothing of it is pinned and no
  // allocation has happened on it for this long (by the injected clock).
  absl::Duration compaction_idle_time = absl::Seconds(5);
  // enable_memory_monitoring: run the maintenance pass on a thread every
  // monitor_interval (real time). Off: call RunMaintenanceOnce yourself.
  bool enable_monitoring = true;
  absl::Duration monitor_interval = absl::Seconds(1);
  // Lease length when a request gives none, and the longest allowed.
  absl::Duration default_lease = absl::Minutes(10);
  absl::Duration max_lease = absl::Hours(24);
  // Before a pool grows, return its fully free segments to the driver:
  // reserved memory tracks the live set more closely (docs/MEMORY.md), and
  // each growth also pays a FreeRaw (cudaFree, which synchronizes).
  bool release_segments_on_grow = false;
  // Fraction of free memory GetOptimalBatchSize keeps back. [0, 1).
  double batch_safety_margin = 0.1;
  // Largest tensor a request may allocate; 0: no limit (limits.max_tensor_bytes).
  uint64_t max_tensor_bytes = 0;
  // Most dimensions a tensor's shape may have; 0: no limit (limits.max_dims).
  int max_dims = 0;
  // Zero new tensors so that no client reads another's freed data.
  bool zero_new_tensors = true;
  // Device stream used for tensor reads, writes, zeroing and compaction.
  int stream_index = 0;
  // Pinned host memory per GPU for staging inference inputs and outputs
  // (StagingPool); 0 turns staging off. Host devices never stage.
  uint64_t staging_mb = 512;
};

struct TensorRequest {
  static constexpr int kAnyDevice = -1;
  int device = kAnyDevice;  // kAnyDevice: the device with the most free memory
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;
  // Required for BYTES tensors; for fixed-size dtypes 0 or equal to the
  // shape's byte size.
  uint64_t byte_size = 0;
  std::string owner;
  absl::Duration lease = absl::ZeroDuration();  // <= 0: the default lease
  // BYTES: the caller writes a layout it has already checked (a copy of a
  // usable tensor, a model's output), so the tensor is usable at once.
  // Otherwise it is usable only once written in full with a valid layout
  // (see BytesLayoutGuard). Requests from clients never set it.
  bool layout_checked = false;
};

// GetOptimalBatchSize input: per-sample costs of one model on one device.
struct BatchSizeRequest {
  int device = 0;
  double model_size_mb = 0;          // weights resident on the device
  std::vector<int64_t> input_shape;  // one sample, without the batch dim
  DataType dtype = DataType::kFp32;
  uint64_t output_bytes_per_sample = 0;
  uint64_t activation_bytes_per_sample = 0;  // estimate or measured peak
  int64_t max_batch_size = 0;                // the model's limit; 0: none
};

struct CompactionResult {
  uint64_t moved_tensors = 0;
  uint64_t moved_bytes = 0;
  uint64_t released_bytes = 0;
  double fragmentation_before = 0;
  double fragmentation_after = 0;
};

// One device's memory picture. Counters are totals since start.
struct DeviceMemoryStats {
  int device = 0;
  uint64_t total_bytes = 0;
  uint64_t reserved_bytes = 0;   // pool segments
  uint64_t allocated_bytes = 0;  // pool blocks handed out (rounded)
  uint64_t requested_bytes = 0;  // what callers asked for
  // Allocatable now: cached free bytes plus what the pool may still take
  // from the driver.
  uint64_t free_bytes = 0;
  uint64_t largest_free_block = 0;
  double fragmentation = 0;   // 1 - largest free block / cached free bytes
  double overhead_ratio = 0;  // reserved / allocated (0 when nothing allocated)
  uint64_t active_tensors = 0;
  uint64_t tensor_bytes = 0;
  uint64_t pinned_tensors = 0;
  uint64_t active_blocks = 0;  // tensors and scratch buffers
  uint64_t segments = 0;
  uint64_t allocations = 0;
  uint64_t frees = 0;
  uint64_t gc_runs = 0;
  uint64_t gc_reclaimed_bytes = 0;
  uint64_t compactions = 0;
  uint64_t compaction_moved_bytes = 0;
  uint64_t lease_expirations = 0;
};

// What one maintenance pass did, summed over devices.
struct MaintenanceReport {
  uint64_t expired_tensors = 0;
  uint64_t gc_runs = 0;
  uint64_t released_bytes = 0;
  uint64_t compactions = 0;
  uint64_t moved_bytes = 0;
  uint64_t discarded_bytes = 0;  // free cached blocks whose memory went back
};

}  // namespace inferd

#endif  // INFERD_CORE_MEMORY_MEMORY_TYPES_H_
