// Tasks on the scheduler engine: dependency DAGs and failure propagation,
// validation and cycle rejection, cancellation in every state, waits,
// watches, listing, retention, tensor-handle inputs and device outputs.
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/sched/scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/sched/scheduler_fixture.h"

namespace inferd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SchedulerTasksTest : public testing::SchedulerFixture {
 protected:
  static TaskSpec FromOutput(const std::string& model, const std::string& key,
                             const std::string& dependency, const std::string& input = "INPUT0") {
    TaskSpec spec;
    spec.key = key;
    spec.model_name = model;
    TaskInput in;
    in.name = input;
    in.source = TaskInput::Source::kTaskOutput;
    in.dependency = dependency;
    in.output_name = "OUTPUT0";
    spec.inputs.push_back(std::move(in));
    return spec;
  }
};

// Verifies a diamond DAG chained by outputs: root -> (b, c) -> d, where d
// adds b and c; dependents wait while the root runs and read its outputs
// without a client round trip.
TEST_F(SchedulerTasksTest, DiamondDagChainsOutputs) {
  Build(2, /*inline_streams=*/false);
  auto gate = NewGate();
  model_->SetGate(gate);
  TaskSpec root = Spec("test", 1, 4, 1);  // 2x
  root.key = "root";
  TaskSpec b = FromOutput("scale", "b", "root");  // 3 * root
  b.params.has_factor = true;
  b.params.factor = 3;
  TaskSpec c = FromOutput("identity", "c", "root");
  TaskSpec d = FromOutput("add", "d", "b");
  TaskInput second;
  second.name = "INPUT1";
  second.source = TaskInput::Source::kTaskOutput;
  second.dependency = "c";
  second.output_name = "OUTPUT0";
  d.inputs.push_back(second);
  // Submitted out of order: dependencies within one call go by key.
  absl::StatusOr<std::vector<TaskId>> ids = sched_->SubmitTasks({d, c, root, b});
  ASSERT_TRUE(ids.ok()) << ids.status();
  const TaskId d_id = (*ids)[0], c_id = (*ids)[1], root_id = (*ids)[2], b_id = (*ids)[3];
  EXPECT_EQ(StateOf(root_id), TaskState::kRunning);
  for (const TaskId& id : {b_id, c_id, d_id}) EXPECT_EQ(StateOf(id), TaskState::kWaitingDeps);
  EXPECT_EQ(sched_->GetStats().waiting_deps, 3);
  gate->Open();
  TaskInfo info = WaitFor(d_id);
  ASSERT_EQ(info.state, TaskState::kSucceeded) << info.status;
  // root = 2x, b = 6x, c = 2x, d = 8x for x = 1, 2, 3, 4.
  EXPECT_EQ(Floats(info.outputs[0].data), (std::vector<float>{8, 16, 24, 32}));
  EXPECT_THAT(info.depends_on, ElementsAre(b_id, c_id));
  EXPECT_EQ(WaitFor(b_id).state, TaskState::kSucceeded);
  EXPECT_EQ(sched_->GetStats().waiting_deps, 0);
}

TEST_F(SchedulerTasksTest, DependentsRunAfterTheirDependencies) {
  Build(1, /*inline_streams=*/true);
  TaskSpec first = Spec("test", 1, 1, 0, Priority::kNormal, 1);
  first.key = "first";
  TaskSpec second = Spec("test", 1, 1, 0, Priority::kCritical, 2);
  second.depends_on = {"first"};
  TaskSpec third = Spec("test", 1, 1, 0, Priority::kCritical, 3);
  third.key = "third";
  second.key = "second";
  third.depends_on = {"second"};
  absl::StatusOr<std::vector<TaskId>> ids = sched_->SubmitTasks({third, second, first});
  ASSERT_TRUE(ids.ok()) << ids.status();
  for (const TaskId& id : *ids) EXPECT_EQ(WaitFor(id).state, TaskState::kSucceeded);
  EXPECT_THAT(model_->tags(), ElementsAre(1, 2, 3));
}

