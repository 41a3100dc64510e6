// Job: the scheduler's internal unit of execution — one ModelInfer request,
// one task, or a batch merged from several of either. It is what device
// queues hold and what ExecuteOnDevice reports to (it is the responder the
// device sees, forwarding outputs to the real sink). Internal to core/sched.
//
// Ownership: the scheduler allocates a job at submit and deletes it when it
// finishes. A job is in at most one place at a time (a batcher, a device
// queue, a batch, running, or a retry timer); its `where` and queue links
// are guarded by the lock of that place.
#ifndef INFERD_CORE_SCHED_JOB_H_
#define INFERD_CORE_SCHED_JOB_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/device/device_allocator.h"
#include "core/infer/device_execution.h"
#include "core/infer/infer_request.h"
#include "core/sched/priority_queue.h"
#include "core/sched/scheduler_metrics.h"
#include "core/sched/tensor_access.h"

namespace inferd {

class DynamicBatcher;
class Scheduler;
class TaskRecord;
struct Job;

// One member's delivery when its batch finishes: its rows of the batched
// outputs, then its completion (Scheduler::DeliverMember). Run by the
// thread that finished the batch, or handed to the member's responder
// (InferResponder::RunOnOwnThread).
struct MemberDelivery final : public ResponderWork {
  Job* batch = nullptr;
  size_t index = 0;
  void Run() override;  // scheduler.cc
};

// A pinned block a model's pending requests are copied into as they join
// their batch (DynamicBatcher, rule 6): input i's rows from region[i] on,
// row_bytes[i] each, `capacity` rows. Shared by the batches cut from it.
struct ArrivalBlock {
  StagingBlock block;
  absl::InlinedVector<uint64_t, 2> row_bytes;
  absl::InlinedVector<uint8_t*, 2> region;
  int64_t capacity = 0;
};

// The members of a merged batch and the host memory the batch runs from;
// or, `grouped`, of a group: requests of unbatched models that one device
// slot runs side by side, each as itself (ExecuteGroupOnDevice), sharing
// copies and one completion (Scheduler::FormGroup).
struct BatchData {
  std::vector<Job*> members;
  bool grouped = false;
  std::vector<GroupedRequest> requests;  // a group's, in member order

  std::vector<int64_t> rows;         // dim-0 rows of each member
  std::vector<int64_t> row_offsets;  // each member's first row in the batch
  // The members' inputs, concatenated when the batch first runs
  // (GatherBatchInputs): a pinned block where the device's staging pool
  // had one, which the GPU copies from directly, else `heap_inputs`; or,
  // gathered as they arrived, `arrival`.
  StagingBlock pinned_inputs;
  std::shared_ptr<ArrivalBlock> arrival;
  std::unique_ptr<uint8_t[]> heap_inputs;
  bool gathered = false;
  // Where the batch runs (set before each attempt), for its output blocks.
  DeviceAllocator* allocator = nullptr;
  Device* device = nullptr;
  // The batched outputs in signature order: a pinned block the GPU copies
  // into directly, else heap memory.
  struct Output {
    StagingBlock pinned;
    std::unique_ptr<uint8_t[]> heap;
    uint64_t heap_bytes = 0;
    uint8_t* data = nullptr;
    TensorDesc desc;
    bool present = false;
  };
  std::vector<Output> outputs;
  int64_t total_rows = 0;

  // Finishing (Scheduler::FinishBatch): the batch's outcome, one delivery
  // per member, and how many are still to be delivered; the last member
  // delivered deletes the batch.
  absl::Status status;
  std::vector<MemberDelivery> deliveries;
  std::atomic<size_t> undelivered{0};
};

struct Job final : public QueueNode, public InferResponder {
  enum class Where : uint8_t { kNew, kBatcher, kQueued, kInBatch, kRunning, kRetryWait, kDone };

