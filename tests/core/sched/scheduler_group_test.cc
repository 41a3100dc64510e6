// Groups: when a device's last free slot is taken, queued requests of
// unbatched models run with it side by side (ExecuteGroupOnDevice), at most
// scheduler.max_requests_per_slot and the slot's share of the queue; each
// keeps its own result, failure and retry.
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/sched/scheduler_fixture.h"

namespace inferd {
namespace {

using ::testing::ElementsAre;
using testing::TestCall;

class SchedulerGroupTest : public testing::SchedulerFixture {
 protected:
  // One device, `slots` slots, groups of up to `per_slot`.
  void BuildGrouping(int slots, int per_slot, int group_slots = 0) {
    SchedulerOptions o = DefaultOptions();
    o.max_tasks_per_device = slots;
    o.max_requests_per_slot = per_slot;
    o.group_slots = group_slots;
    o.aging_interval = absl::ZeroDuration();
    o.retry_backoff = absl::Milliseconds(10);
    Build(1, /*inline_streams=*/false, o);
  }

  std::vector<std::unique_ptr<TestCall>> SubmitCalls(int n, Priority priority = Priority::kNormal) {
    std::vector<std::unique_ptr<TestCall>> calls;
    for (int i = 0; i < n; ++i) {
      calls.push_back(std::make_unique<TestCall>(model_, 1, 3 + i, 10.0f * i, priority, i + 1));
      sched_->Submit(calls.back()->request(), calls.back().get());
    }
    return calls;
  }