TEST_F(SchedulerTasksTest, FailedDependencyFailsDependentsNamingIt) {
  Build(1, /*inline_streams=*/false);
  auto gate = NewGate();
  model_->SetGate(gate);
  TaskSpec root = Spec("test", 1, 1, 0);
  root.key = "root";
  TaskSpec child = Spec("identity", 1, 1, 0);
  child.key = "child";
  child.depends_on = {"root"};
  TaskSpec grandchild = Spec("identity", 1, 1, 0);
  grandchild.depends_on = {"child"};
  absl::StatusOr<std::vector<TaskId>> ids = sched_->SubmitTasks({root, child, grandchild});
  ASSERT_TRUE(ids.ok()) << ids.status();
  model_->SetGate(nullptr);
  model_->FailAlways(true);
  // The root is executing (gated); cancelling it fails its dependents.
  ASSERT_TRUE(sched_->CancelTask((*ids)[0]).ok());
  gate->Open();
  TaskInfo child_info = WaitFor((*ids)[1]);
  EXPECT_EQ(child_info.state, TaskState::kFailed);
  EXPECT_EQ(child_info.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(child_info.status.message(), HasSubstr(FormatTaskId((*ids)[0])));
  EXPECT_THAT(child_info.status.message(), HasSubstr("CANCELLED"));
  TaskInfo grandchild_info = WaitFor((*ids)[2]);
  EXPECT_EQ(grandchild_info.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(grandchild_info.status.message(), HasSubstr(FormatTaskId((*ids)[1])));

  // A dependency that already failed fails a new dependent at once.
  const TaskId failing = Submit(Spec("test", 1, 1, 0));
  EXPECT_EQ(WaitFor(failing).state, TaskState::kFailed);
  TaskSpec late = Spec("identity", 1, 1, 0);
  late.depends_on = {FormatTaskId(failing)};
  TaskInfo late_info = WaitFor(Submit(late));
  EXPECT_EQ(late_info.state, TaskState::kFailed);
  EXPECT_THAT(late_info.status.message(), HasSubstr(FormatTaskId(failing)));
}

TEST_F(SchedulerTasksTest, CyclesAndUnknownDependenciesAreRejected) {
  Build(1, /*inline_streams=*/true);
  TaskSpec a = Spec("test", 1, 1, 0);
  a.key = "a";
  a.depends_on = {"b"};
  TaskSpec b = Spec("test", 1, 1, 0);
  b.key = "b";
  b.depends_on = {"c"};
  TaskSpec c = Spec("test", 1, 1, 0);
  c.key = "c";
  c.depends_on = {"a"};
  absl::StatusOr<std::vector<TaskId>> cycle = sched_->SubmitTasks({a, b, c});
  ASSERT_FALSE(cycle.ok());
  EXPECT_EQ(cycle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cycle.status().message(), HasSubstr("dependency cycle"));
  EXPECT_THAT(cycle.status().message(), HasSubstr("'a'"));

  TaskSpec self = Spec("test", 1, 1, 0);
  self.key = "self";
  self.depends_on = {"self"};
  absl::StatusOr<TaskId> self_dep = sched_->SubmitTask(self);
  EXPECT_EQ(self_dep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(self_dep.status().message(), HasSubstr("task.depends_on[0]"));
  EXPECT_THAT(self_dep.status().message(), HasSubstr("itself"));

  TaskSpec unknown = Spec("test", 1, 1, 0);
  unknown.depends_on = {FormatTaskId(NewTaskId())};
  absl::StatusOr<TaskId> unknown_dep = sched_->SubmitTask(unknown);
  EXPECT_EQ(unknown_dep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown_dep.status().message(), HasSubstr("unknown task"));

  TaskSpec garbage = Spec("test", 1, 1, 0);
  garbage.depends_on = {"nope"};
  EXPECT_THAT(sched_->SubmitTask(garbage).status().message(),
              HasSubstr("task.depends_on[0]: 'nope' is neither a task id nor the key"));

  // Nothing of the rejected calls was submitted.
  absl::StatusOr<TaskPage> page = sched_->ListTasks({});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->tasks.empty());
}

TEST_F(SchedulerTasksTest, ValidationErrorsNameTheField) {
  Build(1, /*inline_streams=*/true);
  TaskSpec no_model = Spec("nope", 1, 1, 0);
  absl::Status st = sched_->SubmitTask(no_model).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("task.model_name"));

  TaskSpec bad_name = Spec("test", 1, 1, 0);
  bad_name.inputs[0].name = "X";
  EXPECT_THAT(sched_->SubmitTask(bad_name).status().message(),
              HasSubstr("task.inputs[0].name: model 'test' has no input named 'X'"));

  TaskSpec short_data = Spec("test", 2, 2, 0);
  short_data.inputs[0].data.resize(4);
  st = sched_->SubmitTask(short_data).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("task.inputs[0].tensor.data: shape holds 4 FP32 elements"));

  TaskSpec bad_device = Spec("test", 1, 1, 0);
  bad_device.device = 3;
  EXPECT_THAT(sched_->SubmitTask(bad_device).status().message(), HasSubstr("task.device: 3"));

  TaskSpec handle = Spec("test", 1, 1, 0);
  handle.inputs[0].source = TaskInput::Source::kTensor;
  handle.inputs[0].tensor_handle = "t1";
  EXPECT_EQ(sched_->SubmitTask(handle).status().code(), absl::StatusCode::kFailedPrecondition);

  TaskSpec keep = Spec("test", 1, 1, 0);
  keep.keep_outputs_on_device = true;
  EXPECT_THAT(sched_->SubmitTask(keep).status().message(),
              HasSubstr("task.keep_outputs_on_device"));

  TaskSpec bad_output = Spec("test", 1, 1, 0);
  bad_output.requested_outputs = {"OUT"};
  EXPECT_THAT(sched_->SubmitTask(bad_output).status().message(),
              HasSubstr("task.requested_outputs[0]"));

  std::vector<TaskSpec> dup(2, Spec("test", 1, 1, 0));
  dup[0].key = dup[1].key = "k";
  EXPECT_THAT(sched_->SubmitTasks(dup).status().message(), HasSubstr("tasks[1].key"));
}

