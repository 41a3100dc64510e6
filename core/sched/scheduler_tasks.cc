// The task side of the Scheduler: the task API (validation, dependencies,
// waits and watches are the TaskGraph's, task_graph.h), admission of task
// calls, and the step from a ready task to a queued job.
#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/sched/batching_stage.h"
#include "core/sched/device_lane.h"
#include "core/sched/job.h"
#include "core/sched/scheduler.h"
#include "core/sched/scheduler_metrics.h"
#include "core/sched/task_graph.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

absl::Status WithField(const absl::Status& st, absl::string_view field) {
  return absl::Status(st.code(), absl::StrCat(field, ": ", st.message()));
}

}  // namespace

absl::StatusOr<TaskId> Scheduler::SubmitTask(TaskSpec spec) {
  absl::InlinedVector<TaskId, 1> ids;
  absl::Status st = SubmitSpecs(absl::MakeSpan(&spec, 1), &ids);
  if (!st.ok()) {
    // Single submissions name fields "task.*" rather than "tasks[0].*".
    std::string message(st.message());
    if (absl::StartsWith(message, "tasks[0]")) message = absl::StrCat("task", message.substr(8));
    return absl::Status(st.code(), message);
  }
  return ids[0];
}

absl::StatusOr<std::vector<TaskId>> Scheduler::SubmitTasks(std::vector<TaskSpec> specs) {
  absl::InlinedVector<TaskId, 1> ids;
  absl::Status st = SubmitSpecs(absl::MakeSpan(specs), &ids);
  if (!st.ok()) return st;
  return std::vector<TaskId>(ids.begin(), ids.end());
}