  Scheduler* scheduler = nullptr;
  InferRequest request;
  InferResponder* sink = nullptr;    // client responder or task record; null for a batch
  std::shared_ptr<TaskRecord> task;  // set for tasks
  // A task's dependencies (slot order): `request` may read their outputs.
  std::vector<std::shared_ptr<TaskRecord>> sources;
  std::unique_ptr<BatchData> batch;  // set for merged batches
  Job* parent = nullptr;             // the batch this job rides in
  // The batcher that emitted this job (a batch, or a request emitted
  // alone) and counts it as running until it finishes; null otherwise.
  std::shared_ptr<DynamicBatcher> emitted_by;
  // Rule 6, while in its batcher: the row of the batcher's arrival block
  // its inputs were copied to (-1: not copied). On the first job of a
  // taken batch whose members lie there one after another: that block.
  int64_t arrival_row = -1;
  std::shared_ptr<ArrivalBlock> arrival;

  // Constant once submitted.
  absl::Time submit_time;
  absl::Time deadline = absl::InfiniteFuture();
  int device_constraint = -1;
  int preferred_device = -1;
  uint64_t memory_requirement = 0;
  int max_retries = 0;
  int64_t rows = -1;                          // dim-0 rows when batchable, else -1
  SchedulerMetrics::Model* series = nullptr;  // the model's metrics, looked up once
  // Counted in its model's pending requests (ModelStatistics) until deleted.
  bool pending_counted = false;

  // Owned by whoever holds the job (see the file comment).
  std::atomic<Where> where{Where::kNew};
  std::atomic<int> lane{-1};  // position of the device lane holding or running it
  int slot = -1;
  // The slot whose stream the execution runs on: its own slot, or the
  // stream of a running execution of the same model when that model's
  // executions do not overlap (ModelSignature::overlap_executions).
  int stream_slot = -1;
  int attempts = 0;
  uint64_t failed_mask = 0;  // bit i: failed on device position i
  absl::Time queued_time = absl::InfinitePast();
  absl::Time start_time = absl::InfinitePast();
  bool reserved_memory = false;
  bool admitted = false;  // counted against its priority's queue depth
  std::atomic<bool> timed_out{false};
  std::atomic<bool> cancelled{false};
  // Set (under the running lane's lock) when a CRITICAL job took this
  // job's slot: its execution's result is dropped and it is queued again.
  std::atomic<bool> preempted{false};
  int preemptions = 0;               // at most 1: a job is never preempted twice
  bool preemptible_counted = false;  // counted in its lane's preemptible (lane lock)
  bool light_slot = false;  // holds one of its lane's group slots (lane lock)
  std::vector<AccessedTensor> pins;  // tensor inputs pinned for this attempt

  // Host output pointers from the sink, kept across retries so a retry
  // never asks the sink twice for the same output.
  absl::InlinedVector<void*, 2> host_outputs;
  absl::InlinedVector<bool, 2> host_output_asked;
  // The timing of the execution that produced the result (statistics).
  ExecutionTiming timing;

  Job() = default;
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  ~Job() override {
    SchedulerMetrics::Release(series);
    if (pending_counted) request.model->statistics().AddPending(-1);
  }

  // A group (BatchData::grouped): its members run side by side, unmerged.
  bool IsGroup() const { return batch != nullptr && batch->grouped; }

  // The model's metric series, looked up on first use and held (so they
  // outlive an unload) until the job is deleted.
  SchedulerMetrics::Model* Series(SchedulerMetrics& metrics) {
    if (series == nullptr) series = metrics.ForModel(request.model->signature().name);
    return series;
  }
  // From admission on: counts the job in its model's pending requests and
  // holds its model's series until the job is deleted.
  void Track(SchedulerMetrics& metrics) {
    if (pending_counted || request.model == nullptr) return;
    pending_counted = true;
    request.model->statistics().AddPending(1);
    Series(metrics);
  }

  // inferd::InferResponder (called by ExecuteOnDevice)
  void* AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc) override;
  void* AllocateDeviceOutput(int index, const TensorSpec& spec, const TensorDesc& desc,
                             Device& device) override;
  void Complete(absl::Status status) override;
  void ReportTiming(const ExecutionTiming& t) override { timing = t; }
  bool HostOutputsPinned() const override {
    return batch != nullptr && batch->allocator != nullptr;
  }
  absl::Status SendResponse(absl::Span<const HostTensor> outputs) override;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_JOB_H_
