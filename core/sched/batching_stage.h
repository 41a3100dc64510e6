// The batching stage: where a batch forms. One place to read to understand
// dynamic batching (as Triton's dynamic batcher does it): which requests
// batch, when a batch is emitted, how it is merged and split again.
//
// Contract.
// - Which requests batch: the model has max_batch_size > 0 and is not
//   decoupled, its batching policy is enabled (PolicyFor: the model's own
//   config.yaml dynamic_batching block, else scheduler.batch_* defaults),
//   every input has rank >= 1 with the same dim 0 (its rows), no input is
//   BYTES or already on a device, and the work has no device constraint and
//   returns outputs to the host. Requests merge when they have the same
//   model, params, input dtypes and trailing dims.
// - When a batch is emitted (one DynamicBatcher per model holds the
//   pending batch; the stage owns the batchers, their timers and parking):
//   1. Dispatch when idle (policy.dispatch_when_idle): a request that finds
//      its model's batcher empty while a device slot is free (an eligible
//      device whose running plus queued work leaves a slot) is emitted at
//      once, alone: waiting would only add max_queue_delay to an idle
//      device's latency.
//   2. Otherwise it joins the pending batch, which is emitted when its rows
//      reach the target (the largest preferred batch size, else the
//      maximum), when the next request would pass the maximum or does not
//      fit the batch's shape, when a CRITICAL request joins (critical
//      requests never wait), or when its oldest request has waited
//      max_queue_delay (a timer the stage arms).
//   3. When that delay passes while every device slot is busy, the batch is
//      parked instead: it keeps filling up to the target and is emitted as
//      soon as a slot frees (OnSlotFreed), so under saturating load one
//      large batch is ready when a slot frees rather than several small
//      ones queued behind each other.
//   4. A model with an execution limit (ModelSignature::
//      max_executions_per_device, e.g. a torch model's instances_per_device)
//      counts the batches it emitted until they finish. While that many
//      per eligible device are unfinished it behaves as if no slot were
//      free: no dispatch when idle, and a batch past its delay is parked
//      and emitted when one of the model's batches finishes (OnFinished).
//      A batch that reaches its target is emitted whatever the count: it
//      cannot grow. So a model whose executions are long keeps collecting
//      requests into its next batch instead of starting small ones that
//      share the GPU.
//   5. Preferred sizes under load (a model with preferred_batch_sizes;
//      its emitted jobs are counted as in 4, limit or not). Kernels often
//      cost the same for any batch up to a tile boundary (a GEMM tiled by
//      64 or 128 rows), so a batch of 92 rows takes as long as one of 128.
//      a. A batch run past its delay (from the timer, or parked when a
//         slot frees or one of the model's jobs finishes) whose rows
//         reach a preferred size runs as the largest preferred size its
//         rows reach: the oldest requests up to that many rows. The rest
//         stays parked and runs at the next chance.
//      b. A batch below the smallest preferred size waits, parked, while
//         one of the model's jobs is still unfinished (the device is busy
//         with the model anyway): it runs as soon as it reaches the
//         smallest preferred size with a slot free, or when the model's
//         last unfinished job finishes, whatever its size then. A finish
//         that leaves another of its jobs running does not start it: that
//         batch would only queue behind the running one, and a few rows
//         cost a GEMM nearly as much time as the preferred size. For the
//         same reason rule 1 (dispatch when idle) applies only while the
//         model has nothing unfinished.
//      c. Rule 1 waits, too, for max_queue_delay after one of the model's
//         batches that reached a preferred size finished (OnFinished): the
//         callers of that batch are on their way back with their next
//         requests, and one of them run alone would cost the device
//         nearly that batch's time. Such a batch, collecting on an idle
//         model, runs at its delay or as soon as it reaches the smallest
//         preferred size. A lone request after a lone request (light
//         load) is still dispatched at once.
//      d. A model whose executions run in order on one stream
//         (ModelSignature::overlap_executions false) learns how long its
//         executions of each preferred size take (ExecutionEstimate).
//         While one execution is left unfinished, the pending batch is
//         released a lead (scheduling.next_batch_lead_us, 100 us by
//         default) before that execution is predicted to end, as if the
//         model were idle then (5b's wait is over, 5a still cuts it to a
//         preferred size): launched behind the running one, it starts
//         the moment that ends, where waiting for the finish would leave
//         the device idle while the finish reaches the host and the
//         batch's inputs reach the device. Its delay timer is moved up to
//         that moment; a finish that leaves one execution, or a park
//         under 5b, arms a timer for it. The prediction bounds the time
//         from above, and a finish that comes first releases it as 5b
//         does.
//      So the wait is bounded by the model's running work or the delay,
//      and under load the model runs at its preferred sizes where the
//      load fills them.
//   So under load (slots busy) batches form exactly as in 2, 3 and 5,
//   bounded by the preferred sizes and the delay; an idle device serves a
//   lone request without delay.
// - A row limit (the memory engine's optimal batch size over the eligible
//   devices divided by max_tasks_per_device) may lower the maximum and the
//   target at run time (RefreshRowLimits).
// - Merging: the emitted requests' inputs are concatenated in one host
//   staging buffer into a batch Job the scheduler places like any job.
//   6. Gathering on arrival (SchedulerOptions::batch_gather_on_arrival,
//      with a staging hook): each request of up to 64 KiB is copied into
//      the pending batch's pinned arrival block as it joins, under the
//      batcher's lock; a batch taken whose members lie one after another
//      there runs from it with nothing left to gather (the block is
//      shared by the batches cut from it). Any other batch is gathered
//      when it runs (GatherBatchInputs).
//   Splitting: each batched output is cut back by rows (output dim 0 must
//   equal the batch's rows) and handed to each member (SplitMember).
//
// Thread-safe: one mutex per model's batcher, a reader lock over the map of
// batchers; nothing is held while the scheduler's hooks run.
#ifndef INFERD_CORE_SCHED_BATCHING_STAGE_H_
#define INFERD_CORE_SCHED_BATCHING_STAGE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/config/model_config.h"
#include "core/infer/infer_request.h"
#include "core/sched/device_lane.h"
#include "core/sched/execution_estimate.h"
#include "core/sched/job.h"
#include "core/sched/scheduler_metrics.h"
#include "core/sched/scheduler_options.h"
#include "core/sched/timer_queue.h"
#include "core/util/clock.h"
#include "core/util/parallel_copy.h"