absl::Status Scheduler::SubmitSpecs(absl::Span<TaskSpec> specs,
                                    absl::InlinedVector<TaskId, 1>* ids) {
  if (shutting_down_.load()) return absl::UnavailableError("scheduler: shutting down");
  RETURN_IF_ERROR(graph_->Submit(specs, ids));
  submitted_.fetch_add(specs.size(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<TaskInfo> Scheduler::GetTask(const TaskId& id, bool with_outputs) const {
  return graph_->Get(id, with_outputs);
}

absl::StatusOr<TaskPage> Scheduler::ListTasks(const TaskListOptions& options) const {
  return graph_->List(options);
}

absl::StatusOr<uint64_t> Scheduler::WaitTask(const TaskId& id, absl::Time deadline,
                                             WaitCallback done) {
  return graph_->Wait(id, deadline, std::move(done));
}

void Scheduler::CancelWait(uint64_t wait_id) { graph_->CancelWait(wait_id); }

absl::StatusOr<TaskInfo> Scheduler::CancelTask(const TaskId& id) { return graph_->Cancel(id); }

std::shared_ptr<TaskWatcher> Scheduler::Watch(WatchOptions options, std::function<void()> notify) {
  return graph_->Watch(std::move(options), std::move(notify));
}

void Scheduler::Unwatch(const std::shared_ptr<TaskWatcher>& watcher) { graph_->Unwatch(watcher); }

void Scheduler::CloseWatchers() { graph_->CloseWatchers(); }

absl::Status Scheduler::AdmitTasks(const std::array<int64_t, kNumPriorities>& n) {
  for (int p = 0; p < kNumPriorities; ++p) {
    if (n[p] == 0) continue;
    if (admitted_[p].fetch_add(n[p], std::memory_order_relaxed) + n[p] <= options_.max_queue_depth) {
      continue;
    }
    for (int q = 0; q <= p; ++q) admitted_[q].fetch_sub(n[q], std::memory_order_relaxed);
    int64_t total = 0;
    for (int64_t c : n) total += c;
    rejected_.fetch_add(static_cast<uint64_t>(total), std::memory_order_relaxed);
    metrics_->rejected(static_cast<Priority>(p)).Increment(static_cast<double>(n[p]));
    return absl::ResourceExhaustedError(absl::StrCat(
        "scheduler.max_queue_depth: the ", PriorityName(static_cast<Priority>(p)),
        " queue cannot take ", n[p], " more task(s) (", options_.max_queue_depth, " queued)"));
  }
  return absl::OkStatus();
}

void Scheduler::RunReadyTask(const std::shared_ptr<TaskRecord>& record) {
  TaskRecord& rec = *record;
  auto job = std::make_unique<Job>();
  {
    // From here the job, not the record, keeps the dependencies whose
    // outputs its request reads (across retries, and after a cancel).
    absl::MutexLock lock(&rec.mu);
    if (IsTerminal(rec.state)) return;  // cancelled meanwhile: nothing to run
    job->sources = std::move(rec.deps);
    rec.deps.clear();
  }
  job->scheduler = this;
  job->task = record;
  job->sink = &rec;
  job->priority = rec.priority;
  job->device_constraint = rec.device_constraint;
  job->memory_requirement = rec.memory_requirement;
  job->max_retries = rec.max_retries;
  job->deadline = rec.deadline;
  job->submit_time = rec.submit_time;
  InferRequest request;
  request.model = rec.model;
  request.params = rec.params;
  request.priority = rec.priority;

  absl::Status st;
  auto field_of = [&rec](size_t j) {
    return absl::StrCat("inputs[", j, "] (", rec.inputs[j].name, ")");
  };
  auto pin = [&](const std::string& handle, const TaskRecord::InputPlan& plan,
                 size_t j) -> absl::Status {
    absl::StatusOr<AccessedTensor> pinned = tensors_->Pin(handle);
    if (!pinned.ok()) return WithField(pinned.status(), field_of(j));
    const int pos = lanes_->PositionOf(pinned->device);
    if (pos < 0) {
      tensors_->Release(*pinned);
      return absl::FailedPreconditionError(
          absl::StrCat(field_of(j), ": tensor lives on an unknown device ", pinned->device));
    }
    job->pins.push_back(*pinned);
    InferInput in;
    in.name = plan.name;
    in.desc = pinned->desc;
    in.data = pinned->data;
    in.device = (*lanes_)[pos].device;
    request.inputs.push_back(in);
    if (job->preferred_device < 0) job->preferred_device = pinned->device;
    return absl::OkStatus();
  };
  for (size_t j = 0; j < rec.inputs.size() && st.ok(); ++j) {
    const TaskRecord::InputPlan& plan = rec.inputs[j];
    switch (plan.source) {
      case TaskInput::Source::kInline: {
        InferInput in;
        in.name = plan.name;
        in.desc = plan.desc;
        in.data = plan.data.data();
        request.inputs.push_back(in);
        break;
      }
      case TaskInput::Source::kTensor:
        st = pin(plan.handle, plan, j);
        break;
      case TaskInput::Source::kTaskOutput: {
        // The dependency succeeded, so its outputs no longer change.
        const TaskRecord& dep = *job->sources[plan.dep];
        std::string handle;
        InferInput in;
        {
          absl::MutexLock lock(&dep.mu);
          const TaskOutput& out = dep.outputs[plan.dep_output];
          if (!dep.present[plan.dep_output]) {
            st = absl::FailedPreconditionError(
                absl::StrCat(field_of(j), ": task ", FormatTaskId(dep.id), " produced no output '",
                             dep.model->signature().outputs[plan.dep_output].name, "'"));
            break;
          }
          if (!out.tensor_handle.empty()) {
            handle = out.tensor_handle;
          } else {
            in.name = plan.name;
            in.desc.dtype = out.dtype;
            in.desc.shape = out.shape;
            in.desc.byte_size = out.byte_size;
            in.data = out.data.data();
          }
        }
        if (!handle.empty()) {
          st = pin(handle, plan, j);
        } else {
          request.inputs.push_back(in);
        }
        break;
      }
    }
  }
  if (st.ok()) st = BindInputs(options_.limits, &request);
  if (st.ok()) {
    job->request = std::move(request);
    if (!rec.keep_outputs_on_device && rec.device_constraint < 0) {
      job->rows = BatchRows(job->request);
    }
    bool counted = false;
    {
      absl::MutexLock lock(&rec.mu);
      counted = rec.holds_admission;
      rec.holds_admission = false;
    }
    if (counted) {
      job->admitted = true;  // the job takes over the task's count
    } else {
      st = Admit(job.get());
    }
  }
  if (!st.ok()) {
    if (tensors_ != nullptr) {
      for (const AccessedTensor& t : job->pins) tensors_->Release(t);
    }
    graph_->Fail(record, st);
    return;
  }
  const absl::Time now = clock_->Now();
  job->queued_time = now;
  job->Track(*metrics_);
  Job* raw = job.release();
  {
    absl::MutexLock lock(&rec.mu);
    if (rec.deps_timer != 0) {
      timers_.Cancel(rec.deps_timer);
      rec.deps_timer = 0;
    }
    if (!IsTerminal(rec.state)) rec.job = raw;
  }
  // If the task was cancelled meanwhile, Enqueue finishes the job as such.
  Enqueue(raw, now);
}

bool Scheduler::TryUnqueue(Job* job) {
  switch (job->where.load()) {
    case Job::Where::kQueued: {
      const int pos = job->lane.load();
      if (pos < 0) return false;
      DeviceLane& lane = (*lanes_)[pos];
      absl::MutexLock lock(&lane.mu);
      if (job->where.load() != Job::Where::kQueued || job->lane.load() != pos) return false;
      lane.RemoveLocked(job);
      job->where.store(Job::Where::kNew);
      return true;
    }
    case Job::Where::kBatcher: {
      if (batching_->Remove(job)) {
        job->where.store(Job::Where::kNew);
        return true;
      }
      return false;
    }
    default:
      return false;
  }
}

}  // namespace inferd
