#include "server/scheduler_service.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/util/echo.h"
#include "server/status_util.h"

namespace inferd {
namespace {

constexpr char kService[] = "inferd.v1.Scheduler/";

int64_t UnixMillis(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return 0;
  return absl::ToUnixMillis(t);
}

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// PRIORITY_CRITICAL (1) .. PRIORITY_BACKGROUND (5) <-> Priority 0 .. 4;
// UNSPECIFIED means NORMAL.
absl::Status PriorityFromProto(v1::Priority p, const std::string& field, Priority* out) {
  if (p == v1::PRIORITY_UNSPECIFIED) {
    *out = Priority::kNormal;
    return absl::OkStatus();
  }
  if (p < v1::PRIORITY_CRITICAL || p > v1::PRIORITY_BACKGROUND) {
    return Invalid(field, absl::StrCat("unknown priority ", static_cast<int>(p)));
  }
  *out = static_cast<Priority>(static_cast<int>(p) - 1);
  return absl::OkStatus();
}

v1::Priority PriorityToProto(Priority p) {
  return static_cast<v1::Priority>(static_cast<int>(p) + 1);
}

v1::TaskState StateToProto(TaskState s) {
  return static_cast<v1::TaskState>(static_cast<int>(s) + 1);
}

absl::StatusOr<TaskId> ParseId(const std::string& text, absl::string_view field) {
  return ParseTaskId(text, field);
}

absl::Time WireDeadline(const grpc::CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// One WaitTask call: finishes from the scheduler's wait callback; a client
// cancellation cancels the wait.
class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  WaitReactor(inferd::Scheduler* scheduler, grpc::CallbackServerContext* ctx,
              const v1::WaitTaskRequest* req, v1::WaitTaskResponse* resp, MethodMetrics* m)
      : scheduler_(scheduler), resp_(resp), timer_(m), omit_outputs_(req->omit_outputs()) {
    absl::StatusOr<TaskId> id = ParseId(req->task_id(), "task_id");
    if (!id.ok()) {
      Complete(id.status());
      return;
    }
    if (!std::isfinite(req->timeout_seconds()) || req->timeout_seconds() < 0) {
      Complete(Invalid("timeout_seconds", "must be finite and >= 0"));
      return;
    }
    absl::Time deadline = WireDeadline(ctx);
    if (req->timeout_seconds() > 0) {
      deadline = std::min(deadline, absl::Now() + absl::Seconds(req->timeout_seconds()));
    }
    absl::StatusOr<uint64_t> wait =
        scheduler_->WaitTask(*id, deadline, [this](absl::StatusOr<TaskInfo> info) {
          if (!info.ok()) {
            Complete(info.status());
            return;
          }
          if (omit_outputs_) info->outputs.clear();
          TaskToProto(*info, resp_->mutable_task());
          resp_->set_finished(IsTerminal(info->state));
          Complete(absl::OkStatus());
        });
    if (!wait.ok()) {
      Complete(wait.status());
      return;
    }
    absl::MutexLock lock(&mu_);
    wait_id_ = *wait;
  }

  void OnCancel() override {
    uint64_t wait_id = 0;
    {
      absl::MutexLock lock(&mu_);
      wait_id = wait_id_;
    }
    // Runs the wait callback with CANCELLED unless it already ran.
    if (wait_id != 0) scheduler_->CancelWait(wait_id);
  }

  void OnDone() override { delete this; }

 private:
  void Complete(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    const grpc::Status wire = ToGrpcStatus(status);
    timer_.Finish(wire.error_code());
    Finish(wire);
  }

  inferd::Scheduler* const scheduler_;
  v1::WaitTaskResponse* const resp_;
  CallTimer timer_;
  const bool omit_outputs_;
  absl::Mutex mu_;
  uint64_t wait_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// One WatchTasks stream. The scheduler's watcher notifies (cheaply, on the
// publishing thread) by posting a pump to the service's WatchWriter; the
// pump and OnWriteDone write one event at a time from the watcher's bounded
// buffer. `shared_` outlives the reactor so a late pump finds it gone.
class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchTasksResponse> {
 public:
  WatchReactor(inferd::Scheduler* scheduler, WatchWriter* writer, const v1::WatchTasksRequest* req,
               MethodMetrics* m)
      : scheduler_(scheduler), shared_(std::make_shared<Shared>()), timer_(m) {
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->reactor = this;
    }
    if (static_cast<size_t>(req->task_ids_size()) > kMaxWatchTaskIds) {
      absl::MutexLock lock(&mu_);
      FinishLocked(absl::InvalidArgumentError(
          absl::StrCat("task_ids: ", req->task_ids_size(), " ids exceed the limit of ",
                       kMaxWatchTaskIds, " per watch")));
      return;
    }
    WatchOptions options;
    for (int i = 0; i < req->task_ids_size(); ++i) {
      absl::StatusOr<TaskId> id = ParseId(req->task_ids(i), absl::StrCat("task_ids[", i, "]"));
      if (!id.ok()) {
        absl::MutexLock lock(&mu_);
        FinishLocked(id.status());
        return;
      }
      options.task_ids.insert(*id);
    }
    options.model_name = req->model_name();
    auto watcher = scheduler_->Watch(std::move(options), [writer, shared = shared_] {
      writer->Post([shared] { Pump(shared); });
    });
    absl::MutexLock lock(&mu_);
    if (watcher == nullptr) {
      FinishLocked(absl::ResourceExhaustedError(
          absl::StrCat("limits.max_watch_streams: ", scheduler_->options().limits.max_watch_streams,
                       " WatchTasks streams are open; close one or filter by task_ids")));
      return;
    }
    watcher_ = std::move(watcher);
    if (!writing_ && !finished_) NextLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(absl::CancelledError("client went away"));
      return;
    }
    NextLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(absl::CancelledError("watch cancelled by the client"));
  }