namespace inferd {

// Returns the rows (dim 0) of `request` when it can be batched, else -1.
int64_t BatchRows(const InferRequest& request);
// True when `a` and `b` (both batchable) may share a batch.
bool CanMerge(const InferRequest& a, const InferRequest& b);

// Describes the merge of `requests` (mergeable, in order) along dim 0: one
// request whose input descs cover every row and whose data is not set yet
// (GatherInputs). INVALID_ARGUMENT when they do not merge or sizes
// overflow.
absl::StatusOr<InferRequest> MergeRequests(absl::Span<const InferRequest* const> requests);
// Copies the inputs of `requests` into `dst`, which holds the sum of
// `merged`'s input byte sizes, and points `merged`'s inputs at it; with a
// `copier`, its threads share the copy.
void GatherInputs(absl::Span<const InferRequest* const> requests, uint8_t* dst, bool pinned,
                  InferRequest* merged, ParallelCopy* copier = nullptr);
// Before each attempt of a merged batch on `device`: gathers its members'
// inputs (once: into a pinned block of `device`'s staging pool when one is
// free, else heap memory; over `copier`'s threads when given) and lets its
// outputs come into pinned blocks of that pool (Job::AllocateOutput).
void GatherBatchInputs(Job& batch, DeviceAllocator& allocator, Device& device,
                       ParallelCopy* copier = nullptr);

// Returns the part of a batched output of `total_rows` rows that belongs to
// a member of `rows` rows; INTERNAL when the output's dim 0 is not
// `total_rows` (the model broke the batching contract).
absl::StatusOr<TensorDesc> SliceDesc(const TensorDesc& batched, int64_t total_rows, int64_t rows);

// What the stage learns when one of the jobs it emitted finishes.
struct FinishedExecution {
  int64_t rows = 0;     // its rows (a batch's total)
  bool batch = false;   // a merged batch, not a lone request
  absl::Duration infer = absl::ZeroDuration();  // the model's time; 0: unknown
};

// The pending batch of one model (see the file comment for when it is
// emitted). Internal to the stage; tested on its own.
class DynamicBatcher : public std::enable_shared_from_this<DynamicBatcher> {
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