// Verifies cancellation in each non-terminal state, and of a finished task.
TEST_F(SchedulerTasksTest, CancellationAtEveryState) {
  Build(1, /*inline_streams=*/false);
  auto gate = NewGate();
  model_->SetGate(gate);
  const TaskId running = Submit(Spec("test", 1, 1, 0));
  model_->SetGate(nullptr);
  TaskSpec queued = Spec("test", 1, 1, 0);
  queued.key = "queued";
  TaskSpec waiting = Spec("test", 1, 1, 0);
  waiting.key = "waiting";
  waiting.depends_on = {"queued"};
  TaskSpec after = Spec("test", 1, 1, 0);
  after.depends_on = {"waiting"};
  absl::StatusOr<std::vector<TaskId>> ids = sched_->SubmitTasks({queued, waiting, after});
  ASSERT_TRUE(ids.ok());
  const TaskId queued_id = (*ids)[0], waiting_id = (*ids)[1], after_id = (*ids)[2];
  const TaskId in_batcher = Submit(Spec("batched", 1, 1, 0));
  ASSERT_EQ(StateOf(running), TaskState::kRunning);
  ASSERT_EQ(StateOf(queued_id), TaskState::kQueued);
  ASSERT_EQ(StateOf(waiting_id), TaskState::kWaitingDeps);
  ASSERT_EQ(StateOf(in_batcher), TaskState::kQueued);
  EXPECT_EQ(sched_->GetStats().pending_batch, 1);

  // WAITING_DEPS: its dependent fails, naming it.
  absl::StatusOr<TaskInfo> c = sched_->CancelTask(waiting_id);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state, TaskState::kCancelled);
  TaskInfo after_info = WaitFor(after_id);
  EXPECT_EQ(after_info.state, TaskState::kFailed);
  EXPECT_THAT(after_info.status.message(), HasSubstr(FormatTaskId(waiting_id)));

  // QUEUED, in a device queue and in the batcher.
  EXPECT_EQ(sched_->CancelTask(queued_id)->state, TaskState::kCancelled);
  EXPECT_EQ(sched_->GetStats().devices[0].queued, 0);
  EXPECT_EQ(sched_->CancelTask(in_batcher)->state, TaskState::kCancelled);
  EXPECT_EQ(sched_->GetStats().pending_batch, 0);

  // RUNNING: cancelled at once; the device work's results are dropped.
  EXPECT_EQ(sched_->CancelTask(running)->state, TaskState::kCancelled);
  gate->Open();
  sched_->Shutdown();
  TaskInfo running_info = *sched_->GetTask(running);
  EXPECT_EQ(running_info.state, TaskState::kCancelled);
  EXPECT_TRUE(running_info.outputs.empty());
  EXPECT_THAT(model_->tags(), ElementsAre(0));  // only the running one executed

  // Terminal and unknown.
  absl::Status again = sched_->CancelTask(running).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.message(), HasSubstr("already finished"));
  EXPECT_EQ(sched_->CancelTask(NewTaskId()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sched_->GetStats().completed[static_cast<int>(Outcome::kCancelled)], 3u);
}

