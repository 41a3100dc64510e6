// Unit tests of the batching stage with a fake clock: when a batch forms
// (dispatch when idle, the preferred size, the delay, parking while every
// slot is busy), merging and splitting, and which policy a model gets.
#include "core/sched/batching_stage.h"

#include <cstring>
#include <memory>
#include <vector>

#include "core/device/host_device.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/core/sched/sched_test_util.h"

namespace inferd {
namespace {

using testing::CountingStagingAllocator;
using testing::TestCall;
using testing::TestModel;

constexpr absl::Duration kDelay = absl::Milliseconds(1);


class BatchingStageTest : public ::testing::Test {
 protected:
  // One host device with `max_tasks` slots; the default policy batches
  // with a 1 ms delay.
  void Build(bool dispatch_when_idle, std::vector<int> preferred = {}, int max_tasks = 1) {
    HostDeviceOptions o;
    o.num_streams = 4;
    device_ = std::make_unique<HostDevice>(o);
    Device* devices[] = {device_.get()};
    options_.max_tasks_per_device = max_tasks;
    options_.default_batching.max_queue_delay = kDelay;
    options_.default_batching.preferred_batch_sizes = std::move(preferred);
    options_.default_batching.dispatch_when_idle = dispatch_when_idle;
    lanes_ = std::make_unique<DeviceLanes>(nullptr, devices, max_tasks, 0, AgingOptions{}, false);
    metrics_ = std::make_unique<SchedulerMetrics>(registry_, std::vector<int>{0});
    stage_ = std::make_unique<BatchingStage>(
        options_, *lanes_, *metrics_, &clock_,
        BatchingHooks{.place =
                          [this](Job* job, absl::Time) {
                            placed_.push_back(job);
                            if (occupy_on_place_) ++(*lanes_)[0].running;
                          },
                      .schedule = [this](absl::Time when,
                                         TimerQueue::Callback fn) {
                        timers_.Schedule(when, std::move(fn));
                      },
                      .staging = [this](size_t bytes) {
                        return arrival_allocator_ == nullptr
                                   ? StagingBlock()
                                   : StagingBlock(*arrival_allocator_, *device_, bytes);
                      }});
  }

  void TearDown() override {
    if (stage_ == nullptr) return;
    stage_->TakeAll();
    for (Job* j : placed_) {
      if (j->batch != nullptr) delete j;
    }
  }

  // Offers a call of `rows` rows of the batching model to the stage.
  TestCall& Offer(int64_t rows) {
    calls_.push_back(std::make_unique<TestCall>(model_, rows, 2, 10.0f * calls_.size()));
    jobs_.push_back(std::make_unique<Job>());
    Job* job = jobs_.back().get();
    job->request = calls_.back()->request();
    job->sink = calls_.back().get();
    job->rows = BatchRows(job->request);
    DynamicBatcher* batcher = stage_->BatcherFor(*job);
    EXPECT_NE(batcher, nullptr);
    DynamicBatcher::AddResult added = stage_->Add(*batcher, job, clock_.Now());
    stage_->Follow(*batcher, std::move(added), clock_.Now());
    return *calls_.back();
  }

  void Advance(absl::Duration d) {
    clock_.Advance(d);
    timers_.RunDue(clock_.Now());
  }

  // Every slot busy (1) or free (0).
  void SetRunning(int n) { (*lanes_)[0].running = n; }

  // The rows of each placed execution.
  std::vector<int64_t> PlacedRows() const {
    std::vector<int64_t> out;
    for (const Job* j : placed_) out.push_back(j->batch != nullptr ? j->batch->total_rows : j->rows);
    return out;
  }

  // Build(dispatch_when_idle false, `preferred`) with staging blocks for
  // rule 6 from arrival_pool_, the rule on or off.
  void BuildWithArrivalBlocks(std::vector<int> preferred, bool gather_on_arrival = true) {
    options_.batch_gather_on_arrival = gather_on_arrival;
    Build(/*dispatch_when_idle=*/false, std::move(preferred));
    arrival_allocator_ = &arrival_pool_;
  }

