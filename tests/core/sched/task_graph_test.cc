// Unit tests of the task graph on its own: validation, admission all or
// none, dependencies becoming ready or failing, waits, watches and
// cancellation, with the scheduler's side played by recording hooks and a
// fake clock.
#include "core/sched/task_graph.h"

#include <memory>
#include <string>
#include <vector>

#include "core/models/model_registry.h"
#include "gtest/gtest.h"
#include "tests/core/sched/sched_test_util.h"

namespace inferd {
namespace {

class TaskGraphTest : public ::testing::Test {
 protected:
  TaskGraphTest() {
    models_.Add(std::make_shared<testing::TestModel>("test"));
    graph_ = std::make_unique<TaskGraph>(
        options_, &models_, nullptr, &clock_, /*num_devices=*/1,
        TaskGraphHooks{
            .admit =
                [this](const std::array<int64_t, kNumPriorities>& n) -> absl::Status {
                  int64_t total = 0;
                  for (int64_t c : n) total += c;
                  if (admitted_ + total > capacity_) {
                    return absl::ResourceExhaustedError("scheduler.max_queue_depth: full");
                  }
                  admitted_ += total;
                  return absl::OkStatus();
                },
            .unadmit = [this](Priority) { --admitted_; },
            .run = [this](const std::shared_ptr<TaskRecord>& r) { ready_.push_back(r); },
            .unqueue = [](Job*) { return false; },
            .drop = [](Job*, absl::Status) {},
            .has_device = [](int device) { return device == 0; },
            .schedule = [this](absl::Time when,
                               TimerQueue::Callback fn) { return timers_.Schedule(when, std::move(fn)); },
            .cancel_timer = [this](uint64_t id) { timers_.Cancel(id); },
        });
  }

  static TaskSpec Spec(const std::string& key, std::vector<std::string> depends_on = {}) {
    TaskSpec spec;
    spec.key = key;
    spec.model_name = "test";
    TaskInput in;
    in.name = "INPUT0";
    in.dtype = DataType::kFp32;
    in.shape = {1};
    in.data = std::string(4, '\0');
    spec.inputs.push_back(in);
    spec.depends_on = std::move(depends_on);
    return spec;
  }

  absl::StatusOr<std::vector<TaskId>> Submit(std::vector<TaskSpec> specs) {
    absl::InlinedVector<TaskId, 1> ids;
    absl::Status st = graph_->Submit(absl::MakeSpan(specs), &ids);
    if (!st.ok()) return st;
    return std::vector<TaskId>(ids.begin(), ids.end());
  }

  TaskState StateOf(const TaskId& id) { return graph_->Get(id, false)->state; }

  void Advance(absl::Duration d) {
    clock_.Advance(d);
    timers_.RunDue(clock_.Now());
  }

  SchedulerOptions options_;
  ModelRegistry models_;
  FakeClock clock_;
  TimerQueue timers_;
  int64_t admitted_ = 0;
  int64_t capacity_ = 100;
  std::vector<std::shared_ptr<TaskRecord>> ready_;
  std::unique_ptr<TaskGraph> graph_;
};

TEST_F(TaskGraphTest, ValidationNamesTheFieldAndAdmitsNothing) {
  TaskSpec bad = Spec("a");
  bad.inputs[0].name = "NOPE";
  auto ids = Submit({Spec("ok"), bad});
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ids.status().message().find("tasks[1].inputs[0].name"), std::string::npos)
      << ids.status();
  TaskSpec device = Spec("d");
  device.device = 5;
  EXPECT_NE(Submit({device}).status().message().find("tasks[0].device: 5 is not a device"),
            std::string::npos);
  EXPECT_EQ(admitted_, 0);
  EXPECT_TRUE(ready_.empty());
}

TEST_F(TaskGraphTest, CycleIsRefusedBeforeAnythingIsAdmitted) {
  auto ids = Submit({Spec("a", {"b"}), Spec("b", {"a"})});
  ASSERT_FALSE(ids.ok());
  EXPECT_NE(ids.status().message().find("dependency cycle"), std::string::npos);
  EXPECT_EQ(admitted_, 0);
}

TEST_F(TaskGraphTest, AdmissionIsAllOrNone) {
  capacity_ = 1;
  auto ids = Submit({Spec("a"), Spec("b")});
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(ready_.empty());
}

TEST_F(TaskGraphTest, DependentRunsOnlyAfterItsDependencySucceeded) {
  auto ids = Submit({Spec("a"), Spec("b", {"a"})});
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ready_.size(), 1u);
  EXPECT_EQ(ready_[0]->id, (*ids)[0]);
  EXPECT_EQ(StateOf((*ids)[1]), TaskState::kWaitingDeps);
  EXPECT_EQ(graph_->waiting_deps(), 1);
  graph_->Finish(ready_[0].get(), absl::OkStatus());
  EXPECT_EQ(StateOf((*ids)[0]), TaskState::kSucceeded);
  ASSERT_EQ(ready_.size(), 2u);
  EXPECT_EQ(ready_[1]->id, (*ids)[1]);  // the scheduler queues it from here
}