TEST_F(SchedulerTasksTest, WaitAnswersAtTheDeadlineAndCanBeCancelled) {
  Build(1, /*inline_streams=*/false);
  auto gate = NewGate();
  model_->SetGate(gate);
  const TaskId id = Submit(Spec("test", 1, 1, 0));
  std::optional<absl::StatusOr<TaskInfo>> got;
  ASSERT_TRUE(sched_
                  ->WaitTask(id, clock_.Now() + absl::Seconds(1),
                             [&](absl::StatusOr<TaskInfo> r) { got = std::move(r); })
                  .ok());
  Advance(absl::Milliseconds(500));
  EXPECT_FALSE(got.has_value());
  Advance(absl::Milliseconds(600));
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok());
  EXPECT_EQ((*got)->state, TaskState::kRunning);

  got.reset();
  absl::StatusOr<uint64_t> w = sched_->WaitTask(
      id, absl::InfiniteFuture(), [&](absl::StatusOr<TaskInfo> r) { got = std::move(r); });
  ASSERT_TRUE(w.ok());
  sched_->CancelWait(*w);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), absl::StatusCode::kCancelled);

  gate->Open();
  EXPECT_EQ(WaitFor(id).state, TaskState::kSucceeded);
  EXPECT_EQ(sched_->WaitTask(NewTaskId(), absl::InfiniteFuture(), [](auto) {}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTasksTest, WatchStreamsEachStateInOrder) {
  Build(1, /*inline_streams=*/true);
  int notified = 0;
  auto watcher = sched_->Watch({}, [&] { ++notified; });
  const TaskId id = Submit(Spec("test", 1, 1, 0));
  EXPECT_EQ(WaitFor(id).state, TaskState::kSucceeded);
  std::vector<TaskState> states;
  TaskEvent e;
  while (watcher->Next(&e)) {
    EXPECT_EQ(e.id, id);
    EXPECT_EQ(e.model_name, "test");
    states.push_back(e.state);
  }
  EXPECT_THAT(states, ElementsAre(TaskState::kPending, TaskState::kQueued, TaskState::kRunning,
                                  TaskState::kSucceeded));
  EXPECT_GE(notified, 1);
  EXPECT_FALSE(watcher->overflowed());
  sched_->Unwatch(watcher);
  Submit(Spec("test", 1, 1, 0));
  EXPECT_FALSE(watcher->Next(&e));
}

TEST_F(SchedulerTasksTest, SlowWatcherOverflowsWithoutBlocking) {
  Build(1, /*inline_streams=*/true);
  WatchOptions options;
  options.buffer_events = 3;
  auto watcher = sched_->Watch(options, nullptr);
  WatchOptions filtered;
  auto other = sched_->Watch(filtered, nullptr);
  for (int i = 0; i < 5; ++i) WaitFor(Submit(Spec("test", 1, 1, 0)));
  EXPECT_TRUE(watcher->overflowed());
  TaskEvent e;
  int n = 0;
  while (watcher->Next(&e)) ++n;
  EXPECT_EQ(n, 3);
  EXPECT_FALSE(other->overflowed());  // default buffer: 1024 events
  sched_->Unwatch(watcher);
  sched_->Unwatch(other);
}

TEST_F(SchedulerTasksTest, ListTasksPagesInIdOrderWithFilters) {
  Build(1, /*inline_streams=*/true);
  std::vector<TaskId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(WaitFor(Submit(Spec("test", 1, 1, 0))).id);
  TaskSpec other = Spec("identity", 1, 1, 0);
  other.owner = "alice";
  WaitFor(Submit(other));
  std::vector<TaskId> listed;
  TaskListOptions options;
  options.page_size = 2;
  options.model_name = "test";
  int pages = 0;
  do {
    absl::StatusOr<TaskPage> page = sched_->ListTasks(options);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const TaskInfo& t : page->tasks) listed.push_back(t.id);
    options.page_token = page->next_page_token;
    ++pages;
  } while (!options.page_token.empty());
  EXPECT_EQ(pages, 3);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(listed, ids);
  TaskListOptions by_owner;
  by_owner.owner = "alice";
  EXPECT_EQ(sched_->ListTasks(by_owner)->tasks.size(), 1u);
  TaskListOptions running;
  running.filter_state = true;
  running.state = TaskState::kRunning;
  EXPECT_TRUE(sched_->ListTasks(running)->tasks.empty());
  TaskListOptions bad;
  bad.page_token = "zz";
  EXPECT_EQ(sched_->ListTasks(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SchedulerTasksTest, RetentionEvictsTheOldestFinishedTasks) {
  SchedulerOptions o = DefaultOptions();
  o.max_retained_tasks = 16;  // one per shard
  Build(1, /*inline_streams=*/true, o);
  std::vector<TaskId> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(WaitFor(Submit(Spec("test", 1, 1, 0))).id);
  EXPECT_LE(sched_->GetStats().tasks_retained, 16u);
  EXPECT_TRUE(sched_->GetTask(ids.back()).ok());
  int evicted = 0;
  for (const TaskId& id : ids) evicted += !sched_->GetTask(id).ok();
  EXPECT_GE(evicted, 200 - 16);
}

// Verifies that a finished dependency chain keeps no history alive: once
// its tasks are evicted, only the retained records stay in memory (the
// chain used to hold every link through its dependency edges).
TEST_F(SchedulerTasksTest, EvictedChainKeepsOnlyRetainedRecords) {
  SchedulerOptions o = DefaultOptions();
  o.max_retained_tasks = 16;
  Build(1, /*inline_streams=*/true, o);
  TaskId prev = WaitFor(Submit(Spec("test", 1, 1, 0))).id;
  for (int i = 0; i < 300; ++i) {
    TaskSpec next = Spec("test", 1, 1, 0);
    next.depends_on = {FormatTaskId(prev)};
    TaskInfo info = WaitFor(Submit(next));
    ASSERT_EQ(info.state, TaskState::kSucceeded) << info.status;
    prev = info.id;
  }
  for (int i = 0; i < 100; ++i) WaitFor(Submit(Spec("test", 1, 1, 0)));
  const SchedulerStats stats = sched_->GetStats();
  EXPECT_LE(stats.tasks_retained, 16u);
  EXPECT_EQ(stats.task_records, stats.tasks_retained);
}

// Verifies that a rejected cycle leaves nothing behind: the records it
// built are gone when the call returns (they used to keep each other
// alive, with their inline data).
TEST_F(SchedulerTasksTest, RejectedCycleLeavesNoRecords) {
  Build(1, /*inline_streams=*/true);
  TaskSpec a = Spec("test", 256, 1024, 0);
  a.key = "a";
  a.depends_on = {"b"};
  TaskSpec b = Spec("test", 256, 1024, 0);
  b.key = "b";
  b.depends_on = {"a"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(sched_->SubmitTasks({a, b}).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(sched_->GetStats().task_records, 0u);
}

// Verifies that the message for a long cycle of long keys stays short and
// still names where the cycle starts.
TEST_F(SchedulerTasksTest, LongCycleMessageIsBounded) {
  Build(1, /*inline_streams=*/true);
  constexpr int kTasks = 1000;
  std::vector<TaskSpec> specs;
  for (int i = 0; i < kTasks; ++i) {
    TaskSpec t = Spec("test", 1, 1, 0);
    t.key = absl::StrCat(std::string(200, 'k'), i);
    t.depends_on = {absl::StrCat(std::string(200, 'k'), (i + 1) % kTasks)};
    specs.push_back(std::move(t));
  }
  absl::Status st = sched_->SubmitTasks(std::move(specs)).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("tasks[0].depends_on: dependency cycle"));
  EXPECT_THAT(st.message(), HasSubstr("(1000 tasks)"));
  EXPECT_LT(st.message().size(), 2048u);
  EXPECT_EQ(sched_->GetStats().task_records, 0u);
}

// Verifies that SubmitTasks hands back ids without running the work on the
// caller's thread, even on an idle inline host device (it used to run
// every task before returning: 300 large adds blocked the call for 48 s).
TEST_F(SchedulerTasksTest, SubmitTasksReturnsBeforeItsWorkRuns) {
  SchedulerOptions o = DefaultOptions();
  o.submit_tasks_async = true;
  Build(1, /*inline_streams=*/true, o);
  auto gate = NewGate();
  model_->SetGate(gate);
  absl::Notification returned;
  absl::StatusOr<std::vector<TaskId>> ids;
  std::thread submitter([&] {
    ids = sched_->SubmitTasks({Spec("test", 1, 1, 0), Spec("test", 1, 1, 0)});
    returned.Notify();
  });
  const bool in_time = returned.WaitForNotificationWithTimeout(absl::Seconds(60));
  EXPECT_TRUE(in_time) << "SubmitTasks ran the gated work on the caller's thread";
  gate->Open();
  submitter.join();
  model_->SetGate(nullptr);
  ASSERT_TRUE(ids.ok()) << ids.status();
  for (const TaskId& id : *ids) EXPECT_EQ(WaitFor(id).state, TaskState::kSucceeded);
}

// Verifies that tasks count against their queue's depth from submission
// until they start, waiting ones too, so a call that does not fit is
// refused whole.
TEST_F(SchedulerTasksTest, QueueBoundRefusesACallThatDoesNotFit) {
  SchedulerOptions o = DefaultOptions();
  o.max_queue_depth = 3;
  o.submit_tasks_async = true;
  Build(1, /*inline_streams=*/false, o);
  auto gate = NewGate();
  model_->SetGate(gate);
  TaskSpec a = Spec("test", 1, 1, 0);
  a.key = "a";
  TaskSpec b = Spec("test", 1, 1, 0);
  b.depends_on = {"a"};
  absl::StatusOr<std::vector<TaskId>> first = sched_->SubmitTasks({a, b, b});  // a runs
  ASSERT_TRUE(first.ok()) << first.status();
  absl::Status full =
      sched_->SubmitTasks({Spec("test", 1, 1, 0), Spec("test", 1, 1, 0)}).status();
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("scheduler.max_queue_depth"));
  EXPECT_EQ(sched_->GetStats().rejected, 2u);
  absl::StatusOr<TaskId> fits = sched_->SubmitTask(Spec("test", 1, 1, 0));
  ASSERT_TRUE(fits.ok()) << fits.status();
  gate->Open();
  model_->SetGate(nullptr);
  for (const TaskId& id : *first) EXPECT_EQ(WaitFor(id).state, TaskState::kSucceeded);
  EXPECT_EQ(WaitFor(*fits).state, TaskState::kSucceeded);
  // Counts go back as tasks end: the queue takes three again.
  EXPECT_TRUE(sched_->SubmitTasks({Spec("test", 1, 1, 0), Spec("test", 1, 1, 0),
                                   Spec("test", 1, 1, 0)})
                  .ok());
}

// Verifies the total watcher limit: past it Watch answers null.
TEST_F(SchedulerTasksTest, WatchersAreLimited) {
  SchedulerOptions o = DefaultOptions();
  o.limits.max_watch_streams = 2;
  Build(1, /*inline_streams=*/true, o);
  auto w1 = sched_->Watch({}, nullptr);
  WatchOptions by_model;
  by_model.model_name = "identity";
  auto w2 = sched_->Watch(by_model, nullptr);
  ASSERT_NE(w1, nullptr);
  ASSERT_NE(w2, nullptr);
  EXPECT_EQ(sched_->Watch({}, nullptr), nullptr);
  sched_->Unwatch(w1);
  auto w3 = sched_->Watch({}, nullptr);
  EXPECT_NE(w3, nullptr);
  // The model-filtered watcher sees nothing of other models.
  WaitFor(Submit(Spec("test", 1, 1, 0)));
  TaskEvent e;
  EXPECT_FALSE(w2->Next(&e));
  EXPECT_TRUE(w3->Next(&e));
  sched_->CloseWatchers();
  EXPECT_TRUE(w3->closed());
  sched_->Unwatch(w2);
  sched_->Unwatch(w3);
}

// Verifies device-resident chaining: outputs kept on the device come back
// as handles and feed a dependent by handle; tensor pins are released.
TEST_F(SchedulerTasksTest, OutputsKeptOnDeviceFeedDependentsByHandle) {
  Build(2, /*inline_streams=*/true, DefaultOptions(), /*with_tensors=*/true);
  TaskSpec first = Spec("test", 1, 3, 1);
  first.key = "first";
  first.keep_outputs_on_device = true;
  first.owner = "bob";
  TaskSpec second = FromOutput("test", "second", "first");
  absl::StatusOr<std::vector<TaskId>> ids = sched_->SubmitTasks({first, second});
  ASSERT_TRUE(ids.ok()) << ids.status();
  TaskInfo a = WaitFor((*ids)[0]);
  ASSERT_EQ(a.state, TaskState::kSucceeded) << a.status;
  ASSERT_EQ(a.outputs.size(), 1u);
  EXPECT_TRUE(a.outputs[0].data.empty());
  ASSERT_FALSE(a.outputs[0].tensor_handle.empty());
  EXPECT_EQ(a.outputs[0].device, a.device);
  EXPECT_EQ(tensors_->Get(a.outputs[0].tensor_handle), (std::vector<float>{2, 4, 6}));
  TaskInfo b = WaitFor((*ids)[1]);
  ASSERT_EQ(b.state, TaskState::kSucceeded) << b.status;
  EXPECT_EQ(Floats(b.outputs[0].data), (std::vector<float>{4, 8, 12}));
  EXPECT_EQ(tensors_->pins(), 0);
}

TEST_F(SchedulerTasksTest, TensorHandleInputsRunWhereTheTensorLives) {
  Build(2, /*inline_streams=*/true, DefaultOptions(), /*with_tensors=*/true);
  const std::string handle = tensors_->Put(1, {5, 6});
  TaskSpec spec;
  spec.model_name = "test";
  TaskInput in;
  in.name = "INPUT0";
  in.source = TaskInput::Source::kTensor;
  in.tensor_handle = handle;
  spec.inputs.push_back(in);
  for (int i = 0; i < 3; ++i) {
    TaskInfo info = WaitFor(Submit(spec));
    ASSERT_EQ(info.state, TaskState::kSucceeded) << info.status;
    EXPECT_EQ(info.device, 1);
    EXPECT_EQ(Floats(info.outputs[0].data), (std::vector<float>{10, 12}));
  }
  EXPECT_EQ(tensors_->pins(), 0);
  spec.inputs[0].tensor_handle = "missing";
  absl::Status st = sched_->SubmitTask(spec).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("task.inputs[0].tensor_id"));
}

TEST_F(SchedulerTasksTest, BatchedTasksEachGetTheirOwnRows) {
  Build(1, /*inline_streams=*/true);
  const TaskId a = Submit(Spec("batched", 1, 2, 1));
  const TaskId b = Submit(Spec("batched", 2, 2, 10));
  Advance(absl::Milliseconds(2));
  TaskInfo ai = WaitFor(a), bi = WaitFor(b);
  EXPECT_TRUE(ai.batched);
  EXPECT_EQ(Floats(ai.outputs[0].data), (std::vector<float>{2, 4}));
  EXPECT_EQ(ai.outputs[0].shape, (Shape{1, 2}));
  EXPECT_EQ(Floats(bi.outputs[0].data), (std::vector<float>{20, 22, 24, 26}));
  EXPECT_THAT(batch_model_->rows(), ElementsAre(3));
}

TEST_F(SchedulerTasksTest, TaskWaitingForDependenciesTimesOut) {
  Build(1, /*inline_streams=*/false);
  auto gate = NewGate();
  model_->SetGate(gate);
  TaskSpec root = Spec("test", 1, 1, 0);
  root.key = "root";
  TaskSpec child = Spec("test", 1, 1, 0);
  child.depends_on = {"root"};
  child.timeout = absl::Seconds(2);
  absl::StatusOr<std::vector<TaskId>> ids = sched_->SubmitTasks({root, child});
  ASSERT_TRUE(ids.ok());
  Advance(absl::Seconds(3));
  TaskInfo info = WaitFor((*ids)[1]);
  EXPECT_EQ(info.state, TaskState::kTimedOut);
  EXPECT_THAT(info.status.message(), HasSubstr("dependencies"));
  gate->Open();
  EXPECT_EQ(WaitFor((*ids)[0]).state, TaskState::kSucceeded);
}

}  // namespace
}  // namespace inferd