  void OnDone() override {
    {
      // From here a pump finds no reactor.
      absl::MutexLock lock(&shared_->mu);
      shared_->reactor = nullptr;
    }
    std::shared_ptr<TaskWatcher> watcher;
    {
      absl::MutexLock lock(&mu_);
      watcher = watcher_;
    }
    if (watcher != nullptr) scheduler_->Unwatch(watcher);
    delete this;
  }

 private:
  struct Shared {
    absl::Mutex mu;
    WatchReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
  };

  // On the writer thread.
  static void Pump(const std::shared_ptr<Shared>& shared) {
    absl::MutexLock shared_lock(&shared->mu);
    WatchReactor* r = shared->reactor;
    if (r == nullptr) return;
    absl::MutexLock lock(&r->mu_);
    if (r->watcher_ != nullptr && !r->writing_) r->NextLocked();
  }

  void NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    TaskEvent event;
    if (watcher_->Next(&event)) {
      resp_.Clear();
      TaskEventToProto(event, resp_.mutable_event());
      writing_ = true;
      StartWrite(&resp_);
    } else if (watcher_->overflowed()) {
      FinishLocked(absl::ResourceExhaustedError(absl::StrCat(
          "watch fell more than ", watcher_->capacity(),
          " events behind (scheduler.watch_buffer_events); resubscribe and re-read tasks "
          "with ListTasks")));
    } else if (watcher_->closed()) {
      FinishLocked(absl::UnavailableError("inferd is shutting down"));
    }
  }

  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    const grpc::Status wire = ToGrpcStatus(status);
    timer_.Finish(wire.error_code());
    Finish(wire);
  }

  inferd::Scheduler* const scheduler_;
  const std::shared_ptr<Shared> shared_;
  CallTimer timer_;
  absl::Mutex mu_;
  std::shared_ptr<TaskWatcher> watcher_ ABSL_GUARDED_BY(mu_);
  v1::WatchTasksResponse resp_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::Status TaskSpecFromProto(const v1::TaskSpec& wire, const std::string& field, TaskSpec* out) {
  out->key = wire.key();
  out->model_name = wire.model_name();
  out->model_version = wire.model_version();
  for (int i = 0; i < wire.inputs_size(); ++i) {
    const v1::TaskInput& w = wire.inputs(i);
    const std::string in_field = absl::StrCat(field, ".inputs[", i, "]");
    TaskInput in;
    in.name = w.name();
    switch (w.source_case()) {
      case v1::TaskInput::kTensor: {
        std::optional<DataType> dtype = ParseDataType(w.tensor().datatype());
        if (!dtype) {
          return Invalid(in_field + ".tensor.datatype",
                         absl::StrCat("unsupported datatype ", Echo(w.tensor().datatype())));
        }
        in.source = TaskInput::Source::kInline;
        in.dtype = *dtype;
        in.shape.assign(w.tensor().shape().begin(), w.tensor().shape().end());
        in.data = w.tensor().data();
        break;
      }
      case v1::TaskInput::kTensorId:
        in.source = TaskInput::Source::kTensor;
        in.tensor_handle = w.tensor_id();
        break;
      case v1::TaskInput::kTaskOutput:
        in.source = TaskInput::Source::kTaskOutput;
        in.dependency = w.task_output().task();
        in.output_name = w.task_output().output();
        break;
      case v1::TaskInput::SOURCE_NOT_SET:
        return Invalid(in_field, "set one of tensor, tensor_id or task_output");
    }
    out->inputs.push_back(std::move(in));
  }
  out->requested_outputs.assign(wire.requested_outputs().begin(), wire.requested_outputs().end());
  if (absl::Status st = PriorityFromProto(wire.priority(), field + ".priority", &out->priority);
      !st.ok()) {
    return st;
  }
  out->depends_on.assign(wire.depends_on().begin(), wire.depends_on().end());
  out->memory_requirement_bytes = wire.memory_requirement_bytes();
  if (wire.has_device()) {
    if (wire.device() < 0) return Invalid(field + ".device", "must be >= 0");
    out->device = wire.device();
  }
  if (!std::isfinite(wire.timeout_seconds()) || wire.timeout_seconds() < 0) {
    return Invalid(field + ".timeout_seconds", "must be finite and >= 0");
  }
  out->timeout = absl::Seconds(wire.timeout_seconds());
  if (wire.has_max_retries()) {
    if (wire.max_retries() < 0) return Invalid(field + ".max_retries", "must be >= 0");
    out->max_retries = wire.max_retries();
  }
  out->keep_outputs_on_device = wire.keep_outputs_on_device();
  out->owner = wire.owner();
  for (const auto& [key, value] : wire.parameters()) {
    if (key != "factor") {
      return Invalid(absl::StrCat(field, ".parameters"),
                     absl::StrCat("unknown parameter ", Echo(key), " (known: factor)"));
    }
    if (!std::isfinite(value)) return Invalid(field + ".parameters", "factor must be finite");
    out->params.has_factor = true;
    out->params.factor = value;
  }
  return absl::OkStatus();
}

