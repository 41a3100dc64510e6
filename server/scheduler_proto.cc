#include "server/scheduler_proto.h"

#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/util/echo.h"
#include "server/common_proto.h"

namespace inferd {

absl::StatusOr<TaskState> TaskStateFromProto(v1::TaskState wire, absl::string_view field) {
  if (wire < v1::TASK_STATE_PENDING || wire > v1::TASK_STATE_TIMED_OUT) {
    return InvalidField(field, absl::StrCat("unknown state ", static_cast<int>(wire)));
  }
  return static_cast<TaskState>(static_cast<int>(wire) - 1);
}

v1::TaskState TaskStateToProto(TaskState state) {
  return static_cast<v1::TaskState>(static_cast<int>(state) + 1);
}

absl::StatusOr<TaskListOptions> TaskListOptionsFromProto(const v1::ListTasksRequest& wire) {
  if (wire.page_size() < 0) return InvalidField("page_size", "must be >= 0");
  TaskListOptions options;
  options.page_size = wire.page_size();
  options.page_token = wire.page_token();
  options.model_name = wire.model_name();
  options.owner = wire.owner();
  if (wire.state() != v1::TASK_STATE_UNSPECIFIED) {
    absl::StatusOr<TaskState> state = TaskStateFromProto(wire.state(), "state");
    if (!state.ok()) return state.status();
    options.filter_state = true;
    options.state = *state;
  }
  return options;
}

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
          return InvalidField(in_field + ".tensor.datatype",
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
        return InvalidField(in_field, "set one of tensor, tensor_id or task_output");
    }
    out->inputs.push_back(std::move(in));
  }
  out->requested_outputs.assign(wire.requested_outputs().begin(), wire.requested_outputs().end());
  absl::StatusOr<Priority> priority = PriorityFromProto(wire.priority(), field + ".priority");
  if (!priority.ok()) return priority.status();
  out->priority = *priority;
  out->depends_on.assign(wire.depends_on().begin(), wire.depends_on().end());
  out->memory_requirement_bytes = wire.memory_requirement_bytes();
  if (wire.has_device()) {
    if (wire.device() < 0) return InvalidField(field + ".device", "must be >= 0");
    out->device = wire.device();
  }
  if (!std::isfinite(wire.timeout_seconds()) || wire.timeout_seconds() < 0) {
    return InvalidField(field + ".timeout_seconds", "must be finite and >= 0");
  }
  out->timeout = absl::Seconds(wire.timeout_seconds());
  if (wire.has_max_retries()) {
    if (wire.max_retries() < 0) return InvalidField(field + ".max_retries", "must be >= 0");
    out->max_retries = wire.max_retries();
  }
  out->keep_outputs_on_device = wire.keep_outputs_on_device();
  out->owner = wire.owner();
  for (const auto& [key, value] : wire.parameters()) {
    if (key != "factor") {
      return InvalidField(absl::StrCat(field, ".parameters"),
                          absl::StrCat("unknown parameter ", Echo(key), " (known: factor)"));
    }
    if (!std::isfinite(value)) return InvalidField(field + ".parameters", "factor must be finite");
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
  out->set_state(TaskStateToProto(info.state));
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
  out->set_state(TaskStateToProto(event.state));
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
  out->set_groups(s.groups);
  out->set_grouped_requests(s.grouped_requests);
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

}  // namespace inferd
