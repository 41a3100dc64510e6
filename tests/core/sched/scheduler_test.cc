// The scheduler engine on host devices: queueing, priorities and aging,
// queue bounds, placement, retries, health, drain, migration, timeouts,
// batching, metrics and samples. (Task DAGs, cancellation, waits and
// watches are in scheduler_tasks_test.cc.)
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
using testing::TestCall;

class SchedulerTest : public testing::SchedulerFixture {};

std::vector<float> Doubled(const std::vector<float>& v) {
  std::vector<float> out;
  for (float x : v) out.push_back(2 * x);
  return out;
}

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
TEST_F(SchedulerTest, BatchingMergesRequestsAndSplitsResults) {
  Build(1, /*inline_streams=*/true);
  TestCall a(batch_model_, 1, 3, 0), b(batch_model_, 2, 3, 100), c(batch_model_, 3, 3, 1000);
  // Every member but the last is delivered on its call's own thread
  // (RunOnOwnThread); the last one on the thread that finished the batch.
  for (TestCall* t : {&a, &b, &c}) {
    t->UseOwnThread();
    sched_->Submit(t->request(), t);
  }
  EXPECT_FALSE(a.done());
  EXPECT_EQ(sched_->GetStats().pending_batch, 3);
  Advance(absl::Microseconds(500));
  EXPECT_FALSE(a.done());
  Advance(absl::Microseconds(600));  // past the 1 ms queue delay
  for (TestCall* t : {&a, &b, &c}) {
    ASSERT_TRUE(t->Wait().ok());
    EXPECT_EQ(t->output(), Doubled(t->input()));
    EXPECT_EQ(t->output_desc().shape[0], t->request().inputs[0].desc.shape[0]);
  }
  EXPECT_THAT(batch_model_->rows(), ElementsAre(6));
  EXPECT_TRUE(a.completed_on_own_thread());
  EXPECT_TRUE(b.completed_on_own_thread());
  EXPECT_FALSE(c.completed_on_own_thread());
  SchedulerStats stats = sched_->GetStats();
  EXPECT_EQ(stats.batches, 1u);
  EXPECT_EQ(stats.batched_requests, 3u);
  EXPECT_EQ(Metric("inferd_scheduler_batch_size", {{"model", "batched"}}), 1.0);
}

// Verifies that Shutdown returns only once every member of a finished batch
// has been delivered, also those handed to their calls' own threads.
TEST_F(SchedulerTest, ShutdownWaitsForMembersDeliveredOnTheirOwnThreads) {
  Build(1, /*inline_streams=*/true);
  TestCall a(batch_model_, 1, 3, 0), b(batch_model_, 2, 3, 100);
  auto held = NewGate();
  a.UseOwnThread(held);  // its delivery waits for the gate
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);
  Advance(absl::Milliseconds(2));  // past the queue delay: one batch
  ASSERT_TRUE(b.Wait().ok());
  EXPECT_FALSE(a.done());
  absl::Notification shut_down;
  std::thread shutdown([&] {
    sched_->Shutdown();
    shut_down.Notify();
  });
  absl::SleepFor(absl::Milliseconds(20));  // a chance to return too early
  EXPECT_FALSE(shut_down.HasBeenNotified());
  held->Open();
  shutdown.join();
  ASSERT_TRUE(a.done());
  ASSERT_TRUE(a.Wait().ok());
  EXPECT_EQ(a.output(), Doubled(a.input()));
  EXPECT_TRUE(a.completed_on_own_thread());
  EXPECT_THAT(batch_model_->rows(), ElementsAre(3));
}

TEST_F(SchedulerTest, FullBatchRunsWithoutWaitingAndOthersDoNotMix) {
  Build(1, /*inline_streams=*/true);
  TestCall a(batch_model_, 4, 2, 0), b(batch_model_, 4, 2, 50), odd(batch_model_, 1, 5, 7);
  sched_->Submit(odd.request(), &odd);  // different trailing dims
  sched_->Submit(a.request(), &a);      // flushes `odd` alone
  sched_->Submit(b.request(), &b);      // 8 rows: the maximum
  for (TestCall* t : {&a, &b, &odd}) {
    ASSERT_TRUE(t->Wait().ok());
    EXPECT_EQ(t->output(), Doubled(t->input()));
  }
  EXPECT_THAT(batch_model_->rows(), ElementsAre(1, 8));
}

