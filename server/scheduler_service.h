// SchedulerService: inferd.v1.Scheduler over the callback API. Converts wire
// messages to the Scheduler's plain structs and back; holds no policy.
// WaitTask and WatchTasks hold no thread while they wait: the scheduler
// calls back (wait completion, watcher notification) and the reactors
// finish, or post their writes to one WatchWriter thread.
#ifndef INFERD_SERVER_SCHEDULER_SERVICE_H_
#define INFERD_SERVER_SCHEDULER_SERVICE_H_

#include <string>

#include "absl/status/status.h"
#include "core/sched/scheduler.h"
#include "inferd/v1/scheduler.grpc.pb.h"
#include "server/grpc_metrics.h"
#include "server/watch_writer.h"

namespace inferd {

// Thread-safe (the scheduler is). Borrows the scheduler and the metrics,
// which must outlive it.
class SchedulerService final : public inferd::v1::Scheduler::CallbackService {
 public:
  SchedulerService(inferd::Scheduler* scheduler, GrpcMetrics* metrics);

  // inferd::v1::Scheduler::CallbackService
  grpc::ServerUnaryReactor* SubmitTask(grpc::CallbackServerContext* ctx,
                                       const v1::SubmitTaskRequest* req,
                                       v1::SubmitTaskResponse* resp) override;
  grpc::ServerUnaryReactor* SubmitTasks(grpc::CallbackServerContext* ctx,
                                        const v1::SubmitTasksRequest* req,
                                        v1::SubmitTasksResponse* resp) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* ctx, const v1::GetTaskRequest* req,
                                    v1::GetTaskResponse* resp) override;
  grpc::ServerUnaryReactor* WaitTask(grpc::CallbackServerContext* ctx,
                                     const v1::WaitTaskRequest* req,
                                     v1::WaitTaskResponse* resp) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* ctx,
                                       const v1::CancelTaskRequest* req,
                                       v1::CancelTaskResponse* resp) override;
  grpc::ServerWriteReactor<v1::WatchTasksResponse>* WatchTasks(
      grpc::CallbackServerContext* ctx, const v1::WatchTasksRequest* req) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx,
                                      const v1::ListTasksRequest* req,
                                      v1::ListTasksResponse* resp) override;
  grpc::ServerUnaryReactor* GetSchedulerStats(grpc::CallbackServerContext* ctx,
                                              const v1::GetSchedulerStatsRequest* req,
                                              v1::GetSchedulerStatsResponse* resp) override;

 private:
  inferd::Scheduler* const scheduler_;
  WatchWriter watch_writer_;
  MethodMetrics* const m_submit_;
  MethodMetrics* const m_submit_many_;
  MethodMetrics* const m_get_;
  MethodMetrics* const m_wait_;
  MethodMetrics* const m_cancel_;
  MethodMetrics* const m_watch_;
  MethodMetrics* const m_list_;
  MethodMetrics* const m_stats_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_SCHEDULER_SERVICE_H_
