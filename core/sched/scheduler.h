// Scheduler: the scheduling engine. Runs ModelInfer requests and tasks on
// devices: priority queues with aging and bounded depth, placement
// strategies, per-device concurrency limits (one stream per running slot),
// dynamic batching per model, task dependencies (a DAG whose outputs feed
// dependents without a client round trip), timeouts, retries with backoff
// on another device, unhealthy-device detection with probes, work
// stealing, preemption, and drain hooks for the scaler. docs/SCHEDULER.md
// describes the policies.
//
// Its parts, each with its own contract:
//   device_lane.h     the devices: queues, slots, eligibility
//   batching_stage.h  where a batch forms: per-model batchers, their
//                     timers, parking, merging and splitting
//   task_graph.h      tasks: validation, dependencies, waiters, watchers
//   scheduler.cc      admission, placement, dispatch, retries, preemption
//   scheduler_tasks.cc  a ready task becomes a job; the task API
//   scheduler_upkeep.cc health and probes, timers, the timeout sweep, load
//                     samples, stats, shutdown
//
// Submit path: placement reads per-device atomic counters and then locks
// only the chosen device's queue, so submitters on different devices do
// not contend; ModelInfer requests cost one heap allocation (the Job).
//
// Thread-safe. Devices, allocator, models, tensors, clock and registry are
// borrowed and must outlive the scheduler. Completion callbacks (responders,
// WaitTask callbacks, watcher notifications) run on scheduler or device
// threads with no scheduler lock held, except watcher notifications, which
// run under the publishing task's lock and must not block.
#ifndef INFERD_CORE_SCHED_SCHEDULER_H_
#define INFERD_CORE_SCHED_SCHEDULER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/device/device.h"
#include "core/device/device_allocator.h"
#include "core/infer/infer_request.h"
#include "core/models/model_registry.h"
#include "core/sched/scheduler_options.h"
#include "core/sched/task.h"
#include "core/sched/task_watcher.h"
#include "core/sched/tensor_access.h"
#include "core/sched/timer_queue.h"
#include "core/util/clock.h"
#include "core/util/in_flight.h"
#include "core/util/parallel_copy.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace inferd {

struct BatchData;
struct QueueNode;
struct Job;
struct DeviceLane;
class DeviceLanes;
class BatchingStage;
class TaskGraph;
class TaskRecord;
class SchedulerMetrics;

// Errors that count against a device's health (memory pressure and a
// model's own errors do not).
bool IsDeviceFault(const absl::Status& s);

