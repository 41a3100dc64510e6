// The scheduler's batching on host devices: merging and splitting,
// dispatch when idle, preferred sizes, gathering on arrival, in-order
// release, a batch past its delay, model execution limits and overlap,
// the optimal batch size cap. (Everything else the scheduler does is in
// scheduler_test.cc and scheduler_tasks_test.cc.)
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "core/sched/scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/sched/scheduler_fixture.h"

namespace inferd {
namespace {

using ::testing::ElementsAre;
using testing::Gate;
using ::testing::HasSubstr;
using testing::Doubled;
using testing::ExpectEachAnsweredDoubled;
using testing::TestCall;

class SchedulerBatchingTest : public testing::SchedulerFixture {};

TEST_F(SchedulerBatchingTest, BatchingMergesRequestsAndSplitsResults) {
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
TEST_F(SchedulerBatchingTest, ShutdownWaitsForMembersDeliveredOnTheirOwnThreads) {
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

TEST_F(SchedulerBatchingTest, FullBatchRunsWithoutWaitingAndOthersDoNotMix) {
  Build(1, /*inline_streams=*/true);
  TestCall a(batch_model_, 4, 2, 0), b(batch_model_, 4, 2, 50), odd(batch_model_, 1, 5, 7);
  sched_->Submit(odd.request(), &odd);  // different trailing dims
  sched_->Submit(a.request(), &a);      // flushes `odd` alone
  sched_->Submit(b.request(), &b);      // 8 rows: the maximum
  ExpectEachAnsweredDoubled({&a, &b, &odd});
  EXPECT_THAT(batch_model_->rows(), ElementsAre(1, 8));
}

TEST_F(SchedulerBatchingTest, BatchingOffRunsRequestsOneByOne) {
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
TEST_F(SchedulerBatchingTest, DispatchWhenIdleRunsALoneRequestAtOnceAndBatchesUnderLoad) {
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
TEST_F(SchedulerBatchingTest, ALoneRequestAfterAPreferredSizeBatchWaitsForCompany) {
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
TEST_F(SchedulerBatchingTest, BatchGatheredOnArrivalReturnsEachRequestsOwnRows) {
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
  EXPECT_EQ(staging_allocator_->given.load(), 2);     // and the outputs': nothing gathered
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
  // time too short for the release below to wait. Opened 2 ms after its
  // stream reached it (not after the batch was launched), so the time
  // taught is at least 2 ms however late that stream runs.
  WaitForExecutions(*batch_model_, 1);
  batch_model_->SetGate(nullptr);
  taught->AwaitWaiter();
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
TEST_F(SchedulerBatchingTest, BatchPastItsDelayWaitsForAFreeSlotAndKeepsFilling) {
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
  ExpectEachAnsweredDoubled({&a, &b, &c});
  EXPECT_THAT(batch_model_->rows(), ElementsAre(4));
  EXPECT_EQ(sched_->GetStats().batches, 1u);
}

// Verifies that with a slot free a batch still runs when its delay passes.
TEST_F(SchedulerBatchingTest, BatchPastItsDelayRunsAtOnceWhenASlotIsFree) {
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
TEST_F(SchedulerBatchingTest, ModelExecutionLimitBatchesBehindItsRunningExecution) {
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
  ExpectEachAnsweredDoubled({&first, &a, &b});
  EXPECT_THAT(batch_model_->rows(), ElementsAre(1, 3));
}

// Verifies that when a batch of a model at its execution limit finishes,
// the model's parked batch starts before the finished batch's members are
// answered: the device gets its next work without waiting for N responses.
TEST_F(SchedulerBatchingTest, ModelExecutionLimitStartsTheNextBatchBeforeAnswering) {
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
  ExpectEachAnsweredDoubled({&a, &b, &c});
  EXPECT_EQ(pending_when_a_answered, 0);
  EXPECT_THAT(rows_when_a_answered, ElementsAre(1, 2, 1)) << "c had not started";
}

// Verifies scheduling.overlap_executions. By default a model's second
// execution, started while its first is held, runs on its own slot's
// stream, beside the first. With overlap_executions: false it is enqueued
// at once on the running execution's stream, though a slot of its own was
// free: the device runs it after the first, never beside it.
TEST_F(SchedulerBatchingTest, ExecutionsOverlapUnlessTheModelSaysNot) {
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
TEST_F(SchedulerBatchingTest, OptimalBatchSizeCapsBatchesAndIsRefreshedRarely) {
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

}  // namespace
}  // namespace inferd