  // Adds `job` (job->rows > 0, mergeable check done here). `slot_free`:
  // the model may start an execution now. With it and dispatch_when_idle,
  // a job that finds nothing pending is returned alone in `ready` at once
  // (rule 1, unless rule 5c holds it); with it, a parked batch, or one
  // collecting on an idle model (5c), that reaches the smallest preferred
  // size is returned (rule 5b).
  // Rule 6: `spare`, when not null and the batcher wants an arrival block
  // (ArrivalBlockBytes), becomes it.
  AddResult Add(Job* job, absl::Time now, bool slot_free = false, StagingBlock* spare = nullptr);
  // Rule 6: copy small requests into a pinned block as they join (set
  // once, before the first Add).
  void SetGatherOnArrival(bool on) { gather_on_arrival_ = on; }
  // Rule 6: the bytes of the arrival block `job` would need, or 0 when it
  // would not be copied on arrival or no block is wanted (requests are
  // pending: they have one, or their batch is gathered when it runs).
  size_t ArrivalBlockBytes(const Job& job) const;
  // Returns the pending batch if it is still batch `generation` (the timer
  // of a batch that was flushed since is stale and returns nothing), as
  // rule 5 lets it run: a preferred-size part of it with the rest parked,
  // or nothing with all of it parked.
  // `now` matters to rule 5d only.
  std::vector<Job*> FlushExpired(uint64_t generation, absl::Time now = absl::InfinitePast());
  // Marks the pending batch, if it is still batch `generation`, as parked:
  // past its delay, waiting for a free slot. False when it is stale.
  bool Park(uint64_t generation);
  // Returns the pending batch if it is parked, as rule 5 lets it run
  // (all, a preferred-size part, or nothing yet), else nothing.
  std::vector<Job*> TakeParked(absl::Time now = absl::InfinitePast());
  // Rule 5d: the pending batch, parked or not, as rule 5 lets it run once
  // `now` reached ReleaseAt(); else nothing.
  std::vector<Job*> TakeReleased(absl::Time now);
  // Rule 5d: when the pending batch is released (the lead before the
  // model's one unfinished execution is predicted to end), or
  // InfiniteFuture when nothing is predicted.
  absl::Time ReleaseAt() const;
  // Rule 5d applies (the model's executions run in order on one stream),
  // with `lead`.
  void SetInOrder(bool in_order, absl::Duration lead);
  bool parked() const;
  // Caps batches at `rows` (> 0) below the maximum the policy and model
  // allow; 0 removes the cap. The target is lowered to fit.
  void SetRowLimit(int64_t rows);
  // Rule 4: at most `n` emitted, unfinished executions (0: no limit).
  void SetExecutionLimit(int n) { execution_limit_.store(n, std::memory_order_relaxed); }
  // True while the model may start another execution (rule 4).
  bool UnderExecutionLimit() const;
  bool has_execution_limit() const { return execution_limit_.load(std::memory_order_relaxed) > 0; }
  // Whether emitted jobs count as unfinished until they finish (rules 4, 5).
  bool counts_unfinished() const { return has_preferred_sizes() || has_execution_limit(); }
  bool has_preferred_sizes() const { return !preferred_.empty(); }
  // An emitted job of `rows` rows starts counting against the limit at
  // `now` (into an idle in-order model: it starts then, rule 5d).
  void CountEmitted(int64_t rows, absl::Time now);
  // One stops counting: a batch that reached a preferred size starts rule
  // 5c's wait, its time teaches rule 5d's estimate, and with one left of
  // an in-order model that one's end is predicted.
  void CountFinished(const FinishedExecution& finished, absl::Time now);
  int64_t unfinished() const { return unfinished_.load(std::memory_order_relaxed); }
  // Removes a pending job (cancellation); false if it is not pending here.
  bool Remove(Job* job);
  // Returns every pending job (shutdown).
  std::vector<Job*> TakeAll();

  // Effective limits (the row limit applied).
  int target_rows() const;
  int max_rows() const;
  absl::Duration max_queue_delay() const { return max_delay_; }
  bool dispatch_when_idle() const { return dispatch_when_idle_; }
  size_t pending() const;

