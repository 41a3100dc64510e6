// CollectiveEngine: Broadcast, AllReduce, AllGather and ReduceScatter over
// tensors (one per device, by handle) that live on several local devices.
// It validates the tensors (same dtype and shape, distinct devices, a dtype
// NCCL reduces), pins them for the whole operation, allocates outputs
// through the memory engine where the operation makes new tensors, runs a
// Communicator — NCCL for CUDA devices when enable_nccl, else copies — and
// reports. One communicator per device set is created on first use and
// reused; one that fails is dropped and rebuilt on the next use.
//
// Semantics (N tensors, ranks in ascending device order):
//  - Broadcast: the root tensor's bytes are copied into the others (in place).
//  - AllReduce: every tensor becomes op over all of them (in place); avg is
//    sum / N (integer division for integer types).
//  - AllGather: a new tensor on each device, shape [N * d0, ...] ([N] for a
//    scalar), holding the inputs concatenated in rank order.
//  - ReduceScatter: inputs of shape [d0, ...] with d0 divisible by N; a new
//    tensor of shape [d0 / N, ...] on each device, rank r holding the
//    reduction of the inputs' r-th slice.
// Collectives run one at a time on the engine's thread (NCCL needs one
// order of collectives per communicator).
#ifndef INFERD_CORE_COMM_COLLECTIVE_ENGINE_H_
#define INFERD_CORE_COMM_COLLECTIVE_ENGINE_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/comm/comm_metrics.h"
#include "core/comm/comm_stats.h"
#include "core/device/communicator.h"
#include "core/device/device_allocator.h"
#include "core/device/host_communicator.h"
#include "core/memory/memory_engine.h"
#include "core/util/clock.h"

namespace inferd {

struct CollectiveEngineOptions {
  // enable_nccl: use NCCL on CUDA devices (when built with it).
  bool enable_nccl = true;
  // Device stream collectives run on (modulo the stream count).
  int stream_index = 3;
  // The copy implementation's scratch bound.
  HostCommunicatorOptions copy;
};

enum class CollectiveKind : uint8_t { kBroadcast, kAllReduce, kAllGather, kReduceScatter };
CommOp CommOpOf(CollectiveKind kind);

struct CollectiveRequest {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  std::vector<TensorId> tensors;  // one per device
  CollectiveReduceOp op = CollectiveReduceOp::kSum;
  int root = 0;  // Broadcast: index into `tensors`
  // Lease of new output tensors; <= 0: the input's lease length.
  absl::Duration lease = absl::ZeroDuration();
};

struct CollectiveResult {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  // In request order: the tensors written (the inputs for Broadcast and
  // AllReduce, new tensors for AllGather and ReduceScatter).
  std::vector<TensorInfo> outputs;
  std::vector<int> devices;  // rank order
  uint64_t bytes = 0;        // input bytes over all ranks
  absl::Duration duration;
  std::string implementation;  // "nccl" or "copy"
};

// Builds the communicator of a device set (rank order).
using CommunicatorFactory =
    std::function<absl::StatusOr<std::unique_ptr<Communicator>>(std::vector<Device*>)>;

// Thread-safe. Devices, memory engine, clock and metrics are borrowed and
// must outlive the engine.
class CollectiveEngine {
 public:
  using Callback = absl::AnyInvocable<void(absl::StatusOr<CollectiveResult>) &&>;

  // `factory` null: NCCL where enabled and every device is a CUDA device,
  // copies otherwise. INVALID_ARGUMENT for null arguments or a device list
  // not indexed 0..N-1.
  static absl::StatusOr<std::unique_ptr<CollectiveEngine>> Create(
      const CollectiveEngineOptions& options, std::vector<Device*> devices, MemoryEngine* memory,
      Clock* clock, CommMetrics* metrics, CommunicatorFactory factory = nullptr);
  // Answers queued collectives with CANCELLED; waits for the running one.
  ~CollectiveEngine();

  CollectiveEngine(const CollectiveEngine&) = delete;
  CollectiveEngine& operator=(const CollectiveEngine&) = delete;

  // Queues the collective; `done` runs on the engine's thread with the
  // result or the error: INVALID_ARGUMENT (fewer than one tensor, two on a
  // device, dtype or shape mismatch, unsupported dtype, bad root, d0 not
  // divisible), NOT_FOUND (a tensor), RESOURCE_EXHAUSTED (outputs), or the
  // communicator's error naming the op, devices and cause.
  void Submit(CollectiveRequest request, Callback done);
  // Submit and wait.
  absl::StatusOr<CollectiveResult> Run(CollectiveRequest request);

  // True when collectives over CUDA devices use NCCL.
  bool nccl_enabled() const { return nccl_enabled_; }
  // Adds the collective totals and communicator counts to `stats`.
  void FillStats(CommStats* stats);

 private:
  struct Job {
    CollectiveRequest request;
    Callback done;
  };

  CollectiveEngine(const CollectiveEngineOptions& options, std::vector<Device*> devices,
                   MemoryEngine* memory, Clock* clock, CommMetrics* metrics,
                   CommunicatorFactory factory);

  void Loop();
  absl::StatusOr<CollectiveResult> Execute(const CollectiveRequest& request);
  absl::StatusOr<Communicator*> GetCommunicator(const std::vector<int>& devices);
  void DropCommunicator(const std::vector<int>& devices);

  // Constant after construction.
  const CollectiveEngineOptions options_;
  const std::vector<Device*> devices_;
  MemoryEngine* const memory_;
  Clock* const clock_;
  CommMetrics* const metrics_;
  std::unique_ptr<DeviceAllocator> scratch_;
  CommunicatorFactory factory_;
  bool nccl_enabled_ = false;

  // The engine's thread only.
  std::map<std::vector<int>, std::unique_ptr<Communicator>> communicators_;

  absl::Mutex mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::array<OpStats, kNumCommOps> totals_ ABSL_GUARDED_BY(mu_){};
  uint64_t communicators_cached_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t created_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rebuilds_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread worker_;
};

}  // namespace inferd

#endif  // INFERD_CORE_COMM_COLLECTIVE_ENGINE_H_