  // Gives every member of `batch` its rows of an output that echoes the
  // batch's gathered input, then deletes the batch.
  void EchoAndDeliver(Job* batch) {
    const InferInput& merged = batch->request.inputs[0];
    void* out = batch->AllocateOutput(0, model_->signature().outputs[0], merged.desc);
    std::memcpy(out, merged.data, merged.desc.byte_size);
    for (size_t i = 0; i < batch->batch->members.size(); ++i) {
      Job* m = batch->batch->members[i];
      m->sink->Complete(stage_->SplitMember(batch, i, absl::OkStatus()));
    }
    std::erase(placed_, batch);
    delete batch;
  }

  // `batch` took no arrival block: it is gathered into a block of its own
  // when it runs, and `members` get their own rows back.
  void ExpectGatheredWhenItRuns(Job* batch, std::initializer_list<const TestCall*> members) {
    EXPECT_EQ(batch->batch->arrival, nullptr);
    GatherBatchInputs(*batch, arrival_pool_, *device_);
    EXPECT_EQ(batch->request.inputs[0].data, batch->batch->pinned_inputs.data());
    EchoAndDeliver(batch);
    for (const TestCall* call : members) EXPECT_EQ(call->output(), call->input());
  }

  // Declared first: the blocks it gives out live until the stage is gone.
  CountingStagingAllocator arrival_pool_;
  std::shared_ptr<TestModel> model_ = std::make_shared<TestModel>("batched", 8);
  FakeClock clock_;
  TimerQueue timers_;
  prometheus::Registry registry_;
  SchedulerOptions options_;
  std::unique_ptr<HostDevice> device_;
  std::unique_ptr<DeviceLanes> lanes_;
  std::unique_ptr<SchedulerMetrics> metrics_;
  std::unique_ptr<BatchingStage> stage_;
  std::vector<std::unique_ptr<TestCall>> calls_;
  std::vector<std::unique_ptr<Job>> jobs_;
  std::vector<Job*> placed_;
  bool occupy_on_place_ = false;  // a placed job takes a slot, as on a device
  // Rule 6's blocks come from here (null: none, as on a host device).
  CountingStagingAllocator* arrival_allocator_ = nullptr;
};


// With a staging pool, a batch's inputs are gathered once into a pinned
// block (marked so the device copies it directly), its outputs land in
// pinned blocks, and every block goes back with the batch.
TEST_F(BatchingStageTest, BatchInputsAndOutputsUsePinnedBlocks) {
  Build(/*dispatch_when_idle=*/false, /*preferred=*/{3});
  TestCall& a = Offer(1);
  TestCall& b = Offer(2);
  ASSERT_EQ(placed_.size(), 1u);
  Job* batch = placed_[0];
  CountingStagingAllocator allocator;
  GatherBatchInputs(*batch, allocator, *device_);
  const InferInput& merged = batch->request.inputs[0];
  EXPECT_TRUE(merged.pinned);
  EXPECT_EQ(merged.data, batch->batch->pinned_inputs.data());
  EXPECT_EQ(allocator.held, 1);
  GatherBatchInputs(*batch, allocator, *device_);  // a retry gathers nothing again
  EXPECT_EQ(allocator.held, 1);
  EXPECT_TRUE(batch->HostOutputsPinned());
  void* out = batch->AllocateOutput(0, model_->signature().outputs[0], merged.desc);
  EXPECT_EQ(out, batch->batch->outputs[0].pinned.data());
  EXPECT_EQ(allocator.held, 2);
  std::memcpy(out, merged.data, merged.desc.byte_size);
  for (size_t i = 0; i < batch->batch->members.size(); ++i) {
    Job* m = batch->batch->members[i];
    m->sink->Complete(stage_->SplitMember(batch, i, absl::OkStatus()));
  }
  EXPECT_EQ(a.output(), a.input());
  EXPECT_EQ(b.output(), b.input());
  placed_.clear();
  delete batch;
  EXPECT_EQ(allocator.held, 0);
}

// Rule 6: small requests are copied into the batch's pinned arrival block
// as they join, so the batch runs from it with nothing left to gather.
TEST_F(BatchingStageTest, SmallRequestsAreGatheredAsTheyArrive) {
  BuildWithArrivalBlocks({3});
  TestCall& a = Offer(1);
  EXPECT_EQ(arrival_pool_.held, 1);  // taken by the first request
  TestCall& b = Offer(2);
  ASSERT_EQ(placed_.size(), 1u);
  Job* batch = placed_[0];
  ASSERT_NE(batch->batch->arrival, nullptr);
  const InferInput& merged = batch->request.inputs[0];
  EXPECT_EQ(merged.data, batch->batch->arrival->region[0]);
  EXPECT_TRUE(merged.pinned);
  EXPECT_EQ(std::memcmp(merged.data, a.input().data(), a.input().size() * sizeof(float)), 0);
  GatherBatchInputs(*batch, arrival_pool_, *device_);
  EXPECT_EQ(arrival_pool_.held, 1);  // nothing gathered again
  EchoAndDeliver(batch);
  EXPECT_EQ(a.output(), a.input());
  EXPECT_EQ(b.output(), b.input());
  EXPECT_EQ(arrival_pool_.held, 0);
}

// Without scheduler.batch_gather_on_arrival (the default) a batch is
// gathered when it runs, as on a device without a staging pool.
TEST_F(BatchingStageTest, RequestsAreGatheredOnArrivalOnlyWhenAskedTo) {
  BuildWithArrivalBlocks({3}, /*gather_on_arrival=*/false);
  TestCall& a = Offer(1);
  EXPECT_EQ(arrival_pool_.held, 0);
  TestCall& b = Offer(2);
  ASSERT_EQ(placed_.size(), 1u);
  ExpectGatheredWhenItRuns(placed_[0], {&a, &b});
}

// A request joining a batch whose first request took no block (none to
// spare then) asks for none: that batch is gathered when it runs anyway.
TEST_F(BatchingStageTest, NoBlockIsTakenForABatchAlreadyWithoutOne) {
  BuildWithArrivalBlocks({3});
  arrival_allocator_ = nullptr;  // the pool has none to spare
  TestCall& a = Offer(1);
  arrival_allocator_ = &arrival_pool_;
  TestCall& b = Offer(2);
  EXPECT_EQ(arrival_pool_.given.load(), 0);  // none asked for b
  ASSERT_EQ(placed_.size(), 1u);
  ExpectGatheredWhenItRuns(placed_[0], {&a, &b});
}

// A batch cut from the front of the pending requests leaves the rest in
// the block; the next batch continues there, after them.
TEST_F(BatchingStageTest, TheRestOfACutBatchStaysInTheArrivalBlock) {
  BuildWithArrivalBlocks({2, 8});
  TestCall& a = Offer(1);
  TestCall& b = Offer(1);
  TestCall& c = Offer(1);
  Advance(kDelay);  // rule 5a: two rows run, the third waits
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{2}));
  TestCall& d = Offer(1);  // the waiting batch reaches 2 (rule 5b)
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{2, 2}));
  Job* first = placed_[0];
  Job* second = placed_[1];
  ASSERT_NE(second->batch->arrival, nullptr);
  EXPECT_EQ(second->batch->arrival, first->batch->arrival);
  const ArrivalBlock& block = *second->batch->arrival;
  EXPECT_EQ(second->request.inputs[0].data, block.region[0] + 2 * block.row_bytes[0]);
  EchoAndDeliver(first);
  EchoAndDeliver(second);
  for (TestCall* call : {&a, &b, &c, &d}) EXPECT_EQ(call->output(), call->input());
  EXPECT_EQ(arrival_pool_.held, 0);
}