TEST_F(SchedulerTest, BatchingOffRunsRequestsOneByOne) {
  SchedulerOptions o = DefaultOptions();
  o.default_batching.enabled = false;
  Build(1, /*inline_streams=*/true, o);
  TestCall a(batch_model_, 1, 2, 0), b(batch_model_, 1, 2, 0);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);
  EXPECT_TRUE(a.Wait().ok());
  EXPECT_TRUE(b.Wait().ok());
  EXPECT_THAT(batch_model_->rows(), ElementsAre(1, 1));
}

// Verifies dispatch when idle end to end: on an idle device a lone
// batchable request runs with no clock advance; while the slot is busy the
// next requests wait and run as one batch when it frees.
TEST_F(SchedulerTest, DispatchWhenIdleRunsALoneRequestAtOnceAndBatchesUnderLoad) {
  SchedulerOptions o = DefaultOptions();
  o.default_batching.dispatch_when_idle = true;
  Build(1, /*inline_streams=*/false, o);
  TestCall alone(batch_model_, 1, 3, 0);
  sched_->Submit(alone.request(), &alone);
  EXPECT_EQ(sched_->GetStats().pending_batch, 0);  // not waiting for the delay
  if (sched_->GetStats().pending_batch != 0) Advance(absl::Milliseconds(2));  // no hang
  ASSERT_TRUE(alone.Wait().ok());
  TestCall blocker(model_, 1, 1, 0);
  auto gate = HoldSlot(&blocker);
  TestCall a(batch_model_, 1, 3, 0), b(batch_model_, 2, 3, 10);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);
  EXPECT_EQ(sched_->GetStats().pending_batch, 2);
  Advance(absl::Milliseconds(2));  // parked: the slot is still busy
  gate->Open();
  ASSERT_TRUE(blocker.Wait().ok());
  ASSERT_TRUE(a.Wait().ok());
  ASSERT_TRUE(b.Wait().ok());
  EXPECT_THAT(batch_model_->rows(), ElementsAre(1, 3));
}

// Verifies rule 5c end to end: once a batch of a preferred size has
// finished, a lone request on the idle model waits for company (its
// callers are coming back) instead of running alone, and runs at the delay.
TEST_F(SchedulerTest, ALoneRequestAfterAPreferredSizeBatchWaitsForCompany) {
  SchedulerOptions o = DefaultOptions();
  o.max_tasks_per_device = 2;
  o.default_batching.dispatch_when_idle = true;
  o.default_batching.preferred_batch_sizes = {2};
  Build(1, /*inline_streams=*/false, o);
  TestCall first(batch_model_, 1, 3, 0);
  auto gate = HoldSlot(&first, *batch_model_);  // idle: runs at once, held
  TestCall a(batch_model_, 1, 3, 10), b(batch_model_, 1, 3, 20);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);  // the preferred size: runs as [a, b]
  gate->Open();
  for (TestCall* t : {&first, &a, &b}) ASSERT_TRUE(t->Wait().ok());
  ASSERT_THAT(batch_model_->rows(), ElementsAre(1, 2));
  TestCall next(batch_model_, 1, 3, 30);
  sched_->Submit(next.request(), &next);
  EXPECT_EQ(sched_->GetStats().pending_batch, 1);  // waits, the model idle
  Advance(absl::Milliseconds(2));
  ASSERT_TRUE(next.Wait().ok());
  EXPECT_EQ(next.output(), Doubled(next.input()));
  EXPECT_THAT(batch_model_->rows(), ElementsAre(1, 2, 1));
}

// Batching rule 6 end to end: requests copied into their batch's pinned
// arrival block as they join run from it, each getting its own rows back,
// and every block goes back to the allocator.
TEST_F(SchedulerTest, BatchGatheredOnArrivalReturnsEachRequestsOwnRows) {
  SchedulerOptions o = DefaultOptions();
  o.batch_gather_on_arrival = true;
  o.default_batching.preferred_batch_sizes = {4};
  staging_ = true;
  Build(1, /*inline_streams=*/false, o);
  std::vector<std::unique_ptr<TestCall>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::make_unique<TestCall>(batch_model_, 1, 3, 10.0f * i));
  }
  sched_->Submit(calls[0]->request(), calls[0].get());
  EXPECT_EQ(staging_allocator_->given.load(), 1);  // the arrival block, taken as it joined
  for (size_t i = 1; i < calls.size(); ++i) sched_->Submit(calls[i]->request(), calls[i].get());
  for (auto& call : calls) {
    ASSERT_TRUE(call->Wait().ok());
    EXPECT_EQ(call->output(), Doubled(call->input()));
  }
  EXPECT_THAT(batch_model_->rows(), ElementsAre(4));  // the target: runs at once
  EXPECT_EQ(staging_allocator_->given.load(), 2);  // and the outputs': nothing gathered
  sched_->Shutdown();
  EXPECT_EQ(staging_allocator_->held.load(), 0);
}

