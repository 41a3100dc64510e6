// DynamicBatcher: merges requests for one model into batches along dim 0,
// as Triton's dynamic batcher does, so a device runs one execution for many
// small requests.
//
// A request is batchable when its model has max_batch_size > 0, every input
// has rank >= 1 with the same dim 0 (its rows), no input is BYTES or already
// on a device, and the task has no device constraint and returns outputs to
// the host. Requests merge when they have the same model, params, input
// dtypes and trailing dims. A batch is flushed when its rows reach the
// target (the largest preferred batch size, else the maximum), when the
// next request would pass the maximum or does not fit the batch's shape,
// when a CRITICAL request joins (critical requests never wait), or when its
// oldest request has waited max_queue_delay (the scheduler arms a timer).
// When that delay passes while every device slot is busy, the scheduler
// parks the batch instead (Park): it keeps filling up to the target and is
// taken (TakeParked) as soon as a slot frees, so under saturating load one
// large batch is ready when a slot frees rather than several small ones
// queued behind each other. A row limit (SetRowLimit, the memory engine's
// optimal batch size) may lower the maximum and target at run time.
// The merged request's inputs are concatenated in one host staging buffer;
// each batched output is split back by rows (output dim 0 must equal the
// batch's rows).
//
// Thread-safe (one mutex per batcher, i.e. per model).
#ifndef INFERD_CORE_SCHED_DYNAMIC_BATCHER_H_
#define INFERD_CORE_SCHED_DYNAMIC_BATCHER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/infer/infer_request.h"
#include "core/sched/job.h"

namespace inferd {

// Per-model batching settings (defaults from the scheduler config; a model's
// config.yaml dynamic_batching block overrides them).
struct BatchingPolicy {
  bool enabled = true;
  int max_batch_size = 0;                  // 0: the model's max_batch_size; never above it
  std::vector<int> preferred_batch_sizes;  // flush at the largest; empty: max
  absl::Duration max_queue_delay = absl::Microseconds(500);
};

// Returns the rows (dim 0) of `request` when it can be batched, else -1.
int64_t BatchRows(const InferRequest& request);
// True when `a` and `b` (both batchable) may share a batch.
bool CanMerge(const InferRequest& a, const InferRequest& b);

// Concatenates the inputs of `requests` (mergeable, in order) along dim 0
// into one request whose inputs point into `*staging`, which this fills.
// INVALID_ARGUMENT when they do not merge or sizes overflow.
absl::StatusOr<InferRequest> MergeRequests(absl::Span<const InferRequest* const> requests,
                                           std::unique_ptr<uint8_t[]>* staging);

// Returns the part of a batched output of `total_rows` rows that belongs to
// a member of `rows` rows; INTERNAL when the output's dim 0 is not
// `total_rows` (the model broke the batching contract).
absl::StatusOr<TensorDesc> SliceDesc(const TensorDesc& batched, int64_t total_rows, int64_t rows);

class DynamicBatcher {
 public:
  // `model_max_batch_size` > 0.
  DynamicBatcher(const BatchingPolicy& policy, int model_max_batch_size);
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  struct AddResult {
    // Batches to run now (each in arrival order; a batch may hold one job).
    std::vector<std::vector<Job*>> ready;
    // When set, arm a timer for FlushExpired(generation) at flush_at.
    bool arm_timer = false;
    uint64_t generation = 0;
    absl::Time flush_at;
  };

  // Adds `job` (job->rows > 0, mergeable check done here).
  AddResult Add(Job* job, absl::Time now);
  // Returns the pending batch if it is still batch `generation` (the timer
  // of a batch that was flushed since is stale and returns nothing).
  std::vector<Job*> FlushExpired(uint64_t generation);
  // Marks the pending batch, if it is still batch `generation`, as parked:
  // past its delay, waiting for a free slot. False when it is stale.
  bool Park(uint64_t generation);
  // Returns the pending batch if it is parked, else nothing.
  std::vector<Job*> TakeParked();
  bool parked() const;
  // Caps batches at `rows` (> 0) below the maximum the policy and model
  // allow; 0 removes the cap. The target is lowered to fit.
  void SetRowLimit(int64_t rows);
  // Removes a pending job (cancellation); false if it is not pending here.
  bool Remove(Job* job);
  // Returns every pending job (shutdown).
  std::vector<Job*> TakeAll();

  // Effective limits (the row limit applied).
  int target_rows() const;
  int max_rows() const;
  absl::Duration max_queue_delay() const { return max_delay_; }
  size_t pending() const;

 private:
  std::vector<Job*> TakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int MaxRowsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int TargetRowsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  int max_rows_;     // policy and model maximum
  int target_rows_;  // largest preferred size, at most max_rows_
  absl::Duration max_delay_;

  mutable absl::Mutex mu_;
  QueueNode* head_ ABSL_GUARDED_BY(mu_) = nullptr;  // pending jobs, arrival order
  QueueNode* tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rows_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool parked_ ABSL_GUARDED_BY(mu_) = false;
  int64_t row_limit_ ABSL_GUARDED_BY(mu_) = 0;  // 0: none
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_DYNAMIC_BATCHER_H_
