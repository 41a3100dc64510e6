// Conversions between inferd.v1.Scheduler messages and the Scheduler's
// plain structs (core/sched/task.h). Errors are INVALID_ARGUMENT naming the
// wire field under the caller's `field` prefix ("task", "tasks[2]"), e.g.
// "task.inputs[0].tensor.datatype: unsupported datatype 'X'".
#ifndef INFERD_SERVER_SCHEDULER_PROTO_H_
#define INFERD_SERVER_SCHEDULER_PROTO_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/sched/scheduler.h"
#include "inferd/v1/scheduler.pb.h"

namespace inferd {

absl::Status TaskSpecFromProto(const v1::TaskSpec& wire, const std::string& field, TaskSpec* out);
void TaskToProto(const TaskInfo& info, v1::Task* out);
void TaskEventToProto(const TaskEvent& event, v1::TaskEvent* out);
void SchedulerStatsToProto(const SchedulerStats& stats, v1::GetSchedulerStatsResponse* out);

// TASK_STATE_PENDING (1) .. TASK_STATE_TIMED_OUT <-> TaskState kPending ..
// kTimedOut. TaskStateFromProto refuses UNSPECIFIED and unknown numbers
// (INVALID_ARGUMENT "<field>: unknown state <n>").
absl::StatusOr<TaskState> TaskStateFromProto(v1::TaskState wire, absl::string_view field);
v1::TaskState TaskStateToProto(TaskState state);

// ListTasksRequest -> TaskListOptions (page_size >= 0; state, when set, known).
absl::StatusOr<TaskListOptions> TaskListOptionsFromProto(const v1::ListTasksRequest& wire);

}  // namespace inferd

#endif  // INFERD_SERVER_SCHEDULER_PROTO_H_