// Waits (up to 5 s) until `model` has been asked for `n` executions, so
// that a gate set for them has been taken.
void WaitForExecutions(const testing::TestModel& model, size_t n) {
  for (int i = 0; i < 50000 && model.rows().size() < n; ++i) {
    absl::SleepFor(absl::Microseconds(100));
  }
  ASSERT_EQ(model.rows().size(), n);
}

// Verifies rule 5d end to end: a model whose executions run in order
// learns how long a batch of its preferred size takes (here at least the
// 2 ms its gate held it), and a batch below that size, pending while the
// model's one execution runs, is released before that execution's
// predicted end (to queue behind it on its stream) instead of waiting,
// parked, for the finish. Executions that overlap (the parameter) keep it
// parked. The predicted end is real time, the test's clock fake: 5 s on
// the fake clock is past it whatever the host's speed.
class InOrderReleaseTest : public testing::SchedulerFixture,
                           public ::testing::WithParamInterface<bool> {};

TEST_P(InOrderReleaseTest, NextBatchIsReleasedBeforeTheRunningOneFinishes) {
  const bool overlap = GetParam();
  SchedulerOptions o = DefaultOptions();
  o.max_tasks_per_device = 4;
  o.default_batching.preferred_batch_sizes = {2};  // no dispatch when idle
  batch_model_->set_overlap_executions(overlap);
  Build(1, /*inline_streams=*/false, o);
  auto taught = NewGate();
  batch_model_->SetGate(taught);
  TestCall a(batch_model_, 1, 3, 0), b(batch_model_, 1, 3, 10);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);  // the preferred size: runs as [a, b], held
  // Lifted only once [a, b] took it: on a loaded host the batch may start
  // after this thread goes on, and would then run ungated and teach a
  // time too short for the release below to wait.
  WaitForExecutions(*batch_model_, 1);
  batch_model_->SetGate(nullptr);
  absl::SleepFor(absl::Milliseconds(2));
  taught->Open();
  ASSERT_TRUE(a.Wait().ok());
  ASSERT_TRUE(b.Wait().ok());
  auto held = NewGate();
  batch_model_->SetGate(held);
  TestCall running(batch_model_, 1, 3, 20);
  sched_->Submit(running.request(), &running);
  Advance(absl::Milliseconds(1));  // its delay, the model idle: runs, held
  WaitForExecutions(*batch_model_, 2);
  batch_model_->SetGate(nullptr);
  TestCall next(batch_model_, 1, 3, 30);
  sched_->Submit(next.request(), &next);
  Advance(absl::Milliseconds(1));  // its delay: parked (rule 5b)
  EXPECT_EQ(sched_->GetStats().pending_batch, 1);
  Advance(absl::Seconds(5));  // well past the predicted end
  EXPECT_EQ(sched_->GetStats().pending_batch, overlap ? 1 : 0);
  EXPECT_FALSE(running.done());
  held->Open();
  ASSERT_TRUE(running.Wait().ok());
  ASSERT_TRUE(next.Wait().ok());
  EXPECT_EQ(next.output(), Doubled(next.input()));
  EXPECT_THAT(batch_model_->rows(), ElementsAre(2, 1, 1));
}

INSTANTIATE_TEST_SUITE_P(Overlap, InOrderReleaseTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Overlapping" : "InOrder";
                         });

// Verifies that a batch whose delay passes while every slot is busy is not
// queued behind the running work: it keeps collecting requests and runs as
// one execution as soon as the slot frees.
TEST_F(SchedulerTest, BatchPastItsDelayWaitsForAFreeSlotAndKeepsFilling) {
  Build(1, /*inline_streams=*/false);  // one slot
  TestCall blocker(model_, 1, 1, 0);
  auto gate = HoldSlot(&blocker);
  TestCall a(batch_model_, 1, 3, 0), b(batch_model_, 2, 3, 10), c(batch_model_, 1, 3, 20);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);
  Advance(absl::Milliseconds(2));  // past the 1 ms delay, the slot still busy
  SchedulerStats stats = sched_->GetStats();
  EXPECT_EQ(stats.devices[0].queued, 0);  // not in the device queue
  EXPECT_EQ(stats.pending_batch, 2);
  sched_->Submit(c.request(), &c);  // joins the parked batch
  EXPECT_EQ(sched_->GetStats().pending_batch, 3);
  EXPECT_FALSE(a.done());
  gate->Open();
  ASSERT_TRUE(blocker.Wait().ok());
  for (TestCall* t : {&a, &b, &c}) {
    ASSERT_TRUE(t->Wait().ok());
    EXPECT_EQ(t->output(), Doubled(t->input()));
  }
  EXPECT_THAT(batch_model_->rows(), ElementsAre(4));
  EXPECT_EQ(sched_->GetStats().batches, 1u);
}