 private:
  // Every pending job.
  std::vector<Job*> TakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The oldest pending jobs up to `rows` rows (at least one); the rest
  // stays pending, parked.
  std::vector<Job*> TakePrefixLocked(int64_t rows) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What a batch past its delay runs as at `now` (rule 5); parks it when
  // that is nothing.
  std::vector<Job*> TakeReadyLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time ReleaseAtLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int MaxRowsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int TargetRowsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Rule 5c: a batch of a preferred size finished less than the delay ago.
  bool CallersReturning(absl::Time now) const;
  // Rule 6: copies `job` (just linked) into the arrival block, taking
  // `spare` when there is none yet.
  void GatherOnArrivalLocked(Job* job, StagingBlock* spare) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rule 6: marks `out` (just taken) as gathered when its members lie one
  // after another in the arrival block.
  void HandOverArrivalLocked(std::vector<Job*>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rule 6: nothing is pending: the block goes, and the next request may
  // take one.
  void DropArrivalLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  int max_rows_;     // policy and model maximum
  int target_rows_;  // largest preferred size, at most max_rows_
  std::vector<int> preferred_;  // ascending, distinct, within [1, max_rows_]
  absl::Duration max_delay_;
  bool dispatch_when_idle_ = false;

  mutable absl::Mutex mu_;
  QueueNode* head_ ABSL_GUARDED_BY(mu_) = nullptr;  // pending jobs, arrival order
  QueueNode* tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rows_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool parked_ ABSL_GUARDED_BY(mu_) = false;
  int64_t row_limit_ ABSL_GUARDED_BY(mu_) = 0;  // 0: none
  std::atomic<int> execution_limit_{0};          // 0: none
  std::atomic<int64_t> unfinished_{0};           // emitted, not finished
  // When a batch of a preferred size last finished (Unix ns; 0: never).
  std::atomic<int64_t> preferred_finished_ns_{0};
  // Rule 5d. A model that is not in order counts without the mutex.
  std::atomic<bool> in_order_{false};
  absl::Duration lead_ ABSL_GUARDED_BY(mu_);
  int64_t unfinished_rows_ ABSL_GUARDED_BY(mu_) = 0;
  // When the one unfinished execution is predicted to end.
  absl::Time drain_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  ExecutionEstimate estimate_ ABSL_GUARDED_BY(mu_);
  // Rule 6: the block the pending requests are copied into (null: none),
  // and its next free row. Taken only by a request that finds nothing
  // pending (wants_arrival_, read without the lock as a hint); dropped
  // when nothing is pending again.
  bool gather_on_arrival_ = false;
  std::shared_ptr<ArrivalBlock> arrival_ ABSL_GUARDED_BY(mu_);
  int64_t arrival_next_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> wants_arrival_{true};
};


// A model's config.yaml batching block applied over `defaults`; nullopt
// when the model has none (the defaults then apply).
std::optional<BatchingPolicy> ModelBatchingPolicy(const ModelConfigSpec& spec,
                                                  const BatchingPolicy& defaults);

// What the stage asks of the scheduler.
struct BatchingHooks {
  // Places `job` (one request, or a merged batch) on a device queue.
  absl::AnyInvocable<void(Job* job, absl::Time now)> place;
  // Runs `fn` on the timer thread at `when`.
  absl::AnyInvocable<void(absl::Time when, TimerQueue::Callback fn)> schedule;
  // Rule 6: a pinned block of `bytes` for an arrival block (empty: none);
  // unset: requests are gathered when their batch runs.
  absl::AnyInvocable<StagingBlock(size_t bytes)> staging;
};

class BatchingStage {
 public:
  // `options` (default_batching, batching_lookup, optimal_batch_size,
  // max_tasks_per_device), `lanes`, `metrics` and `clock` are borrowed.
  BatchingStage(const SchedulerOptions& options, const DeviceLanes& lanes,
                SchedulerMetrics& metrics, Clock* clock, BatchingHooks hooks);
  ~BatchingStage();
  BatchingStage(const BatchingStage&) = delete;
  BatchingStage& operator=(const BatchingStage&) = delete;

  // The batching `sig`'s requests get; nullopt when they are not batched.
  std::optional<BatchingPolicy> PolicyFor(const ModelSignature& sig) const;

