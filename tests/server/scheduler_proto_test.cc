#include "server/scheduler_proto.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common_proto.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;

v1::TaskSpec FullSpec() {
  v1::TaskSpec w;
  w.set_key("k1");
  w.set_model_name("mlp");
  w.set_model_version("2");
  v1::TaskInput* inline_in = w.add_inputs();
  inline_in->set_name("INPUT0");
  inline_in->mutable_tensor()->set_datatype("FP32");
  inline_in->mutable_tensor()->add_shape(1);
  inline_in->mutable_tensor()->add_shape(2);
  inline_in->mutable_tensor()->set_data(std::string(8, '\0'));
  v1::TaskInput* from_task = w.add_inputs();
  from_task->set_name("INPUT1");
  from_task->mutable_task_output()->set_task("0123456789abcdef0123456789abcdef");
  from_task->mutable_task_output()->set_output("OUTPUT0");
  w.add_requested_outputs("OUTPUT0");
  w.set_priority(v1::PRIORITY_HIGH);
  w.add_depends_on("0123456789abcdef0123456789abcdef");
  w.set_memory_requirement_bytes(4096);
  w.set_device(1);
  w.set_timeout_seconds(2.5);
  w.set_max_retries(3);
  w.set_keep_outputs_on_device(true);
  w.set_owner("alice");
  (*w.mutable_parameters())["factor"] = 0.5;
  return w;
}

TEST(SchedulerProtoTest, TaskSpecFromProtoReadsEveryField) {
  TaskSpec spec;
  ASSERT_TRUE(TaskSpecFromProto(FullSpec(), "task", &spec).ok());
  EXPECT_EQ(spec.key, "k1");
  EXPECT_EQ(spec.model_name, "mlp");
  EXPECT_EQ(spec.model_version, "2");
  ASSERT_EQ(spec.inputs.size(), 2u);
  EXPECT_EQ(spec.inputs[0].source, TaskInput::Source::kInline);
  EXPECT_EQ(spec.inputs[0].dtype, DataType::kFp32);
  EXPECT_EQ(spec.inputs[0].shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(spec.inputs[0].data.size(), 8u);
  EXPECT_EQ(spec.inputs[1].source, TaskInput::Source::kTaskOutput);
  EXPECT_EQ(spec.inputs[1].output_name, "OUTPUT0");
  EXPECT_EQ(spec.requested_outputs, std::vector<std::string>{"OUTPUT0"});
  EXPECT_EQ(spec.priority, Priority::kHigh);
  EXPECT_EQ(spec.depends_on.size(), 1u);
  EXPECT_EQ(spec.memory_requirement_bytes, 4096u);
  EXPECT_EQ(spec.device, 1);
  EXPECT_EQ(spec.timeout, absl::Seconds(2.5));
  EXPECT_EQ(spec.max_retries, 3);
  EXPECT_TRUE(spec.keep_outputs_on_device);
  EXPECT_EQ(spec.owner, "alice");
  EXPECT_TRUE(spec.params.has_factor);
  EXPECT_EQ(spec.params.factor, 0.5);
}

TEST(SchedulerProtoTest, UnspecifiedPriorityIsNormal) {
  v1::TaskSpec w = FullSpec();
  w.clear_priority();
  TaskSpec spec;
  ASSERT_TRUE(TaskSpecFromProto(w, "task", &spec).ok());
  EXPECT_EQ(spec.priority, Priority::kNormal);
}

// Each bad field answers INVALID_ARGUMENT naming it under the prefix.
TEST(SchedulerProtoTest, BadFieldsAreNamed) {
  struct Case {
    std::function<void(v1::TaskSpec*)> spoil;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](v1::TaskSpec* w) { w->set_priority(static_cast<v1::Priority>(42)); },
       "tasks[3].priority: unknown priority 42"},
      {[](v1::TaskSpec* w) { w->mutable_inputs(0)->mutable_tensor()->set_datatype("FP8"); },
       "tasks[3].inputs[0].tensor.datatype: unsupported datatype"},
      {[](v1::TaskSpec* w) { w->mutable_inputs(1)->clear_source(); },
       "tasks[3].inputs[1]: set one of tensor, tensor_id or task_output"},
      {[](v1::TaskSpec* w) { w->set_device(-1); }, "tasks[3].device: must be >= 0"},
      {[](v1::TaskSpec* w) { w->set_timeout_seconds(std::nan("")); },
       "tasks[3].timeout_seconds: must be finite and >= 0"},
      {[](v1::TaskSpec* w) { w->set_timeout_seconds(-1); },
       "tasks[3].timeout_seconds: must be finite and >= 0"},
      {[](v1::TaskSpec* w) { w->set_max_retries(-2); }, "tasks[3].max_retries: must be >= 0"},
      {[](v1::TaskSpec* w) { (*w->mutable_parameters())["speed"] = 1; },
       "tasks[3].parameters: unknown parameter 'speed' (known: factor)"},
      {[](v1::TaskSpec* w) {
         (*w->mutable_parameters())["factor"] = std::numeric_limits<double>::infinity();
       },
       "tasks[3].parameters: factor must be finite"},
  };
  for (const Case& c : cases) {
    v1::TaskSpec w = FullSpec();
    c.spoil(&w);
    TaskSpec spec;
    absl::Status st = TaskSpecFromProto(w, "tasks[3]", &spec);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.message));
  }
}