// Verifies that with a slot free a batch still runs when its delay passes.
TEST_F(SchedulerTest, BatchPastItsDelayRunsAtOnceWhenASlotIsFree) {
  SchedulerOptions o = DefaultOptions();
  o.max_tasks_per_device = 2;
  Build(1, /*inline_streams=*/false, o);
  TestCall blocker(model_, 1, 1, 0);
  auto gate = HoldSlot(&blocker);
  TestCall a(batch_model_, 1, 3, 0), b(batch_model_, 2, 3, 10);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);
  Advance(absl::Milliseconds(2));
  ASSERT_TRUE(a.Wait().ok());
  ASSERT_TRUE(b.Wait().ok());
  EXPECT_FALSE(blocker.done());
  EXPECT_THAT(batch_model_->rows(), ElementsAre(3));
  gate->Open();
  EXPECT_TRUE(blocker.Wait().ok());
}

// Verifies a model's execution limit end to end: with slots to spare, a
// model limited to one execution per device runs its next requests as one
// batch when its running execution finishes, not as executions beside it.
TEST_F(SchedulerTest, ModelExecutionLimitBatchesBehindItsRunningExecution) {
  SchedulerOptions o = DefaultOptions();
  o.max_tasks_per_device = 4;
  o.default_batching.dispatch_when_idle = true;
  batch_model_->set_max_executions_per_device(1);
  Build(1, /*inline_streams=*/false, o);
  TestCall first(batch_model_, 1, 3, 0);
  auto gate = HoldSlot(&first, *batch_model_);  // idle: runs at once, held
  TestCall a(batch_model_, 1, 3, 10), b(batch_model_, 2, 3, 20);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);
  Advance(absl::Milliseconds(2));  // past the delay, three slots free: parked
  EXPECT_EQ(sched_->GetStats().pending_batch, 2);
  EXPECT_FALSE(a.done());
  gate->Open();
  for (TestCall* t : {&first, &a, &b}) {
    ASSERT_TRUE(t->Wait().ok());
    EXPECT_EQ(t->output(), Doubled(t->input()));
  }
  EXPECT_THAT(batch_model_->rows(), ElementsAre(1, 3));
}

// Verifies that when a batch of a model at its execution limit finishes,
// the model's parked batch starts before the finished batch's members are
// answered: the device gets its next work without waiting for N responses.
TEST_F(SchedulerTest, ModelExecutionLimitStartsTheNextBatchBeforeAnswering) {
  SchedulerOptions o = DefaultOptions();
  o.max_tasks_per_device = 4;
  o.default_batching.dispatch_when_idle = true;
  batch_model_->set_max_executions_per_device(1);
  Build(1, /*inline_streams=*/false, o);
  TestCall first(batch_model_, 1, 3, 0);
  auto first_gate = HoldSlot(&first, *batch_model_);  // idle: runs at once, held
  auto batch_gate = NewGate();
  batch_model_->SetGate(batch_gate);
  TestCall a(batch_model_, 1, 3, 10), b(batch_model_, 1, 3, 20);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);
  Advance(absl::Milliseconds(2));  // parked behind `first`
  std::vector<int64_t> rows_when_first_answered;
  first.OnComplete([&] { rows_when_first_answered = batch_model_->rows(); });
  first_gate->Open();
  ASSERT_TRUE(first.Wait().ok());
  // [a, b] now runs as one batch, held; it started before `first` (a lone
  // request) was answered, as a finished batch starts the next one first.
  EXPECT_THAT(rows_when_first_answered, ElementsAre(1, 2)) << "[a, b] had not started";
  ASSERT_THAT(batch_model_->rows(), ElementsAre(1, 2));
  batch_model_->SetGate(nullptr);
  TestCall c(batch_model_, 1, 3, 30);
  sched_->Submit(c.request(), &c);
  Advance(absl::Milliseconds(2));  // parked behind [a, b]
  ASSERT_EQ(sched_->GetStats().pending_batch, 1);
  std::vector<int64_t> rows_when_a_answered;
  int64_t pending_when_a_answered = -1;
  a.OnComplete([&] {
    rows_when_a_answered = batch_model_->rows();
    pending_when_a_answered = sched_->GetStats().pending_batch;
  });
  batch_gate->Open();
  for (TestCall* t : {&a, &b, &c}) {
    ASSERT_TRUE(t->Wait().ok());
    EXPECT_EQ(t->output(), Doubled(t->input()));
  }
  EXPECT_EQ(pending_when_a_answered, 0);
  EXPECT_THAT(rows_when_a_answered, ElementsAre(1, 2, 1)) << "c had not started";
}