  static std::vector<float> Doubled(const std::vector<float>& v) {
    std::vector<float> out;
    for (float x : v) out.push_back(2 * x);
    return out;
  }
};

// Six requests queued behind a busy slot: the freed slot takes four (its
// limit), the next execution the last two; every request gets its own
// result, in queue order.
TEST_F(SchedulerGroupTest, QueuedRequestsRunTogetherWhenTheLastSlotFrees) {
  BuildGrouping(/*slots=*/1, /*per_slot=*/4);
  TestCall blocker(model_, 1, 1, 0, Priority::kNormal, 100);
  auto gate = HoldSlot(&blocker);
  auto calls = SubmitCalls(6);
  EXPECT_EQ(sched_->GetStats().queued, 6);
  gate->Open();
  ASSERT_TRUE(blocker.Wait().ok());
  for (auto& c : calls) {
    ASSERT_TRUE(c->Wait().ok()) << c->Wait();
    EXPECT_EQ(c->output(), Doubled(c->input()));
    EXPECT_EQ(c->completions(), 1);
  }
  EXPECT_THAT(model_->tags(), ElementsAre(100, 1, 2, 3, 4, 5, 6));
  SchedulerStats stats = sched_->GetStats();
  EXPECT_EQ(stats.groups, 2u);
  EXPECT_EQ(stats.grouped_requests, 6u);
  EXPECT_EQ(stats.completed[static_cast<int>(Outcome::kSucceeded)], 7u);
  EXPECT_EQ(stats.devices[0].completed, 3u);  // executions: the blocker and two groups
}

// A slot takes only its share of the queue, so the device's other slots
// find work when they free.
TEST_F(SchedulerGroupTest, ASlotTakesItsShareOfTheQueue) {
  BuildGrouping(/*slots=*/2, /*per_slot=*/32);
  TestCall first(model_, 1, 1, 0, Priority::kNormal, 100);
  TestCall second(model_, 1, 1, 0, Priority::kNormal, 200);
  auto gate1 = HoldSlot(&first);
  auto gate2 = HoldSlot(&second);
  auto calls = SubmitCalls(9);
  auto held = NewGate();  // holds the group once it runs
  model_->SetGate(held);
  gate1->Open();  // one slot frees with 9 queued: it takes 1 + 8 / 2
  ASSERT_TRUE(first.Wait().ok());
  // The group's members count as queued until it starts them.
  SchedulerStats stats = sched_->GetStats();
  while (stats.groups == 0 || stats.queued > 4) {
    absl::SleepFor(absl::Milliseconds(1));
    stats = sched_->GetStats();
  }
  EXPECT_EQ(stats.groups, 1u);
  EXPECT_EQ(stats.grouped_requests, 5u);
  EXPECT_EQ(stats.queued, 4);
  model_->SetGate(nullptr);
  held->Open();
  gate2->Open();
  ASSERT_TRUE(second.Wait().ok());
  for (auto& c : calls) ASSERT_TRUE(c->Wait().ok());
}

// With the group slots held, requests of unbatched models queue although
// other slots are free, and run as one group when a group slot frees.
TEST_F(SchedulerGroupTest, GroupSlotsHeldQueueRequestsForTheNextGroup) {
  BuildGrouping(/*slots=*/4, /*per_slot=*/8, /*group_slots=*/1);
  TestCall blocker(model_, 1, 1, 0, Priority::kNormal, 100);
  auto gate = HoldSlot(&blocker);
  auto calls = SubmitCalls(3);
  EXPECT_EQ(sched_->GetStats().queued, 3);  // three slots free, none taken
  gate->Open();
  ASSERT_TRUE(blocker.Wait().ok());
  for (auto& c : calls) {
    ASSERT_TRUE(c->Wait().ok());
    EXPECT_EQ(c->output(), Doubled(c->input()));
  }
  EXPECT_THAT(model_->tags(), ElementsAre(100, 1, 2, 3));
  SchedulerStats stats = sched_->GetStats();
  EXPECT_EQ(stats.groups, 1u);
  EXPECT_EQ(stats.grouped_requests, 3u);
  EXPECT_EQ(stats.devices[0].completed, 2u);  // the blocker and one group
}

// A request that finds a free slot runs alone, as does a lone queued one.
TEST_F(SchedulerGroupTest, RequestsThatFindAFreeSlotRunAlone) {
  BuildGrouping(/*slots=*/2, /*per_slot=*/8);
  for (int i = 0; i < 5; ++i) {
    TestCall call(model_, 2, 2, static_cast<float>(i));
    sched_->Submit(call.request(), &call);
    ASSERT_TRUE(call.Wait().ok());
    EXPECT_EQ(call.output(), Doubled(call.input()));
  }
  EXPECT_EQ(sched_->GetStats().groups, 0u);
}

// BACKGROUND requests are never grouped (a group is never preempted), nor
// are batched models' requests (their batcher merges them).
TEST_F(SchedulerGroupTest, BackgroundAndBatchedRequestsAreNotGrouped) {
  BuildGrouping(/*slots=*/1, /*per_slot=*/8);
  TestCall blocker(model_, 1, 1, 0, Priority::kNormal, 100);
  auto gate = HoldSlot(&blocker);
  auto calls = SubmitCalls(4, Priority::kBackground);
  gate->Open();
  ASSERT_TRUE(blocker.Wait().ok());
  for (auto& c : calls) ASSERT_TRUE(c->Wait().ok());
  EXPECT_EQ(sched_->GetStats().groups, 0u);
  EXPECT_THAT(model_->tags(), ElementsAre(100, 1, 2, 3, 4));
}

// In a group, a request its model refuses fails alone (INVALID_ARGUMENT
// naming the input); the others succeed.
TEST_F(SchedulerGroupTest, ARefusedRequestFailsAlone) {
  BuildGrouping(/*slots=*/1, /*per_slot=*/8);
  TestCall blocker(model_, 1, 1, 0, Priority::kNormal, 100);
  auto gate = HoldSlot(&blocker);
  TestCall good1(model_, 1, 4, 1), bad(model_, 1, 4, 2), good2(model_, 1, 4, 3);
  sched_->Submit(good1.request(), &good1);
  InferRequest wrong = bad.request();
  wrong.inputs[0].desc.dtype = DataType::kInt32;
  sched_->Submit(std::move(wrong), &bad);
  sched_->Submit(good2.request(), &good2);
  gate->Open();
  ASSERT_TRUE(good1.Wait().ok());
  ASSERT_TRUE(good2.Wait().ok());
  EXPECT_EQ(good2.output(), Doubled(good2.input()));
  const absl::Status st = bad.Wait();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("INPUT0"));
  SchedulerStats stats = sched_->GetStats();
  EXPECT_EQ(stats.grouped_requests, 3u);
  EXPECT_EQ(stats.completed[static_cast<int>(Outcome::kFailed)], 1u);
}

// A device fault in the group's launches sends each request back to wait
// for its own retry; they then succeed.
TEST_F(SchedulerGroupTest, DeviceFaultsAreRetriedPerRequest) {
  BuildGrouping(/*slots=*/1, /*per_slot=*/8);
  TestCall blocker(model_, 1, 1, 0, Priority::kNormal, 100);
  auto gate = HoldSlot(&blocker);
  auto calls = SubmitCalls(3);
  model_->FailOn(0);
  gate->Open();
  ASSERT_TRUE(blocker.Wait().ok());
  while (model_->failures() < 3) absl::SleepFor(absl::Milliseconds(1));
  model_->HealDevice(0);
  // Each retry waits out its backoff on the fake clock.
  while (!(calls[0]->done() && calls[1]->done() && calls[2]->done())) {
    Advance(absl::Milliseconds(20));
    absl::SleepFor(absl::Milliseconds(1));
  }
  for (auto& c : calls) {
    ASSERT_TRUE(c->Wait().ok()) << c->Wait();
    EXPECT_EQ(c->output(), Doubled(c->input()));
    EXPECT_EQ(c->completions(), 1);
  }
  SchedulerStats stats = sched_->GetStats();
  EXPECT_EQ(stats.retries, 3u);
  EXPECT_EQ(stats.groups, 1u + (stats.grouped_requests > 3 ? 1u : 0u));
  EXPECT_TRUE(stats.devices[0].healthy);
}

}  // namespace
}  // namespace inferd