TEST(SchedulerProtoTest, PriorityRoundTripsEveryLevel) {
  for (int p = 0; p < kNumPriorities; ++p) {
    const Priority priority = static_cast<Priority>(p);
    absl::StatusOr<Priority> back = PriorityFromProto(PriorityToProto(priority), "priority");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, priority);
  }
  EXPECT_EQ(PriorityToProto(Priority::kCritical), v1::PRIORITY_CRITICAL);
  EXPECT_EQ(PriorityToProto(Priority::kBackground), v1::PRIORITY_BACKGROUND);
  EXPECT_EQ(PriorityFromProto(static_cast<v1::Priority>(-1), "p").status().message(),
            "p: unknown priority -1");
}

TEST(SchedulerProtoTest, TaskStateRoundTripsAndRefusesUnknown) {
  for (TaskState s :
       {TaskState::kPending, TaskState::kWaitingDeps, TaskState::kQueued, TaskState::kRunning,
        TaskState::kSucceeded, TaskState::kFailed, TaskState::kCancelled, TaskState::kTimedOut}) {
    absl::StatusOr<TaskState> back = TaskStateFromProto(TaskStateToProto(s), "state");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(TaskStateToProto(TaskState::kTimedOut), v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(TaskStateFromProto(v1::TASK_STATE_UNSPECIFIED, "state").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TaskStateFromProto(static_cast<v1::TaskState>(99), "state").status().message(),
            "state: unknown state 99");
}

TEST(SchedulerProtoTest, ListOptions) {
  v1::ListTasksRequest req;
  req.set_page_size(7);
  req.set_page_token("t");
  req.set_model_name("m");
  req.set_owner("o");
  absl::StatusOr<TaskListOptions> o = TaskListOptionsFromProto(req);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->page_size, 7);
  EXPECT_FALSE(o->filter_state);
  req.set_state(v1::TASK_STATE_RUNNING);
  o = TaskListOptionsFromProto(req);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->filter_state);
  EXPECT_EQ(o->state, TaskState::kRunning);

  req.set_state(static_cast<v1::TaskState>(12));
  EXPECT_EQ(TaskListOptionsFromProto(req).status().message(), "state: unknown state 12");
  req.set_state(v1::TASK_STATE_UNSPECIFIED);
  req.set_page_size(-1);
  EXPECT_EQ(TaskListOptionsFromProto(req).status().message(), "page_size: must be >= 0");
}

TEST(SchedulerProtoTest, TaskToProtoWritesTimesAndOutputs) {
  TaskInfo info;
  info.model_name = "mlp";
  info.priority = Priority::kLow;
  info.state = TaskState::kFailed;
  info.status = absl::InternalError("boom");
  info.queued_time = absl::FromUnixMillis(1000);
  info.start_time = absl::FromUnixMillis(1500);
  info.finish_time = absl::FromUnixMillis(3500);
  TaskOutput out;
  out.name = "OUTPUT0";
  out.dtype = DataType::kInt32;
  out.shape = {2};
  out.byte_size = 8;
  info.outputs.push_back(out);
  v1::Task w;
  TaskToProto(info, &w);
  EXPECT_EQ(w.priority(), v1::PRIORITY_LOW);
  EXPECT_EQ(w.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(w.status_code(), static_cast<int>(absl::StatusCode::kInternal));
  EXPECT_EQ(w.status_message(), "boom");
  EXPECT_EQ(w.submit_unix_ms(), 0);  // not set: infinite past
  EXPECT_EQ(w.queued_unix_ms(), 1000);
  EXPECT_DOUBLE_EQ(w.queue_seconds(), 0.5);
  EXPECT_DOUBLE_EQ(w.execution_seconds(), 2.0);
  ASSERT_EQ(w.outputs_size(), 1);
  EXPECT_EQ(w.outputs(0).datatype(), "INT32");
  EXPECT_EQ(w.outputs(0).byte_size(), 8u);
}

TEST(SchedulerProtoTest, StatsListEveryPriorityQueue) {
  SchedulerStats stats;
  stats.queued_by_priority[static_cast<int>(Priority::kCritical)] = 4;
  v1::GetSchedulerStatsResponse w;
  SchedulerStatsToProto(stats, &w);
  ASSERT_EQ(w.queues_size(), kNumPriorities);
  EXPECT_EQ(w.queues(0).priority(), v1::PRIORITY_CRITICAL);
  EXPECT_EQ(w.queues(0).queued(), 4);
}

}  // namespace
}  // namespace inferd