// A request cancelled from the middle leaves a hole: the batch is gathered
// when it runs instead, and its results are still each member's own.
TEST_F(BatchingStageTest, ACancelledRequestMakesTheBatchGatherWhenItRuns) {
  BuildWithArrivalBlocks({4});
  TestCall& a = Offer(1);
  Offer(1);
  Job* cancelled = jobs_.back().get();
  TestCall& c = Offer(1);
  ASSERT_TRUE(stage_->Remove(cancelled));
  Advance(kDelay);
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{2}));
  ExpectGatheredWhenItRuns(placed_[0], {&a, &c});
  EXPECT_EQ(arrival_pool_.held, 0);
}

// Idle regime: a lone request on an idle device runs with no clock advance.
TEST_F(BatchingStageTest, IdleSlotDispatchesALoneRequestAtOnce) {
  Build(/*dispatch_when_idle=*/true);
  Offer(1);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1}));
  EXPECT_EQ(timers_.NextDue(), absl::InfiniteFuture());  // no delay armed
  EXPECT_EQ(stage_->pending(), 0);
}

// The same request without the rule waits for the delay.
TEST_F(BatchingStageTest, WithoutDispatchWhenIdleALoneRequestWaitsForTheDelay) {
  Build(/*dispatch_when_idle=*/false);
  Offer(1);
  EXPECT_TRUE(placed_.empty());
  Advance(kDelay);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1}));
}