// Verifies that a finished task keeps no inline input bytes (it may be
// kept for GetTask long after), while one still waiting keeps them.
TEST_F(TaskGraphTest, FinishedTaskReleasesItsInlineInputs) {
  auto ids = Submit({Spec("a"), Spec("b", {"a"})});
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ready_.size(), 1u);
  std::shared_ptr<TaskRecord> a = ready_[0];
  EXPECT_EQ(a->inputs[0].data.size(), 4u);
  graph_->Finish(a.get(), absl::OkStatus());
  EXPECT_TRUE(a->inputs[0].data.empty());
  ASSERT_EQ(ready_.size(), 2u);
  EXPECT_EQ(ready_[1]->inputs[0].data.size(), 4u) << "b has not run yet";
}

TEST_F(TaskGraphTest, FailureRunsDownTheChainAndGivesAdmissionsBack) {
  auto ids = Submit({Spec("a"), Spec("b", {"a"}), Spec("c", {"b"})});
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(admitted_, 3);
  graph_->Fail(ready_[0], absl::InternalError("boom"));
  EXPECT_EQ(StateOf((*ids)[0]), TaskState::kFailed);
  auto c = graph_->Get((*ids)[2], false);
  EXPECT_EQ(c->state, TaskState::kFailed);
  EXPECT_EQ(c->status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(admitted_, 0);  // none of them ever got a job
}

TEST_F(TaskGraphTest, WaitingForDependenciesTimesOutAtTheDeadline) {
  TaskSpec b = Spec("b", {"a"});
  b.timeout = absl::Seconds(1);
  auto ids = Submit({Spec("a"), b});
  ASSERT_TRUE(ids.ok());
  Advance(absl::Seconds(1));
  EXPECT_EQ(StateOf((*ids)[1]), TaskState::kTimedOut);
}

TEST_F(TaskGraphTest, WaitIsAnsweredOnceAtTheEndAtItsDeadlineOrWhenCancelled) {
  auto ids = Submit({Spec("a"), Spec("b", {"a"}), Spec("c", {"a"})});
  ASSERT_TRUE(ids.ok());
  std::vector<std::string> answers;
  auto record = [&](std::string name) {
    return [&answers, name](absl::StatusOr<TaskInfo> info) {
      answers.push_back(name + ":" + (info.ok() ? std::string(TaskStateName(info->state))
                                                : std::string(info.status().message())));
    };
  };
  ASSERT_TRUE(graph_->Wait((*ids)[0], absl::InfiniteFuture(), record("end")).ok());
  ASSERT_TRUE(graph_->Wait((*ids)[1], clock_.Now() + absl::Seconds(1), record("deadline")).ok());
  auto cancelled = graph_->Wait((*ids)[2], absl::InfiniteFuture(), record("cancel"));
  ASSERT_TRUE(cancelled.ok());
  graph_->CancelWait(*cancelled);
  Advance(absl::Seconds(1));
  graph_->Finish(ready_[0].get(), absl::OkStatus());
  EXPECT_EQ(answers, (std::vector<std::string>{"cancel:wait cancelled", "deadline:WAITING_DEPS",
                                               "end:SUCCEEDED"}));
  EXPECT_EQ(graph_->Wait(TaskId{}, absl::InfiniteFuture(), record("x")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TaskGraphTest, WatchersSeeEveryStateChange) {
  auto watcher = graph_->Watch(WatchOptions{}, [] {});
  ASSERT_NE(watcher, nullptr);
  auto ids = Submit({Spec("a")});
  ASSERT_TRUE(ids.ok());
  graph_->Finish(ready_[0].get(), absl::OkStatus());
  std::vector<TaskState> states;
  TaskEvent e;
  while (watcher->Next(&e)) states.push_back(e.state);
  EXPECT_EQ(states, (std::vector<TaskState>{TaskState::kPending, TaskState::kSucceeded}));
  graph_->Unwatch(watcher);
}

TEST_F(TaskGraphTest, CancelEndsATaskAndFailsItsDependents) {
  auto ids = Submit({Spec("a"), Spec("b", {"a"})});
  ASSERT_TRUE(ids.ok());
  auto info = graph_->Cancel((*ids)[0]);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, TaskState::kCancelled);
  EXPECT_EQ(StateOf((*ids)[1]), TaskState::kFailed);
  EXPECT_EQ(graph_->Cancel((*ids)[0]).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace inferd