// Verifies scheduling.overlap_executions. By default a model's second
// execution, started while its first is held, runs on its own slot's
// stream, beside the first. With overlap_executions: false it is enqueued
// at once on the running execution's stream, though a slot of its own was
// free: the device runs it after the first, never beside it.
TEST_F(SchedulerTest, ExecutionsOverlapUnlessTheModelSaysNot) {
  for (bool overlap : {true, false}) {
    SCOPED_TRACE(overlap ? "overlap" : "one stream");
    auto model = std::make_shared<testing::TestModel>(overlap ? "overlap" : "serial");
    model->set_overlap_executions(overlap);
    models_.Add(model);
    SchedulerOptions o = DefaultOptions();
    o.max_tasks_per_device = 4;
    if (sched_ == nullptr) Build(1, /*inline_streams=*/false, o);
    auto gate = NewGate();
    model->SetGate(gate);
    TestCall first(model, 1, 3, 0);
    sched_->Submit(first.request(), &first);
    model->SetGate(nullptr);
    TestCall second(model, 1, 3, 10);
    sched_->Submit(second.request(), &second);
    // Both were enqueued at once (Execute ran for each).
    std::vector<int> streams = model->streams();
    ASSERT_EQ(streams.size(), 2u);
    if (overlap) {
      EXPECT_NE(streams[0], streams[1]);
      ASSERT_TRUE(second.Wait().ok());  // its stream is not held
      EXPECT_FALSE(first.done());
    } else {
      EXPECT_EQ(streams[0], streams[1]);
      // A host stream runs its work in order: behind the held first.
      EXPECT_FALSE(second.done());
    }
    gate->Open();
    ASSERT_TRUE(first.Wait().ok());
    ASSERT_TRUE(second.Wait().ok());
    EXPECT_EQ(second.output(), Doubled(second.input()));
  }
}

// Verifies the memory cap: batches stop at the smallest optimal batch size
// over the devices divided by the slots per device, asked once per model
// and again only at the refresh interval; RESOURCE_EXHAUSTED means 1 row.
TEST_F(SchedulerTest, OptimalBatchSizeCapsBatchesAndIsRefreshedRarely) {
  SchedulerOptions o = DefaultOptions();
  o.max_tasks_per_device = 2;
  o.batch_limit_refresh = absl::Seconds(10);
  std::atomic<int64_t> fit{12};
  std::atomic<int> asked{0};
  o.optimal_batch_size = [&](const ModelSignature& sig, int device) -> absl::StatusOr<int64_t> {
    ++asked;
    EXPECT_EQ(sig.name, "batched");
    if (device == 1) return int64_t{100};
    if (fit.load() == 0) return absl::ResourceExhaustedError("device 0: full");
    return fit.load();
  };
  Build(2, /*inline_streams=*/true, o);
  auto run = [&](std::vector<int64_t> rows) {
    std::vector<std::unique_ptr<TestCall>> calls;
    for (int64_t r : rows) {
      calls.push_back(std::make_unique<TestCall>(batch_model_, r, 3, 0));
      sched_->Submit(calls.back()->request(), calls.back().get());
    }
    for (auto& c : calls) ASSERT_TRUE(c->Wait().ok());  // no timer: each batch hit its cap
  };
  run({2, 2, 2});              // 12 rows fit device 0, two slots there: 6
  EXPECT_EQ(asked.load(), 2);  // once per device, not per request
  fit = 4;                     // 2 rows per batch
  Advance(absl::Seconds(1));   // arms the refresh
  Advance(absl::Seconds(10));  // refreshes
  EXPECT_EQ(asked.load(), 4);
  run({1, 1});
  fit = 0;
  Advance(absl::Seconds(10));
  run({1});
  EXPECT_THAT(batch_model_->rows(), ElementsAre(6, 2, 1));
}

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
  EXPECT_EQ(Metric("inferd_scheduler_tasks_completed_total",
                   {{"model", "test"}, {"outcome", "failed"}}),
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