// Busy regime: requests accumulate while the slot is busy and run as one
// batch at the delay.
TEST_F(BatchingStageTest, BusySlotAccumulatesABatchThatRunsAtTheDelay) {
  Build(/*dispatch_when_idle=*/true);
  SetRunning(1);
  Offer(1);
  Offer(2);
  Offer(1);
  EXPECT_TRUE(placed_.empty());
  EXPECT_EQ(stage_->pending(), 3);
  SetRunning(0);  // the slot is free when the delay passes
  Advance(kDelay / 2);
  EXPECT_TRUE(placed_.empty());
  Advance(kDelay / 2);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{4}));
  EXPECT_EQ(stage_->batches(), 1u);
  EXPECT_EQ(stage_->batched_requests(), 3u);
}

// Busy regime: the preferred size emits a batch without waiting.
TEST_F(BatchingStageTest, BusySlotBatchRunsAtThePreferredSize) {
  Build(/*dispatch_when_idle=*/true, /*preferred=*/{4});
  SetRunning(1);
  for (int i = 0; i < 4; ++i) Offer(1);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{4}));
}

// A request that finds a batch pending joins it even when a slot is free:
// the rule never reorders a model's requests.
TEST_F(BatchingStageTest, RequestJoinsAPendingBatchEvenWithASlotFree) {
  Build(/*dispatch_when_idle=*/true);
  SetRunning(1);
  Offer(1);
  SetRunning(0);
  Offer(1);
  EXPECT_TRUE(placed_.empty());
  Advance(kDelay);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{2}));
}

// Past its delay with every slot busy a batch parks, keeps filling, and
// runs when a slot frees.
TEST_F(BatchingStageTest, ParkedBatchKeepsFillingUntilASlotFrees) {
  Build(/*dispatch_when_idle=*/true);
  SetRunning(1);
  Offer(1);
  Offer(1);
  Advance(kDelay);
  EXPECT_TRUE(placed_.empty());
  Offer(3);
  EXPECT_EQ(stage_->pending(), 3);
  SetRunning(0);
  stage_->OnSlotFreed();
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{5}));
}

// Rule 4: a model limited to one execution per device, whose execution is
// running, lets its next batch fill past the delay even though slots are
// free, and emits it when that execution finishes.
TEST_F(BatchingStageTest, ModelAtItsExecutionLimitKeepsFillingUntilOneFinishes) {
  model_->set_max_executions_per_device(1);
  Build(/*dispatch_when_idle=*/true, /*preferred=*/{}, /*max_tasks=*/4);
  Offer(1);  // idle: runs at once, and counts
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{1}));
  DynamicBatcher* batcher = placed_[0]->emitted_by.get();
  ASSERT_NE(batcher, nullptr);
  EXPECT_EQ(batcher->unfinished(), 1);
  Offer(1);  // slots are free, but the model is at its limit
  Offer(2);
  EXPECT_EQ(placed_.size(), 1u);
  Advance(kDelay);  // past the delay: parked, not emitted
  EXPECT_EQ(placed_.size(), 1u);
  Offer(1);
  EXPECT_EQ(stage_->pending(), 3);
  stage_->OnSlotFreed();  // another model's slot: this one stays at its limit
  EXPECT_EQ(placed_.size(), 1u);
  batcher->CountFinished({}, clock_.Now());  // what OnFinished does first
  batcher->CountEmitted(0, clock_.Now());
  stage_->OnFinished(*batcher);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(placed_[1]->emitted_by.get(), batcher);
  EXPECT_EQ(batcher->unfinished(), 1);
}

