// The scheduler engine on host devices: queueing, priorities and aging,
// queue bounds, placement, retries, health, drain, migration, timeouts,
// metrics and samples. (Batching is in scheduler_batching_test.cc; task
// DAGs, cancellation, waits and watches in scheduler_tasks_test.cc.)
#include "core/sched/scheduler.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/sched/scheduler_fixture.h"

namespace inferd {
namespace {

using ::testing::ElementsAre;
using testing::Gate;
using ::testing::HasSubstr;
using testing::Doubled;
using testing::TestCall;

class SchedulerTest : public testing::SchedulerFixture {};

TEST_F(SchedulerTest, RunsModelInferRequestsToCompletion) {
  Build(2, /*inline_streams=*/true);
  std::vector<std::unique_ptr<TestCall>> calls;
  for (int i = 0; i < 6; ++i) {
    calls.push_back(std::make_unique<TestCall>(model_, 2, 3, 10.0f * i));
    sched_->Submit(calls.back()->request(), calls.back().get());
  }
  for (auto& c : calls) {
    ASSERT_TRUE(c->Wait().ok());
    EXPECT_EQ(c->output(), Doubled(c->input()));
    EXPECT_EQ(c->completions(), 1);
  }
  SchedulerStats stats = sched_->GetStats();
  EXPECT_EQ(stats.completed[static_cast<int>(Outcome::kSucceeded)], 6u);
  EXPECT_EQ(stats.devices[0].completed + stats.devices[1].completed, 6u);
  EXPECT_EQ(stats.devices[0].completed, 3u);  // round robin
}

// Verifies strict priority order: with one slot busy, queued work runs
// CRITICAL, HIGH, NORMAL, LOW, BACKGROUND, FIFO within a priority.
TEST_F(SchedulerTest, StrictPriorityOrderUnderContention) {
  SchedulerOptions o = DefaultOptions();
  o.aging_interval = absl::ZeroDuration();
  Build(1, /*inline_streams=*/false, o);
  auto gate = NewGate();
  model_->SetGate(gate);
  TestCall blocker(model_, 1, 1, 0, Priority::kBackground, 100);
  sched_->Submit(blocker.request(), &blocker);
  model_->SetGate(nullptr);
  const std::vector<std::pair<Priority, double>> order = {
      {Priority::kLow, 1},    {Priority::kBackground, 2}, {Priority::kHigh, 3},
      {Priority::kNormal, 4}, {Priority::kCritical, 5},   {Priority::kHigh, 6},
      {Priority::kLow, 7}};
  std::vector<std::unique_ptr<TestCall>> calls;
  for (const auto& [p, tag] : order) {
    calls.push_back(std::make_unique<TestCall>(model_, 1, 1, 0, p, tag));
    sched_->Submit(calls.back()->request(), calls.back().get());
  }
  SchedulerStats stats = sched_->GetStats();
  EXPECT_EQ(stats.queued, 7);
  EXPECT_EQ(stats.queued_by_priority[static_cast<int>(Priority::kHigh)], 2);
  EXPECT_EQ(stats.running, 1);
  gate->Open();
  ASSERT_TRUE(blocker.Wait().ok());
  for (auto& c : calls) ASSERT_TRUE(c->Wait().ok());
  EXPECT_THAT(model_->tags(), ElementsAre(100, 5, 3, 6, 4, 1, 7, 2));
}

class AgingTest : public testing::SchedulerFixture, public ::testing::WithParamInterface<bool> {};

// Verifies aging: a BACKGROUND request that waited 5 aging intervals runs
// before a NORMAL one submitted later; without aging it runs last.
TEST_P(AgingTest, BackgroundWorkIsNotStarved) {
  const bool aging = GetParam();
  SchedulerOptions o = DefaultOptions();
  o.aging_interval = aging ? absl::Seconds(1) : absl::ZeroDuration();
  Build(1, /*inline_streams=*/false, o);
  auto gate = NewGate();
  model_->SetGate(gate);
  TestCall blocker(model_, 1, 1, 0, Priority::kCritical, 100);
  sched_->Submit(blocker.request(), &blocker);
  model_->SetGate(nullptr);
  TestCall background(model_, 1, 1, 0, Priority::kBackground, 1);
  sched_->Submit(background.request(), &background);
  clock_.Advance(absl::Seconds(5));
  TestCall normal(model_, 1, 1, 0, Priority::kNormal, 2);
  sched_->Submit(normal.request(), &normal);
  gate->Open();
  ASSERT_TRUE(background.Wait().ok());
  ASSERT_TRUE(normal.Wait().ok());
  if (aging) {
    EXPECT_THAT(model_->tags(), ElementsAre(100, 1, 2));
  } else {
    EXPECT_THAT(model_->tags(), ElementsAre(100, 2, 1));
  }
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutAging, AgingTest, ::testing::Bool());

TEST_F(SchedulerTest, QueueDepthBoundRejectsWithResourceExhausted) {
  SchedulerOptions o = DefaultOptions();
  o.max_queue_depth = 2;
  Build(1, /*inline_streams=*/false, o);
  TestCall blocker(model_, 1, 1, 0);
  auto gate = HoldSlot(&blocker);
  TestCall a(model_, 1, 1, 0), b(model_, 1, 1, 0), c(model_, 1, 1, 0);
  TestCall high(model_, 1, 1, 0, Priority::kHigh);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);
  sched_->Submit(c.request(), &c);
  ASSERT_TRUE(c.done());
  absl::Status rejected = c.Wait();
  EXPECT_EQ(rejected.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(rejected.message(), HasSubstr("scheduler.max_queue_depth"));
  EXPECT_THAT(rejected.message(), HasSubstr("NORMAL"));
  sched_->Submit(high.request(), &high);  // other priorities have their own bound
  EXPECT_FALSE(high.done());
  EXPECT_EQ(sched_->GetStats().rejected, 1u);
  EXPECT_EQ(Metric("inferd_scheduler_rejected_total", {{"priority", "normal"}}), 1.0);
  sched_->RunTimers();  // samples the gauges
  EXPECT_EQ(Metric("inferd_scheduler_queue_length", {{"priority", "normal"}}), 2.0);
  EXPECT_EQ(Metric("inferd_scheduler_queue_length", {{"priority", "high"}}), 1.0);
  EXPECT_EQ(Metric("inferd_scheduler_running_tasks", {{"device", "0"}}), 1.0);
  gate->Open();
  for (TestCall* t : {&blocker, &a, &b, &high}) EXPECT_TRUE(t->Wait().ok());
}

TEST_F(SchedulerTest, MemoryAwarePlacesOnTheDeviceWithRoom) {
  SchedulerOptions o = DefaultOptions();
  o.strategy = PlacementStrategy::kMemoryAware;
  Build(2, /*inline_streams=*/true, o, false, {16u << 20, 256u << 20});
  TaskSpec spec = Spec("test", 1, 4, 0);
  spec.memory_requirement_bytes = 100u << 20;
  TaskInfo info = WaitFor(Submit(spec));
  EXPECT_EQ(info.state, TaskState::kSucceeded);
  EXPECT_EQ(info.device, 1);
  TaskSpec too_big = Spec("test", 1, 4, 0);
  too_big.memory_requirement_bytes = 1ull << 30;
  info = WaitFor(Submit(too_big));
  EXPECT_EQ(info.state, TaskState::kFailed);
  EXPECT_EQ(info.status.code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(SchedulerTest, LeastLoadedSpreadsQueuedWork) {
  SchedulerOptions o = DefaultOptions();
  o.strategy = PlacementStrategy::kLeastLoaded;
  Build(3, /*inline_streams=*/false, o);
  auto gate = NewGate();
  model_->SetGate(gate);
  std::vector<std::unique_ptr<TestCall>> calls;
  for (int i = 0; i < 6; ++i) {
    calls.push_back(std::make_unique<TestCall>(model_, 1, 1, 0));
    sched_->Submit(calls.back()->request(), calls.back().get());
  }
  SchedulerStats stats = sched_->GetStats();
  for (const auto& d : stats.devices) EXPECT_EQ(d.queued + d.running, 2) << d.device;
  gate->Open();
  for (auto& c : calls) EXPECT_TRUE(c->Wait().ok());
}

// Verifies that a device failure is retried after the backoff on another
// device, and that the retry is counted.
TEST_F(SchedulerTest, RetryMovesToAnotherDevice) {
  SchedulerOptions o = DefaultOptions();
  o.retry_backoff = absl::Milliseconds(10);
  Build(2, /*inline_streams=*/true, o);
  model_->FailOn(0);
  // From a thread of its own: round robin starts at device 0 there (the
  // position is per submitting thread, and this one's earlier tests moved it).
  TaskId id;
  std::thread([&] { id = Submit(Spec("test", 1, 2, 1)); }).join();
  EXPECT_EQ(model_->failures(), 1);
  EXPECT_FALSE(IsTerminal(StateOf(id)));  // waiting out the backoff
  Advance(absl::Milliseconds(5));
  EXPECT_FALSE(IsTerminal(StateOf(id)));
  Advance(absl::Milliseconds(10));
  TaskInfo info = WaitFor(id);
  EXPECT_EQ(info.state, TaskState::kSucceeded);
  EXPECT_EQ(info.attempts, 2);
  EXPECT_EQ(info.device, 1);
  EXPECT_EQ(Floats(info.outputs[0].data), (std::vector<float>{2, 4}));
  EXPECT_EQ(sched_->GetStats().retries, 1u);
  EXPECT_EQ(Metric("inferd_scheduler_retries_total"), 1.0);
}

TEST_F(SchedulerTest, NonRetryableErrorsFailAtOnce) {
  Build(2, /*inline_streams=*/true);
  model_->FailAlways(true);
  TaskInfo info = WaitFor(Submit(Spec("test", 1, 2, 1)));
  EXPECT_EQ(info.state, TaskState::kFailed);
  EXPECT_EQ(info.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(info.attempts, 1);
  EXPECT_EQ(sched_->GetStats().retries, 0u);
}

TEST_F(SchedulerTest, RetriesStopAfterTheBudget) {
  SchedulerOptions o = DefaultOptions();
  o.default_max_retries = 1;
  o.unhealthy_threshold = 100;
  Build(2, /*inline_streams=*/true, o);
  model_->FailOn(0);
  model_->FailOn(1);
  const TaskId id = Submit(Spec("test", 1, 2, 1));
  Advance(absl::Seconds(1));
  TaskInfo info = WaitFor(id);
  EXPECT_EQ(info.state, TaskState::kFailed);
  EXPECT_EQ(info.status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(info.attempts, 2);
}

// Verifies unhealthy marking: consecutive failures take the device out of
// placement (metric, callback, stats), and a probe re-admits it.
TEST_F(SchedulerTest, FailingDeviceIsMarkedUnhealthyAndProbedBack) {
  SchedulerOptions o = DefaultOptions();
  o.unhealthy_threshold = 2;
  o.unhealthy_probe_interval = absl::Seconds(30);
  std::vector<std::pair<int, bool>> health;
  o.on_device_health = [&](int device, bool healthy, const std::string&) {
    health.emplace_back(device, healthy);
  };
  Build(2, /*inline_streams=*/true, o);
  model_->FailOn(0);
  std::vector<TaskId> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(Submit(Spec("test", 1, 1, 0)));
    Advance(absl::Milliseconds(100));  // retries run
  }
  for (const TaskId& id : ids) EXPECT_EQ(WaitFor(id).state, TaskState::kSucceeded);
  EXPECT_EQ(model_->failures(), 2);
  SchedulerStats stats = sched_->GetStats();
  EXPECT_FALSE(stats.devices[0].healthy);
  EXPECT_TRUE(stats.devices[1].healthy);
  EXPECT_EQ(stats.devices[0].failures, 2u);
  EXPECT_EQ(Metric("inferd_scheduler_device_healthy", {{"device", "0"}}), 0.0);
  EXPECT_THAT(health, ElementsAre(std::make_pair(0, false)));
  // Nothing new is placed on the unhealthy device.
  TaskInfo later = WaitFor(Submit(Spec("test", 1, 1, 0)));
  EXPECT_EQ(later.device, 1);
  EXPECT_EQ(later.attempts, 1);

  model_->HealDevice(0);
  Advance(absl::Seconds(31));  // the probe runs
  stats = sched_->GetStats();
  EXPECT_TRUE(stats.devices[0].healthy);
  EXPECT_EQ(Metric("inferd_scheduler_device_healthy", {{"device", "0"}}), 1.0);
  EXPECT_THAT(health, ElementsAre(std::make_pair(0, false), std::make_pair(0, true)));
}

TEST_F(SchedulerTest, OperatorCanMarkDevicesUnhealthyAndBack) {
  Build(2, /*inline_streams=*/true);
  ASSERT_TRUE(sched_->SetDeviceHealthy(0, false).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(WaitFor(Submit(Spec("test", 1, 1, 0))).device, 1);
  ASSERT_TRUE(sched_->SetDeviceHealthy(0, true).ok());
  EXPECT_EQ(sched_->SetDeviceHealthy(9, true).code(), absl::StatusCode::kNotFound);
}

// Verifies the scaler's drain hook: a deactivated device gets no new work,
// its queued work moves, and work pinned to it fails with UNAVAILABLE.
TEST_F(SchedulerTest, DeactivatedDeviceDrainsItsQueue) {
  Build(2, /*inline_streams=*/false);
  auto gate = NewGate();
  model_->SetGate(gate);
  TaskSpec b0 = Spec("test", 1, 1, 0);
  b0.device = 0;
  TaskSpec b1 = Spec("test", 1, 1, 0);
  b1.device = 1;
  const TaskId blocker0 = Submit(b0), blocker1 = Submit(b1);
  model_->SetGate(nullptr);
  std::vector<TaskId> free_tasks;
  for (int i = 0; i < 4; ++i) free_tasks.push_back(Submit(Spec("test", 1, 1, 0)));
  TaskSpec pinned = Spec("test", 1, 1, 0);
  pinned.device = 0;
  const TaskId pinned_id = Submit(pinned);
  SchedulerStats stats = sched_->GetStats();
  EXPECT_EQ(stats.devices[0].queued, 3);
  EXPECT_EQ(stats.devices[1].queued, 2);

  ASSERT_TRUE(sched_->SetDeviceActive(0, false).ok());
  stats = sched_->GetStats();
  EXPECT_EQ(stats.devices[0].queued, 0);
  EXPECT_EQ(stats.devices[1].queued, 4);
  EXPECT_FALSE(stats.devices[0].active);
  TaskInfo failed = WaitFor(pinned_id);
  EXPECT_EQ(failed.state, TaskState::kFailed);
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kUnavailable);

  gate->Open();
  for (const TaskId& id : free_tasks) EXPECT_EQ(WaitFor(id).device, 1);
  EXPECT_EQ(WaitFor(blocker0).state, TaskState::kSucceeded);  // running work finished
  EXPECT_EQ(WaitFor(blocker1).state, TaskState::kSucceeded);
  EXPECT_EQ(WaitFor(Submit(Spec("test", 1, 1, 0))).device, 1);
  ASSERT_TRUE(sched_->SetDeviceActive(0, true).ok());
  EXPECT_EQ(sched_->SetDeviceActive(5, true).code(), absl::StatusCode::kNotFound);
}

// Verifies migration: an idle device steals queued work from a busy one.
TEST_F(SchedulerTest, IdleDeviceStealsQueuedWorkWhenMigrationIsOn) {
  SchedulerOptions o = DefaultOptions();
  o.enable_migration = true;
  Build(2, /*inline_streams=*/false, o);
  auto gate0 = NewGate(), gate1 = NewGate();
  model_->SetGate(gate0, 0);
  model_->SetGate(gate1, 1);
  TaskSpec b0 = Spec("test", 1, 1, 0);
  b0.device = 0;
  TaskSpec b1 = Spec("test", 1, 1, 0);
  b1.device = 1;
  const TaskId blocker0 = Submit(b0);
  Submit(b1);
  model_->SetGate(nullptr, 0);
  model_->SetGate(nullptr, 1);
  std::vector<TaskId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Submit(Spec("test", 1, 1, 0)));
  EXPECT_EQ(sched_->GetStats().devices[0].queued, 2);
  gate1->Open();
  for (const TaskId& id : ids) EXPECT_EQ(WaitFor(id).device, 1);
  EXPECT_FALSE(IsTerminal(StateOf(blocker0)));
  gate0->Open();
  EXPECT_EQ(WaitFor(blocker0).device, 0);
}

TEST_F(SchedulerTest, TimeoutsWhileQueuedAndWhileRunning) {
  Build(1, /*inline_streams=*/false);
  auto gate = NewGate();
  model_->SetGate(gate);
  TaskSpec running = Spec("test", 1, 1, 0);
  running.timeout = absl::Seconds(5);
  const TaskId r = Submit(running);
  model_->SetGate(nullptr);
  TaskSpec queued = Spec("test", 1, 1, 0);
  queued.timeout = absl::Seconds(1);
  const TaskId q = Submit(queued);
  Advance(absl::Milliseconds(900));
  EXPECT_EQ(StateOf(q), TaskState::kQueued);
  Advance(absl::Milliseconds(200));
  TaskInfo qi = WaitFor(q);
  EXPECT_EQ(qi.state, TaskState::kTimedOut);
  EXPECT_EQ(qi.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(qi.status.message(), HasSubstr("queued"));
  EXPECT_EQ(StateOf(r), TaskState::kRunning);
  Advance(absl::Seconds(4));
  TaskInfo ri = WaitFor(r);
  EXPECT_EQ(ri.state, TaskState::kTimedOut);
  EXPECT_THAT(ri.status.message(), HasSubstr("running"));
  gate->Open();
  sched_->Shutdown();  // the device work finished; the task stays TIMED_OUT
  EXPECT_EQ(StateOf(r), TaskState::kTimedOut);
  EXPECT_EQ(sched_->GetStats().completed[static_cast<int>(Outcome::kTimedOut)], 2u);
}

TEST_F(SchedulerTest, ModelInferRequestsTimeOutWithDeadlineExceeded) {
  SchedulerOptions o = DefaultOptions();
  o.default_timeout = absl::Seconds(1);
  Build(1, /*inline_streams=*/false, o);
  TestCall blocker(model_, 1, 1, 0);
  auto gate = HoldSlot(&blocker);
  TestCall queued(model_, 1, 1, 0);
  sched_->Submit(queued.request(), &queued);
  Advance(absl::Seconds(2));
  EXPECT_EQ(queued.Wait().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(blocker.done());  // its device work still holds the output buffer
  gate->Open();
  EXPECT_EQ(blocker.Wait().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Metric("inferd_scheduler_tasks_completed_total",
                   {{"model", "test"}, {"priority", "normal"}, {"outcome", "timed_out"}}),
            2.0);
}

// Verifies dynamic batching: requests merge into one execution within the
// queue delay and each responder gets exactly its own rows back.
TEST_F(SchedulerTest, ShutdownFailsQueuedWorkWithUnavailable) {
  Build(1, /*inline_streams=*/false);
  TestCall blocker(model_, 1, 1, 0);
  auto gate = HoldSlot(&blocker);
  TestCall queued(model_, 1, 1, 0);
  sched_->Submit(queued.request(), &queued);
  std::thread shutdown([&] { sched_->Shutdown(); });
  EXPECT_EQ(queued.Wait().code(), absl::StatusCode::kUnavailable);
  gate->Open();
  shutdown.join();
  EXPECT_TRUE(blocker.Wait().ok());
  TestCall late(model_, 1, 1, 0);
  sched_->Submit(late.request(), &late);
  EXPECT_EQ(late.Wait().code(), absl::StatusCode::kUnavailable);
}

TEST_F(SchedulerTest, LoadSampleReportsQueueLengthAndThroughput) {
  SchedulerOptions o = DefaultOptions();
  std::vector<SchedulerLoadSample> samples;
  o.on_load_sample = [&](const SchedulerLoadSample& s) { samples.push_back(s); };
  o.sample_interval = absl::Seconds(1);
  Build(1, /*inline_streams=*/true, o);
  sched_->RunTimers();  // first sample at start
  std::vector<std::unique_ptr<TestCall>> calls;
  for (int i = 0; i < 5; ++i) {
    calls.push_back(std::make_unique<TestCall>(model_, 1, 1, 0));
    sched_->Submit(calls.back()->request(), calls.back().get());
  }
  Advance(absl::Seconds(1));
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_DOUBLE_EQ(samples[1].throughput_tasks_per_second, 5.0);
  EXPECT_DOUBLE_EQ(samples[1].queue_length, 0.0);
}

TEST_F(SchedulerTest, ExportsTheDocumentedMetrics) {
  Build(2, /*inline_streams=*/true);
  TestCall call(model_, 1, 1, 0, Priority::kHigh);
  sched_->Submit(call.request(), &call);
  ASSERT_TRUE(call.Wait().ok());
  EXPECT_EQ(Metric("inferd_scheduler_tasks_completed_total",
                   {{"model", "test"}, {"priority", "high"}, {"outcome", "succeeded"}}),
            1.0);
  // Queue wait by priority, execution by model: neither multiplies by the other.
  EXPECT_EQ(Metric("inferd_scheduler_queue_duration_seconds", {{"priority", "high"}}), 1.0);
  EXPECT_EQ(Metric("inferd_scheduler_queue_duration_seconds", {{"model", "test"}}), std::nullopt);
  EXPECT_EQ(Metric("inferd_scheduler_execution_duration_seconds", {{"model", "test"}}), 1.0);
  EXPECT_EQ(Metric("inferd_scheduler_execution_duration_seconds", {{"priority", "high"}}),
            std::nullopt);
  // Outcomes that never happened have no series yet.
  EXPECT_EQ(
      Metric("inferd_scheduler_tasks_completed_total", {{"model", "test"}, {"outcome", "failed"}}),
      std::nullopt);
  EXPECT_EQ(Metric("inferd_scheduler_queue_length", {{"priority", "background"}}), 0.0);
  EXPECT_EQ(Metric("inferd_scheduler_running_tasks", {{"device", "1"}}), 0.0);
  EXPECT_EQ(Metric("inferd_scheduler_device_healthy", {{"device", "1"}}), 1.0);
  EXPECT_EQ(Metric("inferd_scheduler_retries_total"), 0.0);
}

TEST_F(SchedulerTest, DurationHistogramsHaveThirteenBuckets) {
  Build(1, /*inline_streams=*/true);
  TestCall call(model_, 1, 1, 0);
  sched_->Submit(call.request(), &call);
  ASSERT_TRUE(call.Wait().ok());
  int checked = 0;
  for (const auto& family : registry_.Collect()) {
    if (family.name != "inferd_scheduler_queue_duration_seconds" &&
        family.name != "inferd_scheduler_execution_duration_seconds") {
      continue;
    }
    for (const auto& m : family.metric) {
      ASSERT_EQ(m.histogram.bucket.size(), 14u) << family.name;  // 13 bounds and +Inf
      EXPECT_DOUBLE_EQ(m.histogram.bucket.front().upper_bound, 50e-6);
      EXPECT_DOUBLE_EQ(m.histogram.bucket[12].upper_bound, 30.0);
      ++checked;
    }
  }
  EXPECT_EQ(checked, kNumPriorities + 1);  // one per priority, one for the model
}

TEST_F(SchedulerTest, PendingRequestsCountQueuedAndRunning) {
  Build(1, /*inline_streams=*/false);
  TestCall blocker(model_, 1, 1, 0);
  auto gate = HoldSlot(&blocker);
  TestCall queued(model_, 1, 1, 0);
  sched_->Submit(queued.request(), &queued);
  EXPECT_EQ(model_->statistics().pending(), 2);  // one running, one queued
  gate->Open();
  ASSERT_TRUE(blocker.Wait().ok());
  ASSERT_TRUE(queued.Wait().ok());
  EXPECT_EQ(model_->statistics().pending(), 0);
  TaskInfo task = WaitFor(Submit(Spec("test", 1, 1, 0)));
  EXPECT_EQ(task.state, TaskState::kSucceeded);
  EXPECT_EQ(model_->statistics().pending(), 0);
}

TEST_F(SchedulerTest, AnUnloadedModelsSeriesGoOnceNoJobHoldsThem) {
  Build(1, /*inline_streams=*/false);
  TestCall blocker(model_, 1, 1, 0);
  auto gate = HoldSlot(&blocker);
  ASSERT_TRUE(models_.Remove("test").ok());
  Advance(absl::Seconds(2));
  // The running request still holds them.
  EXPECT_EQ(Metric("inferd_scheduler_execution_duration_seconds", {{"model", "test"}}), 0.0);
  gate->Open();
  ASSERT_TRUE(blocker.Wait().ok());
  EXPECT_EQ(Metric("inferd_scheduler_execution_duration_seconds", {{"model", "test"}}), 1.0);
  EXPECT_EQ(Metric("inferd_scheduler_tasks_completed_total", {{"model", "test"}}), 1.0);
  Advance(absl::Seconds(2));
  EXPECT_EQ(Metric("inferd_scheduler_execution_duration_seconds", {{"model", "test"}}),
            std::nullopt);
  EXPECT_EQ(Metric("inferd_scheduler_batch_size", {{"model", "test"}}), std::nullopt);
  EXPECT_EQ(Metric("inferd_scheduler_tasks_completed_total", {{"model", "test"}}), std::nullopt);
  // A loaded model keeps its series; one loaded again gets fresh ones.
  TestCall other(batch_model_, 1, 1, 0);
  sched_->Submit(other.request(), &other);
  Advance(absl::Milliseconds(5));  // the batch's delay
  ASSERT_TRUE(other.Wait().ok());
  Advance(absl::Seconds(2));
  EXPECT_EQ(Metric("inferd_scheduler_execution_duration_seconds", {{"model", "batched"}}), 1.0);
  models_.Add(model_);
  TestCall again(model_, 1, 1, 0);
  sched_->Submit(again.request(), &again);
  ASSERT_TRUE(again.Wait().ok());
  Advance(absl::Seconds(2));
  EXPECT_EQ(Metric("inferd_scheduler_execution_duration_seconds", {{"model", "test"}}), 1.0);
}

TEST_F(SchedulerTest, CreateRejectsBadOptions) {
  FakeClock clock;
  prometheus::Registry registry;
  ModelRegistry models;
  auto allocator = NewRawDeviceAllocator();
  HostDevice device(HostDeviceOptions{});
  SchedulerOptions o = DefaultOptions();
  EXPECT_EQ(
      Scheduler::Create(o, {}, allocator.get(), &models, nullptr, &clock, registry).status().code(),
      absl::StatusCode::kInvalidArgument);
  o.max_queue_depth = 0;
  absl::StatusOr<std::unique_ptr<Scheduler>> bad =
      Scheduler::Create(o, {&device}, allocator.get(), &models, nullptr, &clock, registry);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("scheduler.max_queue_depth"));
}

// A lone job on an idle device may be completed on the dispatching thread
// (InlineCompletionScope); one that starts beside another may not. (Last in
// the file: its submissions move the round-robin position the tests above
// expect.)
TEST_F(SchedulerTest, OnlyALoneJobMayCompleteInline) {
  SchedulerOptions o = DefaultOptions();
  o.max_tasks_per_device = 2;
  Build(1, /*inline_streams=*/false, o);
  TestCall lone(model_, 1, 1, 0);
  sched_->Submit(lone.request(), &lone);
  ASSERT_TRUE(lone.Wait().ok());
  EXPECT_TRUE(lone.inline_completion());
  TestCall blocker(model_, 1, 1, 0);
  auto gate = HoldSlot(&blocker);
  TestCall beside(model_, 1, 1, 0);
  sched_->Submit(beside.request(), &beside);
  ASSERT_TRUE(beside.Wait().ok());
  EXPECT_FALSE(beside.inline_completion());
  gate->Open();
  ASSERT_TRUE(blocker.Wait().ok());
  EXPECT_FALSE(InlineCompletionScope::Active());
}

}  // namespace
}  // namespace inferd
