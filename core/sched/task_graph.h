// TaskGraph: the task side of the scheduler, where a task lives before and
// after its device work.
//
// Contract.
// - Validation: Submit checks every spec of a call (model, inputs by name,
//   shapes and sizes, tensor handles, task-output references, priority,
//   device, timeout, retries) and names the offending field
//   (tasks[i].inputs[j].name, ...); a call is accepted all or none.
// - Dependencies: tasks depend on earlier tasks by id or on tasks of the
//   same call by key; the call's order is checked for cycles before any
//   edge is wired. A task becomes ready when every dependency succeeded
//   (the `run` hook then builds and queues its job); it fails with
//   FAILED_PRECONDITION when one did not, and with DEADLINE_EXCEEDED when
//   its deadline passes while it waits. Terminal states propagate down the
//   graph iteratively (AfterTerminal), never recursively.
// - States: every change goes through SetStateLocked (under the record's
//   lock), which publishes it to the watchers; SetTerminalLocked sets a
//   terminal state once.
// - Waiters (WaitTask) are answered exactly once: at the terminal state,
//   at their deadline, or CANCELLED by CancelWait. Watchers (Watch) get
//   every state change, bounded per subscriber.
// - The graph queues, places and runs nothing itself: admission, running a
//   ready task, taking a queued job back and timers are the scheduler's
//   (TaskGraphHooks).
//
// Thread-safe. Hooks run with no graph lock held, except `unqueue`, which
// runs under the task's record lock.
#ifndef INFERD_CORE_SCHED_TASK_GRAPH_H_
#define INFERD_CORE_SCHED_TASK_GRAPH_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/models/model_registry.h"
#include "core/sched/scheduler_options.h"
#include "core/sched/task.h"
#include "core/sched/task_table.h"
#include "core/sched/task_watcher.h"
#include "core/sched/tensor_access.h"
#include "core/sched/timer_queue.h"
#include "core/util/clock.h"

namespace inferd {

struct Job;

// What the graph asks of the scheduler.
struct TaskGraphHooks {
  // Counts n[p] tasks against each priority's queue depth, all or none.
  absl::AnyInvocable<absl::Status(const std::array<int64_t, kNumPriorities>& n)> admit;
  // Gives back one count of `priority` (a task that ended without a job).
  absl::AnyInvocable<void(Priority priority)> unadmit;
  // A task whose dependencies all succeeded: build its job and queue it.
  absl::AnyInvocable<void(const std::shared_ptr<TaskRecord>& record)> run;
  // Takes a task's job out of its device queue or batcher if it is still
  // there (the caller then owns it). Runs under the task's record lock.
  absl::AnyInvocable<bool(Job* job)> unqueue;
  // Finishes a job taken by `unqueue`.
  absl::AnyInvocable<void(Job* job, absl::Status status)> drop;
  // Whether `device` (a DeviceInfo::index) is one of the scheduler's.
  absl::AnyInvocable<bool(int device)> has_device;
  absl::AnyInvocable<uint64_t(absl::Time when, TimerQueue::Callback fn)> schedule;
  absl::AnyInvocable<void(uint64_t timer)> cancel_timer;
};

class TaskGraph {
 public:
  // `options` (limits, default timeout and retries, retention, watch
  // buffers, submit_tasks_async), `models`, `tensors` (may be null) and
  // `clock` are borrowed; `num_devices` is for error messages.
  TaskGraph(const SchedulerOptions& options, const ModelRegistry* models, TensorAccess* tensors,
            Clock* clock, int num_devices, TaskGraphHooks hooks);
  TaskGraph(const TaskGraph&) = delete;
  TaskGraph& operator=(const TaskGraph&) = delete;

  // Validates, admits and wires `specs` (all or none) and appends their ids
  // to *ids. Errors as Scheduler::SubmitTasks.
  absl::Status Submit(absl::Span<TaskSpec> specs, absl::InlinedVector<TaskId, 1>* ids);

  absl::StatusOr<TaskInfo> Get(const TaskId& id, bool with_outputs) const;
  absl::StatusOr<TaskPage> List(const TaskListOptions& options) const;
  absl::StatusOr<uint64_t> Wait(const TaskId& id, absl::Time deadline, TaskWaitCallback done);
  void CancelWait(uint64_t wait_id);
  absl::StatusOr<TaskInfo> Cancel(const TaskId& id);
  std::shared_ptr<TaskWatcher> Watch(WatchOptions options, std::function<void()> notify);
  void Unwatch(const std::shared_ptr<TaskWatcher>& watcher);
  void CloseWatchers();

  // A task's job finished with `status` (TaskRecord::Complete).
  void Finish(TaskRecord* record, absl::Status status);
  // Makes the task terminal with `status` (if it is not) and propagates.
  void Fail(const std::shared_ptr<TaskRecord>& record, const absl::Status& status);
  // Fails every task that has no job (shutdown).
  void FailWithoutJob(const absl::Status& status);

  void SetStateLocked(TaskRecord& record, TaskState state, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(record.mu);
  // Sets a terminal state; returns false if it already was terminal.
  bool SetTerminalLocked(TaskRecord& record, const absl::Status& status, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(record.mu);
  // Work after a task became terminal: dependents, waiters, retention.
  void AfterTerminal(const std::shared_ptr<TaskRecord>& record);

  int64_t waiting_deps() const { return waiting_deps_.load(std::memory_order_relaxed); }
  uint64_t retained() const { return tasks_.size(); }
  uint64_t live_records() const { return static_cast<uint64_t>(tasks_.live_records()); }

 private:
  // Validates spec `index` of `all` (field names start with `field`) and
  // builds its record; dependencies on tasks of the same call are returned
  // as (dependency slot, index in `all`) in *batch_deps.
  absl::StatusOr<std::shared_ptr<TaskRecord>> BuildRecord(
      TaskSpec& spec, int index, const std::string& field, absl::Span<const TaskSpec> all,
      const absl::flat_hash_map<std::string, int>& keys, absl::Time now,
      std::vector<std::pair<int, int>>* batch_deps);
  // Registers the record with its dependencies; runs it when none is
  // outstanding.
  void WireAndRelease(const std::shared_ptr<TaskRecord>& record);
  void ResolveWaiters(std::vector<uint64_t> waiters, TaskRecord* record);
  absl::StatusOr<std::shared_ptr<TaskRecord>> FindOrNotFound(const TaskId& id) const;

  const SchedulerOptions& options_;
  const ModelRegistry* const models_;
  TensorAccess* const tensors_;
  Clock* const clock_;
  const int num_devices_;
  TaskGraphHooks hooks_;
  TaskTable tasks_;
  std::atomic<int64_t> waiting_deps_{0};

  struct Waiter {
    std::shared_ptr<TaskRecord> record;
    TaskWaitCallback done;
    uint64_t timer = 0;
  };
  // Removes and returns wait `wait_id`; nullopt when it was answered.
  std::optional<Waiter> TakeWaiter(uint64_t wait_id);

  absl::Mutex waiters_mu_;
  absl::flat_hash_map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(waiters_mu_);
  uint64_t next_wait_id_ ABSL_GUARDED_BY(waiters_mu_) = 1;

  WatcherSet watchers_;  // at most limits.max_watch_streams
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_TASK_GRAPH_H_
