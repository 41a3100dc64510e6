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
#include "server/common_proto.h"
#include "server/scheduler_proto.h"
#include "server/server_call.h"
#include "server/token_auth.h"

namespace inferd {
namespace {

constexpr char kService[] = "inferd.v1.Scheduler/";

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
      : scheduler_(scheduler), resp_(resp), call_(m), omit_outputs_(req->omit_outputs()) {
    absl::StatusOr<TaskId> id = ParseId(req->task_id(), "task_id");
    if (!id.ok()) {
      Complete(id.status());
      return;
    }
    if (!std::isfinite(req->timeout_seconds()) || req->timeout_seconds() < 0) {
      Complete(InvalidField("timeout_seconds", "must be finite and >= 0"));
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
  void Complete(const absl::Status& status) { call_.Finish(this, status); }

  inferd::Scheduler* const scheduler_;
  v1::WaitTaskResponse* const resp_;
  ServerCall call_;
  const bool omit_outputs_;
  absl::Mutex mu_;
  uint64_t wait_id_ ABSL_GUARDED_BY(mu_) = 0;
};

// One WatchTasks stream. The scheduler's watcher notifies (cheaply, on the
// publishing thread) by posting a pump to the service's WatchWriter; the
// pump and OnWriteDone write one event at a time from the watcher's bounded
// buffer. `shared_` outlives the reactor so a late pump finds it gone.
class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchTasksResponse> {
 public:
  WatchReactor(inferd::Scheduler* scheduler, WatchWriter* writer, const v1::WatchTasksRequest* req,
               MethodMetrics* m)
      : scheduler_(scheduler), shared_(std::make_shared<Shared>()), call_(m) {
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
    if (!writing_) NextLocked();
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
    if (call_.finished()) return;
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
    call_.Finish(this, status);
  }

  inferd::Scheduler* const scheduler_;
  const std::shared_ptr<Shared> shared_;
  ServerCall call_;
  absl::Mutex mu_;
  std::shared_ptr<TaskWatcher> watcher_ ABSL_GUARDED_BY(mu_);
  v1::WatchTasksResponse resp_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

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
  UnaryCall call(ctx, m_submit_);
  TaskSpec spec;
  if (absl::Status st = TaskSpecFromProto(req->task(), "task", &spec); !st.ok()) {
    return call.Finish(st);
  }
  // With server.auth the task (and the tensors it keeps) belongs to the
  // caller unless an admin names another owner.
  absl::StatusOr<std::string> owner = OwnerFor(CallerOf(*ctx), spec.owner, "SubmitTask",
                                               "task.owner");
  if (!owner.ok()) return call.Finish(owner.status());
  spec.owner = *std::move(owner);
  absl::StatusOr<TaskId> id = scheduler_->SubmitTask(std::move(spec));
  if (!id.ok()) return call.Finish(id.status());
  resp->set_task_id(FormatTaskId(*id));
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* SchedulerService::SubmitTasks(grpc::CallbackServerContext* ctx,
                                                        const v1::SubmitTasksRequest* req,
                                                        v1::SubmitTasksResponse* resp) {
  UnaryCall call(ctx, m_submit_many_);
  std::vector<TaskSpec> specs(req->tasks_size());
  const std::optional<Caller> caller = CallerOf(*ctx);
  for (int i = 0; i < req->tasks_size(); ++i) {
    const std::string field = absl::StrCat("tasks[", i, "]");
    if (absl::Status st = TaskSpecFromProto(req->tasks(i), field, &specs[i]); !st.ok()) {
      return call.Finish(st);
    }
    absl::StatusOr<std::string> owner =
        OwnerFor(caller, specs[i].owner, "SubmitTasks", field + ".owner");
    if (!owner.ok()) return call.Finish(owner.status());
    specs[i].owner = *std::move(owner);
  }
  absl::StatusOr<std::vector<TaskId>> ids = scheduler_->SubmitTasks(std::move(specs));
  if (!ids.ok()) return call.Finish(ids.status());
  for (const TaskId& id : *ids) resp->add_task_ids(FormatTaskId(id));
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* SchedulerService::GetTask(grpc::CallbackServerContext* ctx,
                                                    const v1::GetTaskRequest* req,
                                                    v1::GetTaskResponse* resp) {
  UnaryCall call(ctx, m_get_);
  absl::StatusOr<TaskId> id = ParseId(req->task_id(), "task_id");
  if (!id.ok()) return call.Finish(id.status());
  absl::StatusOr<TaskInfo> info = scheduler_->GetTask(*id, !req->omit_outputs());
  if (!info.ok()) return call.Finish(info.status());
  TaskToProto(*info, resp->mutable_task());
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* SchedulerService::WaitTask(grpc::CallbackServerContext* ctx,
                                                     const v1::WaitTaskRequest* req,
                                                     v1::WaitTaskResponse* resp) {
  return new WaitReactor(scheduler_, ctx, req, resp, m_wait_);
}

grpc::ServerUnaryReactor* SchedulerService::CancelTask(grpc::CallbackServerContext* ctx,
                                                       const v1::CancelTaskRequest* req,
                                                       v1::CancelTaskResponse* resp) {
  UnaryCall call(ctx, m_cancel_);
  absl::StatusOr<TaskId> id = ParseId(req->task_id(), "task_id");
  if (!id.ok()) return call.Finish(id.status());
  absl::StatusOr<TaskInfo> info = scheduler_->CancelTask(*id);
  if (!info.ok()) return call.Finish(info.status());
  TaskToProto(*info, resp->mutable_task());
  return call.Finish(absl::OkStatus());
}

grpc::ServerWriteReactor<v1::WatchTasksResponse>* SchedulerService::WatchTasks(
    grpc::CallbackServerContext*, const v1::WatchTasksRequest* req) {
  return new WatchReactor(scheduler_, &watch_writer_, req, m_watch_);
}

grpc::ServerUnaryReactor* SchedulerService::ListTasks(grpc::CallbackServerContext* ctx,
                                                      const v1::ListTasksRequest* req,
                                                      v1::ListTasksResponse* resp) {
  UnaryCall call(ctx, m_list_);
  absl::StatusOr<TaskListOptions> options = TaskListOptionsFromProto(*req);
  if (!options.ok()) return call.Finish(options.status());
  absl::StatusOr<TaskPage> page = scheduler_->ListTasks(*options);
  if (!page.ok()) return call.Finish(page.status());
  for (const TaskInfo& t : page->tasks) TaskToProto(t, resp->add_tasks());
  resp->set_next_page_token(page->next_page_token);
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* SchedulerService::GetSchedulerStats(grpc::CallbackServerContext* ctx,
                                                              const v1::GetSchedulerStatsRequest*,
                                                              v1::GetSchedulerStatsResponse* resp) {
  UnaryCall call(ctx, m_stats_);
  SchedulerStatsToProto(scheduler_->GetStats(), resp);
  return call.Finish(absl::OkStatus());
}

}  // namespace inferd