// Rule 4 never holds back a batch that reached its target: it cannot grow.
TEST_F(BatchingStageTest, FullBatchIsEmittedAtTheExecutionLimit) {
  model_->set_max_executions_per_device(1);
  Build(/*dispatch_when_idle=*/true, /*preferred=*/{2}, /*max_tasks=*/4);
  Offer(1);
  Offer(1);
  Offer(1);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(placed_[1]->emitted_by->unfinished(), 2);
}

// Rule 5: with preferred sizes, a batch past its delay runs as the largest
// preferred size it reaches (the oldest requests) and the rest waits,
// parked, while the model has work unfinished: until it reaches a
// preferred size, or one of the model's jobs finishes.
TEST_F(BatchingStageTest, PreferredSizesUnderLoadRunAtAPreferredSize) {
  Build(/*dispatch_when_idle=*/true, /*preferred=*/{2, 8}, /*max_tasks=*/4);
  Offer(1);  // the model is idle: runs at once (rule 1), and counts
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{1}));
  DynamicBatcher* batcher = placed_[0]->emitted_by.get();
  ASSERT_NE(batcher, nullptr);
  Offer(1);  // slots are free, but the model is busy: no rule 1
  Offer(1);
  Offer(1);
  EXPECT_EQ(placed_.size(), 1u);
  Advance(kDelay);  // 3 rows: runs as 2, the third waits (below 2, model busy)
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(stage_->pending(), 1);
  EXPECT_TRUE(batcher->parked());
  EXPECT_EQ(batcher->unfinished(), 2);
  Offer(1);  // reaches the smallest preferred size with a slot free
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(stage_->pending(), 0);
  Offer(1);
  Advance(kDelay);  // below every preferred size while 3 jobs are unfinished
  EXPECT_EQ(placed_.size(), 3u);
  stage_->OnSlotFreed();  // a free slot alone does not run it
  EXPECT_EQ(placed_.size(), 3u);
  stage_->OnFinished(*batcher);  // two still unfinished: it would only queue
  stage_->OnFinished(*batcher);  // behind them, and keeps filling instead
  EXPECT_EQ(placed_.size(), 3u);
  EXPECT_EQ(batcher->unfinished(), 1);
  stage_->OnFinished(*batcher);  // the model's last job: it runs as it is
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2, 2, 1}));
  EXPECT_EQ(batcher->unfinished(), 1);
  Offer(1);  // the model is busy: waits for its delay, then parks
  Advance(kDelay);
  EXPECT_EQ(placed_.size(), 4u);
  EXPECT_TRUE(batcher->parked());
}

// Rule 5c: after a batch of a preferred size finishes, its callers come
// back with their next requests. The first of them does not run alone on
// the idle model (it would cost nearly the batch's time for one row): it
// waits for company until the smallest preferred size or the delay.
TEST_F(BatchingStageTest, ALoneRequestWaitsWhileAPreferredBatchsCallersReturn) {
  Build(/*dispatch_when_idle=*/true, /*preferred=*/{2, 8}, /*max_tasks=*/4);
  Offer(1);  // the model is idle: runs at once (rule 1)
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{1}));
  DynamicBatcher* batcher = placed_[0]->emitted_by.get();
  ASSERT_NE(batcher, nullptr);
  Offer(1);
  Offer(1);
  Advance(kDelay);  // the model is busy: a batch of 2 at the delay
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2}));
  stage_->OnFinished(*batcher);                                // the lone request
  stage_->OnFinished(*batcher, {.rows = 2, .batch = true});  // the batch of 2
  ASSERT_EQ(batcher->unfinished(), 0);
  Offer(1);  // idle model, free slots: yet it waits
  EXPECT_EQ(placed_.size(), 2u);
  EXPECT_EQ(stage_->pending(), 1);
  Offer(1);  // the smallest preferred size: runs at once
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2, 2}));
  stage_->OnFinished(*batcher, {.rows = 2, .batch = true});
  Offer(1);  // waits again, now for the delay
  EXPECT_EQ(placed_.size(), 3u);
  Advance(kDelay);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2, 2, 1}));
  stage_->OnFinished(*batcher);  // a lone request's finish starts no wait,
  Advance(kDelay / 2);           // and the batch's is over
  Offer(1);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2, 2, 1, 1}));
}