void TaskToProto(const TaskInfo& info, v1::Task* out) {
  out->set_task_id(FormatTaskId(info.id));
  out->set_model_name(info.model_name);
  out->set_model_version(info.model_version);
  out->set_priority(PriorityToProto(info.priority));
  out->set_state(StateToProto(info.state));
  if (!info.status.ok()) {
    out->set_status_code(static_cast<int32_t>(info.status.code()));
    out->set_status_message(std::string(info.status.message()));
  }
  for (const TaskId& dep : info.depends_on) out->add_depends_on(FormatTaskId(dep));
  out->set_owner(info.owner);
  out->set_device(info.device);
  out->set_attempts(info.attempts);
  out->set_batched(info.batched);
  out->set_submit_unix_ms(UnixMillis(info.submit_time));
  out->set_queued_unix_ms(UnixMillis(info.queued_time));
  out->set_start_unix_ms(UnixMillis(info.start_time));
  out->set_finish_unix_ms(UnixMillis(info.finish_time));
  out->set_deadline_unix_ms(UnixMillis(info.deadline));
  if (info.queued_time != absl::InfinitePast() && info.start_time != absl::InfinitePast() &&
      info.start_time >= info.queued_time) {
    out->set_queue_seconds(absl::ToDoubleSeconds(info.start_time - info.queued_time));
  }
  if (info.start_time != absl::InfinitePast() && info.finish_time != absl::InfinitePast() &&
      info.finish_time >= info.start_time) {
    out->set_execution_seconds(absl::ToDoubleSeconds(info.finish_time - info.start_time));
  }
  for (const TaskOutput& o : info.outputs) {
    v1::TaskOutput* w = out->add_outputs();
    w->set_name(o.name);
    const absl::string_view dt = DataTypeName(o.dtype);
    w->set_datatype(dt.data(), dt.size());
    for (int64_t d : o.shape) w->add_shape(d);
    w->set_byte_size(o.byte_size);
    w->set_data(o.data);
    w->set_tensor_id(o.tensor_handle);
    w->set_device(o.device);
  }
}