  // The batcher `job` joins, or null when it runs alone (not batchable, a
  // device constraint, or its model does not batch).
  DynamicBatcher* BatcherFor(const Job& job);
  // Adds `job` to `batcher` (see the file comment, rules 1 and 2). The
  // caller may hold the job's task lock; once this returns another thread
  // may run and finish the job. Pass the result to Follow, with no lock
  // held.
  DynamicBatcher::AddResult Add(DynamicBatcher& batcher, Job* job, absl::Time now);
  // Arms the delay timer and emits what Add made ready.
  void Follow(DynamicBatcher& batcher, DynamicBatcher::AddResult added, absl::Time now);
  // Emits `jobs` (`batcher`'s model, arrival order): one job as is,
  // several merged into a batch job; then places it.
  void Emit(DynamicBatcher& batcher, std::vector<Job*> jobs, absl::Time now);
  // A device slot freed: emits every parked batch (rule 3) of a model
  // under its execution limit.
  void OnSlotFreed();
  // A job this stage emitted (job.emitted_by set) finished for good: it
  // stops counting against its model's execution limit, and the model's
  // parked batch, if any, is emitted (rule 4). Call once the job holds
  // no device slot, with `batcher` held by the caller (the job's
  // reference may be the last). `finished` feeds rules 5c and 5d.
  void OnFinished(DynamicBatcher& batcher, const FinishedExecution& finished = {});
  // Gives member `i` of `batch` its rows of the batched outputs and
  // returns its status: `status`, or DEADLINE_EXCEEDED when the batch timed
  // out, or the error of a bad output. Each member once; different members
  // may be split at the same time, from any threads, while the batch
  // lives.
  absl::Status SplitMember(Job* batch, size_t i, absl::Status status);
  // Takes `job` out of its batcher (cancellation); false if not there.
  bool Remove(Job* job);
  // Every pending job (shutdown).
  std::vector<Job*> TakeAll();
  // Asks optimal_batch_size again for every batching model, and sets each
  // model's execution limit for the eligible devices (rule 4).
  void RefreshRowLimits();

  int64_t pending() const;
  uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }
  uint64_t batched_requests() const { return batched_requests_.load(std::memory_order_relaxed); }

 private:
  // A model's entry. It holds the model weakly: an unloaded model goes
  // once its last request has (its weights with it). Its pending jobs hold
  // it, so an entry whose model is gone has none; such entries are dropped
  // when another model is added, and one found under a reused address is
  // replaced. Timers and emitted jobs hold the batcher itself.
  struct ModelBatcher {
    std::weak_ptr<const Model> model;
    std::shared_ptr<DynamicBatcher> batcher;  // null: batching off for it
  };
  // `model`'s entry, made on first use. Valid while the caller holds
  // `model`.
  ModelBatcher* For(const std::shared_ptr<const Model>& model);
  // The entries of live models that batch.
  std::vector<std::shared_ptr<ModelBatcher>> Active() const;
  // The row cap for `sig` from optimal_batch_size; 0: none known.
  int64_t RowLimit(const ModelSignature& sig) const;
  // Rule 4's limit for `sig` over the eligible devices; 0: none.
  int ExecutionLimit(const ModelSignature& sig) const;
  // A device slot is free and `batcher`'s model may start an execution.
  bool MayStart(const DynamicBatcher& batcher) const;
  // A batch's delay passed: emits it, or parks it while no slot is free.
  void FlushOnDelay(DynamicBatcher* batcher, uint64_t generation);
  // Rule 5d: arms a timer for `batcher`'s release when it has one and a
  // batch pending; at it, ReleaseDue emits the batch.
  void ScheduleRelease(DynamicBatcher& batcher);
  void ReleaseDue(DynamicBatcher& batcher);
  // Emits `batcher`'s parked batch as rule 5 lets it run, then any
  // preferred-size part left while a slot is free.
  void EmitParked(DynamicBatcher& batcher);
  // Places an emitted job, counting it until it finishes when the model
  // has a limit or preferred sizes (rules 4 and 5).
  void Place(DynamicBatcher& batcher, Job* job, absl::Time now);

  const SchedulerOptions& options_;
  const DeviceLanes& lanes_;
  SchedulerMetrics& metrics_;
  Clock* const clock_;
  BatchingHooks hooks_;

  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> batched_requests_{0};
  // Set (after parking) when some batcher may hold a parked batch; a freed
  // slot clears it and takes the parked batches (see FlushOnDelay).
  std::atomic<bool> maybe_parked_{false};

  mutable absl::Mutex mu_;
  absl::flat_hash_map<const Model*, std::shared_ptr<ModelBatcher>> batchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_BATCHING_STAGE_H_