// Rule 5c only follows a batch that reached a preferred size: under light
// load (batches below it) an idle model still serves a lone request at
// once.
TEST_F(BatchingStageTest, ABatchBelowEveryPreferredSizeStartsNoWait) {
  Build(/*dispatch_when_idle=*/true, /*preferred=*/{4}, /*max_tasks=*/4);
  Offer(1);
  ASSERT_EQ(placed_.size(), 1u);
  DynamicBatcher* batcher = placed_[0]->emitted_by.get();
  ASSERT_NE(batcher, nullptr);
  stage_->OnFinished(*batcher, {.rows = 3, .batch = true});
  Offer(1);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 1}));
  stage_->OnFinished(*batcher, {.rows = 4, .batch = true});  // a preferred size: the next waits
  Offer(1);
  EXPECT_EQ(placed_.size(), 2u);
}

// Rule 5d: a model whose executions run in order releases its next batch
// its lead (100 us by default) before the running one is predicted to end, so
// the device never waits for the finish to reach the host: from the
// batch's first request (its timer moved up), and from a finish that
// leaves one execution running (a timer it arms).
TEST_F(BatchingStageTest, InOrderModelReleasesTheNextBatchBeforeTheRunningOneEnds) {
  model_->set_overlap_executions(false);
  Build(/*dispatch_when_idle=*/true, /*preferred=*/{2, 8}, /*max_tasks=*/4);
  Offer(1);  // idle: runs at once
  DynamicBatcher* batcher = placed_[0]->emitted_by.get();
  ASSERT_NE(batcher, nullptr);
  Offer(1);
  Offer(1);
  Advance(kDelay);  // busy: a batch of 2 at the delay
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2}));
  stage_->OnFinished(*batcher, {.rows = 1, .infer = absl::Microseconds(300)});
  EXPECT_EQ(batcher->ReleaseAt(), absl::InfiniteFuture());  // 2 rows: not known yet
  stage_->OnFinished(*batcher, {.rows = 2, .batch = true, .infer = absl::Microseconds(600)});
  Offer(1);  // rule 5c: waits for company
  Offer(1);  // and runs at the smallest preferred size, predicted to take 600 us
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(batcher->ReleaseAt(), clock_.Now() + absl::Microseconds(500));
  Offer(1);  // below every preferred size, the model busy
  Advance(absl::Microseconds(450));
  EXPECT_EQ(placed_.size(), 3u);
  Advance(absl::Microseconds(100));  // past the release, long before the delay
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2, 2, 1}));
  Offer(1);  // two unfinished: waits, for its delay
  Advance(absl::Microseconds(100));
  stage_->OnFinished(*batcher, {.rows = 2, .batch = true, .infer = absl::Microseconds(600)});
  // One row left running, bounded by the 2-row time: released 500 us on.
  EXPECT_EQ(batcher->ReleaseAt(), clock_.Now() + absl::Microseconds(500));
  Advance(absl::Microseconds(499));
  EXPECT_EQ(placed_.size(), 4u);
  Advance(absl::Microseconds(1));
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2, 2, 1, 1}));
}

// The lead is the model's (scheduling.next_batch_lead_us).
TEST_F(BatchingStageTest, InOrderModelReleasesByItsOwnLead) {
  model_->set_overlap_executions(false);
  model_->set_next_batch_lead_us(50);
  Build(/*dispatch_when_idle=*/false, /*preferred=*/{2}, /*max_tasks=*/4);
  Offer(1);
  Offer(1);  // the preferred size: runs at once
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{2}));
  DynamicBatcher* batcher = placed_[0]->emitted_by.get();
  ASSERT_NE(batcher, nullptr);
  stage_->OnFinished(*batcher, {.rows = 2, .batch = true, .infer = absl::Microseconds(600)});
  Offer(1);
  Offer(1);  // into the idle model, predicted to take 600 us
  ASSERT_EQ(placed_.size(), 2u);
  EXPECT_EQ(batcher->ReleaseAt(), clock_.Now() + absl::Microseconds(550));
}