void TaskEventToProto(const TaskEvent& event, v1::TaskEvent* out) {
  out->set_task_id(FormatTaskId(event.id));
  out->set_state(StateToProto(event.state));
  out->set_time_unix_ms(UnixMillis(event.time));
  out->set_device(event.device);
  out->set_model_name(event.model_name);
  out->set_priority(PriorityToProto(event.priority));
  if (!event.status.ok()) {
    out->set_status_code(static_cast<int32_t>(event.status.code()));
    out->set_status_message(std::string(event.status.message()));
  }
}

void SchedulerStatsToProto(const SchedulerStats& s, v1::GetSchedulerStatsResponse* out) {
  out->set_strategy(s.strategy);
  for (int p = 0; p < kNumPriorities; ++p) {
    v1::PriorityQueueStats* q = out->add_queues();
    q->set_priority(PriorityToProto(static_cast<Priority>(p)));
    q->set_queued(s.queued_by_priority[p]);
  }
  out->set_queued(s.queued);
  out->set_running(s.running);
  out->set_waiting_deps(s.waiting_deps);
  out->set_pending_batch(s.pending_batch);
  out->set_submitted(s.submitted);
  out->set_succeeded(s.completed[static_cast<int>(Outcome::kSucceeded)]);
  out->set_failed(s.completed[static_cast<int>(Outcome::kFailed)]);
  out->set_cancelled(s.completed[static_cast<int>(Outcome::kCancelled)]);
  out->set_timed_out(s.completed[static_cast<int>(Outcome::kTimedOut)]);
  out->set_rejected(s.rejected);
  out->set_retries(s.retries);
  out->set_preemptions(s.preemptions);
  out->set_batches(s.batches);
  out->set_batched_requests(s.batched_requests);
  out->set_tasks_retained(s.tasks_retained);
  out->set_mean_queue_seconds(s.mean_queue_seconds);
  out->set_mean_execution_seconds(s.mean_execution_seconds);
  for (const DeviceSchedulerStats& d : s.devices) {
    v1::DeviceSchedulerStats* w = out->add_devices();
    w->set_device(d.device);
    w->set_active(d.active);
    w->set_healthy(d.healthy);
    w->set_queued(d.queued);
    w->set_running(d.running);
    w->set_consecutive_failures(d.consecutive_failures);
    w->set_completed(d.completed);
    w->set_failures(d.failures);
    w->set_reserved_bytes(d.reserved_bytes);
  }
}

SchedulerService::SchedulerService(inferd::Scheduler* scheduler, GrpcMetrics* metrics)
    : scheduler_(scheduler),
      m_submit_(metrics->ForMethod(absl::StrCat(kService, "SubmitTask"))),
      m_submit_many_(metrics->ForMethod(absl::StrCat(kService, "SubmitTasks"))),
      m_get_(metrics->ForMethod(absl::StrCat(kService, "GetTask"))),
      m_wait_(metrics->ForMethod(absl::StrCat(kService, "WaitTask"))),
      m_cancel_(metrics->ForMethod(absl::StrCat(kService, "CancelTask"))),
      m_watch_(metrics->ForMethod(absl::StrCat(kService, "WatchTasks"))),
      m_list_(metrics->ForMethod(absl::StrCat(kService, "ListTasks"))),
      m_stats_(metrics->ForMethod(absl::StrCat(kService, "GetSchedulerStats"))) {}