class Scheduler final : public InferSubmitter {
 public:
  // INVALID_ARGUMENT naming the option for bad options or an empty device
  // list (at most 64 devices). `tensors` may be null: tensor-handle inputs
  // and keep_outputs_on_device are then refused with FAILED_PRECONDITION.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(SchedulerOptions options,
                                                           std::vector<Device*> devices,
                                                           DeviceAllocator* allocator,
                                                           const ModelRegistry* models,
                                                           TensorAccess* tensors, Clock* clock,
                                                           prometheus::Registry& registry);
  ~Scheduler() override;  // Shutdown()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // inferd::InferSubmitter: queues a bound request at its priority with the
  // default timeout and retry budget. The responder gets
  // RESOURCE_EXHAUSTED naming scheduler.max_queue_depth when the priority's
  // queue is full, UNAVAILABLE when no device can take it or after Shutdown,
  // DEADLINE_EXCEEDED after the default timeout.
  void Submit(InferRequest request, InferResponder* responder) override;

  // --- tasks ---
  // Validates and submits one task (see SubmitTasks).
  absl::StatusOr<TaskId> SubmitTask(TaskSpec spec);
  // Submits tasks that may depend on each other by key (all or none) and
  // returns their ids at once: the tasks count against their priority's
  // queue depth from here (waiting for dependencies too), and no device
  // work runs on the calling thread. INVALID_ARGUMENT naming the field
  // (tasks[i].depends_on[j], ...) for an unknown model input or output, a
  // malformed or unknown task id, a dependency cycle (including on
  // itself), bad shapes or sizes; NOT_FOUND for an unknown model;
  // RESOURCE_EXHAUSTED naming scheduler.max_queue_depth when the call does
  // not fit a queue; FAILED_PRECONDITION for tensor handles without a
  // tensor store.
  absl::StatusOr<std::vector<TaskId>> SubmitTasks(std::vector<TaskSpec> specs);
  // NOT_FOUND for unknown (or evicted) ids.
  absl::StatusOr<TaskInfo> GetTask(const TaskId& id, bool with_outputs = true) const;

  // Calls `done` exactly once: with the task's snapshot when it reaches a
  // terminal state, or as it stands at `deadline`, or CANCELLED after
  // CancelWait. Returns the wait's id; NOT_FOUND for an unknown task (then
  // `done` is not called). `done` may run before this returns.
  using WaitCallback = TaskWaitCallback;
  absl::StatusOr<uint64_t> WaitTask(const TaskId& id, absl::Time deadline, WaitCallback done);
  void CancelWait(uint64_t wait_id);

  // Cancels a task in any non-terminal state and returns its snapshot. A
  // running task is marked CANCELLED at once; its device work finishes and
  // its results are dropped. Dependents fail with FAILED_PRECONDITION.
  // NOT_FOUND; FAILED_PRECONDITION when it already finished.
  absl::StatusOr<TaskInfo> CancelTask(const TaskId& id);

  // Pages through retained tasks in id order.
  absl::StatusOr<TaskPage> ListTasks(const TaskListOptions& options) const;

  // Subscribes to state changes (see TaskWatcher); null when
  // limits.max_watch_streams watchers exist. Unwatch before the notify
  // target goes away; after Unwatch returns, notify is not running and will
  // not run again.
  std::shared_ptr<TaskWatcher> Watch(WatchOptions options, std::function<void()> notify);
  void Unwatch(const std::shared_ptr<TaskWatcher>& watcher);
  // Closes every watcher, now and to come (the daemon's drain; Shutdown
  // does it too): their readers end their streams.
  void CloseWatchers();

  // --- devices ---
  // Scaler hook: an inactive device gets no new work and its queued work
  // moves to other devices (work pinned to it fails with UNAVAILABLE);
  // running work finishes. NOT_FOUND for an unknown device index.
  absl::Status SetDeviceActive(int device, bool active);
  // Operator / scaler override of health (a probe re-admits unhealthy
  // devices on its own, see SchedulerOptions::unhealthy_probe_interval).
  absl::Status SetDeviceHealthy(int device, bool healthy);

  SchedulerStats GetStats() const;

  // The dynamic batching `sig`'s requests get (its config's, else the
  // default); nullopt when they are not batched.
  std::optional<BatchingPolicy> BatchingFor(const ModelSignature& sig) const;

  // Runs what is due by the clock: timers (batch flushes, retries, waits,
  // probes), the timeout sweep and the load sample. The timer thread calls
  // it; tests call it after advancing a FakeClock.
  void RunTimers();

  // Refuses new work, fails queued and waiting work with UNAVAILABLE, waits
  // for running work, stops the timer thread. Idempotent.
  void Shutdown();

  const SchedulerOptions& options() const { return options_; }
  int num_devices() const;

 private:
  friend struct Job;             // Job::Complete -> OnExecuted
  friend struct MemberDelivery;  // MemberDelivery::Run -> DeliverMember

  Scheduler(SchedulerOptions options, std::vector<Device*> devices, DeviceAllocator* allocator,
            const ModelRegistry* models, TensorAccess* tensors, Clock* clock,
            prometheus::Registry& registry);

  // Admission: counts against each priority's queue depth
  // (scheduler.max_queue_depth); RESOURCE_EXHAUSTED naming the key.
  absl::Status Admit(Job* job);
  void Unadmit(Job* job);
  // Counts `n[p]` tasks against each priority's queue depth, all or none.
  absl::Status AdmitTasks(const std::array<int64_t, kNumPriorities>& n);

  // Queueing and placement: a job goes to its model's batcher, or placed
  // on a device queue.
  void Enqueue(Job* job, absl::Time now);
  void PlaceAndPush(Job* job, absl::Time now);

  // Execution.
  void Dispatch(DeviceLane& lane);
  void DispatchLoop(DeviceLane& lane);
  Job* Steal(DeviceLane& thief, absl::Time now);
  void StartJob(DeviceLane& lane, Job* job, absl::Time now);
  // Groups (scheduler_groups.cc). FormGroup: with `job` about to take the
  // lane's last free slot (lane lock held), the group of it and the queued
  // jobs that run beside it, or `job` itself.
  Job* FormGroup(DeviceLane& lane, Job* job, absl::Time now);
  // A queued job that may run in a group.
  static bool Groupable(const QueueNode* node);
  static bool NotGroupable(const QueueNode* node) { return !Groupable(node); }
  // Groups are on and the lane's group slots are all held (lane lock held).
  bool GroupSlotsFull(const DeviceLane& lane) const;
  // `job` (a group or one groupable request) would take the lane's last
  // free slot or its last group slot: the moment to form a group (lane
  // lock held).
  bool GroupNow(const DeviceLane& lane, const Job& job) const;
  void StartGroup(DeviceLane& lane, Job* group, Stream& stream, absl::Time now);
  // What a group's execution says of its device: the shared work's
  // failure, else the first device fault among its requests' launches (one
  // execution counts once towards unhealthy_threshold).
  static absl::Status GroupDeviceResult(const BatchData& group, const absl::Status& shared);
  // A job whose execution failed with `status` goes back to wait for a
  // retry when it may (true), else the caller finishes it.
  bool RetryLater(DeviceLane& lane, Job* job, const absl::Status& status, absl::Time now);
  bool BeginMember(DeviceLane& lane, Job* job, absl::Time now);
  void OnExecuted(Job* job, absl::Status status);
  // A preempted job's execution ended: drops its results and queues it
  // again (tasks back to QUEUED; not a retry).
  void RequeuePreempted(Job* job, absl::Time now);
  // Ends a job: a batch is split among its members, each finished.
  void Finish(Job* job, absl::Status status);
  // Starts the model's parked batch, then delivers each member
  // (DeliverMember): all but the last on their responders' own threads
  // where they have them. The batch counts in `delivering_` until its
  // last member is delivered (Shutdown waits for that).
  void FinishBatch(Job* batch, absl::Status status);
  // Slices member `i`'s rows and finishes it; the last member delivered
  // deletes the batch. Any thread.
  void DeliverMember(Job* batch, size_t i);
  // Finishes or retries each member of a group; deletes the group.
  void SettleGroup(DeviceLane& lane, Job* group, const absl::Status& shared, absl::Time now);
  void FinishJob(Job* job, absl::Status status);
  // Adds a finished request to its model's statistics.
  void RecordStatistics(const Job& job, const absl::Status& status);
  void NoteDeviceResult(DeviceLane& lane, const absl::Status& status);
  void MoveQueuedOff(DeviceLane& lane, absl::string_view why);

  // Tasks (scheduler_tasks.cc).
  absl::Status SubmitSpecs(absl::Span<TaskSpec> specs, absl::InlinedVector<TaskId, 1>* ids);
  // A task whose dependencies succeeded: builds its job and queues it.
  void RunReadyTask(const std::shared_ptr<TaskRecord>& record);
  // Takes `job` out of its device queue or batcher if it is still there
  // (the caller then owns it). Requires the job's task lock.
  bool TryUnqueue(Job* job);

  // Upkeep (scheduler_upkeep.cc).
  void SetHealthy(DeviceLane& lane, bool healthy, const std::string& reason);
  void Probe(int position);
  uint64_t ScheduleTimer(absl::Time when, TimerQueue::Callback fn);
  void Sweep(absl::Time now);
  void Sample(absl::Time now);
  void TimerLoop();

  // Constant after construction.
  const SchedulerOptions options_;
  // The group slots in effect: options_.group_slots when groups are on and
  // it leaves some slots to other work, else 0 (every slot).
  const int group_slots_;
  DeviceAllocator* const allocator_;
  const ModelRegistry* const models_;
  TensorAccess* const tensors_;
  Clock* const clock_;
  std::unique_ptr<SchedulerMetrics> metrics_;
  std::unique_ptr<DeviceLanes> lanes_;
  std::unique_ptr<BatchingStage> batching_;
  // Per lane: the threads that gather a batch's inputs when it starts there
  // (options_.batch_gather_threads; null at 1).
  std::vector<std::unique_ptr<ParallelCopy>> gather_copiers_;
  std::unique_ptr<TaskGraph> graph_;
  TimerQueue timers_;

  std::atomic<bool> shutting_down_{false};
  // Batches whose members are still being delivered (FinishBatch);
  // Shutdown waits for none.
  InFlight delivering_;
  std::array<std::atomic<int64_t>, kNumPriorities> admitted_{};
  std::atomic<uint64_t> submitted_{0};
  std::array<std::atomic<uint64_t>, kNumOutcomes> completed_{};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> preemptions_{0};
  std::atomic<uint64_t> groups_{0};
  std::atomic<uint64_t> grouped_requests_{0};
  std::atomic<int64_t> queue_ns_{0};
  std::atomic<uint64_t> queue_count_{0};
  std::atomic<int64_t> exec_ns_{0};
  std::atomic<uint64_t> exec_count_{0};

  absl::Mutex sample_mu_;  // serializes RunTimers' periodic work
  absl::Time next_sweep_ ABSL_GUARDED_BY(sample_mu_) = absl::InfinitePast();
  absl::Time next_sample_ ABSL_GUARDED_BY(sample_mu_) = absl::InfinitePast();
  absl::Time last_sample_ ABSL_GUARDED_BY(sample_mu_) = absl::InfinitePast();
  uint64_t last_completed_ ABSL_GUARDED_BY(sample_mu_) = 0;
  int64_t last_exec_ns_ ABSL_GUARDED_BY(sample_mu_) = 0;
  uint64_t last_exec_count_ ABSL_GUARDED_BY(sample_mu_) = 0;
  absl::Time next_batch_limits_ ABSL_GUARDED_BY(sample_mu_) = absl::InfinitePast();

  absl::Mutex thread_mu_;
  bool stop_ ABSL_GUARDED_BY(thread_mu_) = false;
  bool wake_ ABSL_GUARDED_BY(thread_mu_) = false;
  absl::Time thread_wake_at_ ABSL_GUARDED_BY(thread_mu_) = absl::InfiniteFuture();
  std::thread thread_;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_SCHEDULER_H_