// Executions that overlap gain nothing from an early release: the same
// requests wait as rule 5b says, for the model's last job to finish.
TEST_F(BatchingStageTest, ModelsWhoseExecutionsOverlapAreNotReleasedEarly) {
  Build(/*dispatch_when_idle=*/true, /*preferred=*/{2, 8}, /*max_tasks=*/4);
  Offer(1);
  DynamicBatcher* batcher = placed_[0]->emitted_by.get();
  ASSERT_NE(batcher, nullptr);
  stage_->OnFinished(*batcher, {.rows = 2, .batch = true, .infer = absl::Microseconds(600)});
  Offer(1);
  Offer(1);
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(batcher->ReleaseAt(), absl::InfiniteFuture());
  Offer(1);
  Advance(kDelay);
  EXPECT_EQ(placed_.size(), 2u);
  EXPECT_TRUE(batcher->parked());
  stage_->OnFinished(*batcher, {.rows = 2, .batch = true});
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 2, 1}));
}

// Rule 5a on a parked batch that passed several preferred sizes while every
// slot was busy: the largest it reaches runs first, the rest with the next
// free slot.
TEST_F(BatchingStageTest, ParkedBatchRunsAsTheLargestPreferredSizeItReaches) {
  Build(/*dispatch_when_idle=*/true, /*preferred=*/{2, 4, 8}, /*max_tasks=*/1);
  occupy_on_place_ = true;
  SetRunning(1);
  for (int i = 0; i < 7; ++i) Offer(1);
  Advance(kDelay);
  EXPECT_TRUE(placed_.empty());
  SetRunning(0);
  stage_->OnSlotFreed();
  ASSERT_EQ(PlacedRows(), (std::vector<int64_t>{4}));
  // The placed batch holds the slot; the rest (3 rows) runs as 2 when the
  // slot frees, and its last row when the model's last job finishes.
  EXPECT_EQ(stage_->pending(), 3);
  SetRunning(0);
  stage_->OnSlotFreed();
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{4, 2}));
  DynamicBatcher* batcher = placed_[0]->emitted_by.get();
  ASSERT_NE(batcher, nullptr);
  stage_->OnSlotFreed();  // a slot alone: the last row waits (2 unfinished)
  EXPECT_EQ(placed_.size(), 2u);
  SetRunning(0);
  stage_->OnFinished(*batcher);  // one left running: still waits
  EXPECT_EQ(placed_.size(), 2u);
  stage_->OnFinished(*batcher);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{4, 2, 1}));
  // Arrival order holds across the parts.
  EXPECT_EQ(placed_[0]->batch->members[0], jobs_[0].get());
  EXPECT_EQ(placed_[1]->batch->members[0], jobs_[4].get());
  EXPECT_EQ(placed_[2], jobs_[6].get());
}

// Without a limit nothing is counted.
TEST_F(BatchingStageTest, ModelWithoutALimitIsNotCounted) {
  Build(/*dispatch_when_idle=*/true, /*preferred=*/{}, /*max_tasks=*/4);
  Offer(1);
  Offer(1);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(placed_[0]->emitted_by, nullptr);
}

// Merging concatenates the members' inputs; splitting hands each member
// its own rows of the batched output.
// An unloaded model goes once its last request has: the stage holds its
// models weakly (it used to keep every model that ever batched, weights and
// all, for the daemon's life). A new model at the same address gets a
// batcher of its own.
TEST_F(BatchingStageTest, AnUnloadedModelIsNotKeptByTheStage) {
  Build(/*dispatch_when_idle=*/true);
  std::weak_ptr<TestModel> first = model_;
  Offer(1);
  ASSERT_EQ(placed_.size(), 1u);
  jobs_.clear();  // the request finished
  calls_.clear();
  placed_.clear();
  model_ = std::make_shared<TestModel>("reloaded", 8);  // the old one unloaded
  EXPECT_TRUE(first.expired());
  Offer(2);
  EXPECT_EQ(PlacedRows(), (std::vector<int64_t>{2}));
  EXPECT_EQ(stage_->pending(), 0);
}