grpc::ServerUnaryReactor* SchedulerService::SubmitTask(grpc::CallbackServerContext* ctx,
                                                       const v1::SubmitTaskRequest* req,
                                                       v1::SubmitTaskResponse* resp) {
  CallTimer timer(m_submit_);
  TaskSpec spec;
  if (absl::Status st = TaskSpecFromProto(req->task(), "task", &spec); !st.ok()) {
    return FinishUnary(ctx, timer, st);
  }
  absl::StatusOr<TaskId> id = scheduler_->SubmitTask(std::move(spec));
  if (!id.ok()) return FinishUnary(ctx, timer, id.status());
  resp->set_task_id(FormatTaskId(*id));
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerUnaryReactor* SchedulerService::SubmitTasks(grpc::CallbackServerContext* ctx,
                                                        const v1::SubmitTasksRequest* req,
                                                        v1::SubmitTasksResponse* resp) {
  CallTimer timer(m_submit_many_);
  std::vector<TaskSpec> specs(req->tasks_size());
  for (int i = 0; i < req->tasks_size(); ++i) {
    if (absl::Status st =
            TaskSpecFromProto(req->tasks(i), absl::StrCat("tasks[", i, "]"), &specs[i]);
        !st.ok()) {
      return FinishUnary(ctx, timer, st);
    }
  }
  absl::StatusOr<std::vector<TaskId>> ids = scheduler_->SubmitTasks(std::move(specs));
  if (!ids.ok()) return FinishUnary(ctx, timer, ids.status());
  for (const TaskId& id : *ids) resp->add_task_ids(FormatTaskId(id));
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerUnaryReactor* SchedulerService::GetTask(grpc::CallbackServerContext* ctx,
                                                    const v1::GetTaskRequest* req,
                                                    v1::GetTaskResponse* resp) {
  CallTimer timer(m_get_);
  absl::StatusOr<TaskId> id = ParseId(req->task_id(), "task_id");
  if (!id.ok()) return FinishUnary(ctx, timer, id.status());
  absl::StatusOr<TaskInfo> info = scheduler_->GetTask(*id, !req->omit_outputs());
  if (!info.ok()) return FinishUnary(ctx, timer, info.status());
  TaskToProto(*info, resp->mutable_task());
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerUnaryReactor* SchedulerService::WaitTask(grpc::CallbackServerContext* ctx,
                                                     const v1::WaitTaskRequest* req,
                                                     v1::WaitTaskResponse* resp) {
  return new WaitReactor(scheduler_, ctx, req, resp, m_wait_);
}

grpc::ServerUnaryReactor* SchedulerService::CancelTask(grpc::CallbackServerContext* ctx,
                                                       const v1::CancelTaskRequest* req,
                                                       v1::CancelTaskResponse* resp) {
  CallTimer timer(m_cancel_);
  absl::StatusOr<TaskId> id = ParseId(req->task_id(), "task_id");
  if (!id.ok()) return FinishUnary(ctx, timer, id.status());
  absl::StatusOr<TaskInfo> info = scheduler_->CancelTask(*id);
  if (!info.ok()) return FinishUnary(ctx, timer, info.status());
  TaskToProto(*info, resp->mutable_task());
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::WatchTasksResponse>* SchedulerService::WatchTasks(
    grpc::CallbackServerContext*, const v1::WatchTasksRequest* req) {
  return new WatchReactor(scheduler_, &watch_writer_, req, m_watch_);
}

grpc::ServerUnaryReactor* SchedulerService::ListTasks(grpc::CallbackServerContext* ctx,
                                                      const v1::ListTasksRequest* req,
                                                      v1::ListTasksResponse* resp) {
  CallTimer timer(m_list_);
  if (req->page_size() < 0) return FinishUnary(ctx, timer, Invalid("page_size", "must be >= 0"));
  TaskListOptions options;
  options.page_size = req->page_size();
  options.page_token = req->page_token();
  options.model_name = req->model_name();
  options.owner = req->owner();
  if (req->state() != v1::TASK_STATE_UNSPECIFIED) {
    if (req->state() < v1::TASK_STATE_PENDING || req->state() > v1::TASK_STATE_TIMED_OUT) {
      return FinishUnary(ctx, timer, Invalid("state", absl::StrCat("unknown state ", req->state())));
    }
    options.filter_state = true;
    options.state = static_cast<TaskState>(static_cast<int>(req->state()) - 1);
  }
  absl::StatusOr<TaskPage> page = scheduler_->ListTasks(options);
  if (!page.ok()) return FinishUnary(ctx, timer, page.status());
  for (const TaskInfo& t : page->tasks) TaskToProto(t, resp->add_tasks());
  resp->set_next_page_token(page->next_page_token);
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerUnaryReactor* SchedulerService::GetSchedulerStats(grpc::CallbackServerContext* ctx,
                                                              const v1::GetSchedulerStatsRequest*,
                                                              v1::GetSchedulerStatsResponse* resp) {
  CallTimer timer(m_stats_);
  SchedulerStatsToProto(scheduler_->GetStats(), resp);
  return FinishUnary(ctx, timer, absl::OkStatus());
}

}  // namespace inferd