TEST_F(BatchingStageTest, SplitGivesEachMemberItsRows) {
  Build(/*dispatch_when_idle=*/false, /*preferred=*/{3});
  TestCall& a = Offer(1);
  TestCall& b = Offer(2);
  ASSERT_EQ(placed_.size(), 1u);
  Job* batch = placed_[0];
  ASSERT_NE(batch->batch, nullptr);
  const InferInput& merged = batch->request.inputs[0];
  EXPECT_EQ(merged.desc.shape, (Shape{3, 2}));
  EXPECT_EQ(merged.data, nullptr);  // gathered when the batch runs
  std::unique_ptr<DeviceAllocator> raw = NewRawDeviceAllocator();  // stages nothing
  GatherBatchInputs(*batch, *raw, *device_);
  ASSERT_NE(merged.data, nullptr);
  EXPECT_FALSE(merged.pinned);
  // Stand in for the device: the output is the merged input.
  void* out = batch->AllocateOutput(0, model_->signature().outputs[0], merged.desc);
  ASSERT_NE(out, nullptr);
  std::memcpy(out, merged.data, merged.desc.byte_size);
  // Members are split independently (on their calls' threads, in any
  // order): the last first.
  ASSERT_EQ(batch->batch->members.size(), 2u);
  for (size_t i : {size_t{1}, size_t{0}}) {
    absl::Status st = stage_->SplitMember(batch, i, absl::OkStatus());
    EXPECT_TRUE(st.ok()) << st;
    batch->batch->members[i]->sink->Complete(st);
  }
  EXPECT_EQ(a.output(), a.input());
  EXPECT_EQ(b.output(), b.input());
  EXPECT_EQ(b.output_desc().shape, (Shape{2, 2}));
}

TEST_F(BatchingStageTest, SplitOfATimedOutBatchFailsEveryMember) {
  Build(/*dispatch_when_idle=*/false, /*preferred=*/{2});
  Offer(1);
  Offer(1);
  ASSERT_EQ(placed_.size(), 1u);
  placed_[0]->timed_out = true;
  std::vector<absl::StatusCode> codes;
  for (size_t i = 0; i < placed_[0]->batch->members.size(); ++i) {
    codes.push_back(stage_->SplitMember(placed_[0], i, absl::OkStatus()).code());
  }
  EXPECT_EQ(codes, (std::vector<absl::StatusCode>{absl::StatusCode::kDeadlineExceeded,
                                                  absl::StatusCode::kDeadlineExceeded}));
}

TEST_F(BatchingStageTest, PolicyForSkipsModelsThatCannotBatchAndPrefersTheLookup) {
  Build(/*dispatch_when_idle=*/false);
  ModelSignature sig;
  sig.max_batch_size = 0;
  EXPECT_FALSE(stage_->PolicyFor(sig).has_value());
  sig.max_batch_size = 8;
  sig.decoupled = true;
  EXPECT_FALSE(stage_->PolicyFor(sig).has_value());
  sig.decoupled = false;
  ASSERT_TRUE(stage_->PolicyFor(sig).has_value());
  EXPECT_EQ(stage_->PolicyFor(sig)->max_queue_delay, kDelay);
  options_.default_batching.enabled = false;
  EXPECT_FALSE(stage_->PolicyFor(sig).has_value());
  options_.batching_lookup = [](const ModelSignature&) -> std::optional<BatchingPolicy> {
    BatchingPolicy p;
    p.max_queue_delay = absl::Microseconds(7);
    return p;
  };
  ASSERT_TRUE(stage_->PolicyFor(sig).has_value());
  EXPECT_EQ(stage_->PolicyFor(sig)->max_queue_delay, absl::Microseconds(7));
}

TEST(ModelBatchingPolicyTest, AModelsBlockOverridesTheDefaults) {
  BatchingPolicy defaults;
  defaults.enabled = false;
  defaults.dispatch_when_idle = true;
  ModelConfigSpec spec;
  EXPECT_FALSE(ModelBatchingPolicy(spec, defaults).has_value());
  spec.has_dynamic_batching = true;
  spec.dynamic_batching.preferred_batch_sizes = {4, 8};
  spec.dynamic_batching.max_queue_delay_us = 250;
  std::optional<BatchingPolicy> p = ModelBatchingPolicy(spec, defaults);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->enabled);
  EXPECT_TRUE(p->dispatch_when_idle);
  EXPECT_EQ(p->preferred_batch_sizes, (std::vector<int>{4, 8}));
  EXPECT_EQ(p->max_queue_delay, absl::Microseconds(250));
}

}  // namespace
}  // namespace inferd
