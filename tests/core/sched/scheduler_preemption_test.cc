// Preemption of running work (enable_task_preemption with a model's
// scheduling.preemptible): a CRITICAL task takes the slot of a running
// BACKGROUND execution, whose result is dropped and which runs again.
// Device work is held with gates on worker-thread host streams, so nothing
// here depends on timing.
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/sched/scheduler_fixture.h"

namespace inferd {
namespace {

using ::testing::ElementsAre;
using testing::TestCall;
using testing::TestModel;

std::vector<float> Doubled(const std::vector<float>& v) {
  std::vector<float> out;
  for (float x : v) out.push_back(2 * x);
  return out;
}

std::vector<float> Doubled(int64_t n, float base) {
  std::vector<float> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(2 * (base + static_cast<float>(i)));
  return out;
}

class PreemptionTest : public testing::SchedulerFixture {
 protected:
  // One host device with worker-thread streams and one slot.
  void BuildWith(bool preemption) {
    models_.Add(bg_);
    models_.Add(bg_batched_);
    SchedulerOptions o = DefaultOptions();
    o.enable_preemption = preemption;
    Build(1, /*inline_streams=*/false, o);
  }

  // Subscribes to the events of tasks of the "bg" model.
  void WatchBackground() {
    WatchOptions options;
    options.model_name = "bg";
    watcher_ = sched_->Watch(options, [this] {
      absl::MutexLock lock(&watch_mu_);
      ++watch_signals_;
    });
  }
  // The states seen so far (draining the watcher).
  std::vector<TaskState> Drain() {
    TaskEvent e;
    while (watcher_->Next(&e)) states_.push_back(e.state);
    return states_;
  }
  // Waits until `n` RUNNING events were seen.
  void AwaitRunning(int n) {
    while (true) {
      {
        absl::MutexLock lock(&watch_mu_);
        watch_signals_ = 0;
      }
      int running = 0;
      for (TaskState s : Drain()) running += s == TaskState::kRunning;
      if (running >= n) return;
      absl::MutexLock lock(&watch_mu_);
      auto signalled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(watch_mu_) {
        return watch_signals_ > 0;
      };
      ASSERT_TRUE(watch_mu_.AwaitWithTimeout(absl::Condition(&signalled), absl::Seconds(60)))
          << "no RUNNING event";
    }
  }

  void TearDown() override {
    if (watcher_ != nullptr) sched_->Unwatch(watcher_);
    SchedulerFixture::TearDown();
  }

  // Models with scheduling.preemptible.
  std::shared_ptr<TestModel> bg_ = std::make_shared<TestModel>("bg", 0, true);
  std::shared_ptr<TestModel> bg_batched_ = std::make_shared<TestModel>("bg_batched", 8, true);
  std::shared_ptr<TaskWatcher> watcher_;
  absl::Mutex watch_mu_;
  int watch_signals_ ABSL_GUARDED_BY(watch_mu_) = 0;
  std::vector<TaskState> states_;
};

// Verifies the whole cycle: the CRITICAL task runs (and finishes) while the
// preempted BACKGROUND execution is still held; that execution's result is
// dropped and the task runs again to a correct result, as no retry.
TEST_F(PreemptionTest, CriticalTaskTakesTheSlotOfARunningBackgroundTask) {
  BuildWith(/*preemption=*/true);
  auto gate = NewGate();
  bg_->SetGate(gate);
  WatchBackground();
  const TaskId background = Submit(Spec("bg", 2, 3, 1.0f, Priority::kBackground));
  ASSERT_EQ(StateOf(background), TaskState::kRunning);
  bg_->SetGate(nullptr);  // the re-run is not held

  const TaskId critical = Submit(Spec("test", 1, 4, 5.0f, Priority::kCritical));
  // It finishes while the preempted execution is still held by the gate:
  // it ran on the device's spare slot, not behind it.
  const TaskInfo done = WaitFor(critical);
  ASSERT_EQ(done.state, TaskState::kSucceeded);
  EXPECT_EQ(Floats(done.outputs[0].data), Doubled(4, 5.0f));
  EXPECT_EQ(StateOf(background), TaskState::kRunning);
  SchedulerStats stats = sched_->GetStats();
  EXPECT_EQ(stats.preemptions, 1u);
  EXPECT_EQ(stats.running, 1);
  EXPECT_EQ(Metric("inferd_scheduler_preemptions_total"), 1.0);

  gate->Open();
  const TaskInfo info = WaitFor(background);
  ASSERT_EQ(info.state, TaskState::kSucceeded) << info.status;
  EXPECT_EQ(Floats(info.outputs[0].data), Doubled(6, 1.0f));
  EXPECT_EQ(info.attempts, 2);
  EXPECT_THAT(bg_->rows(), ElementsAre(2, 2));
  EXPECT_THAT(Drain(), ElementsAre(TaskState::kPending, TaskState::kQueued, TaskState::kRunning,
                                   TaskState::kQueued, TaskState::kRunning,
                                   TaskState::kSucceeded));
  stats = sched_->GetStats();
  EXPECT_EQ(stats.retries, 0u);
  EXPECT_EQ(stats.preemptions, 1u);
  EXPECT_EQ(stats.completed[static_cast<int>(Outcome::kSucceeded)], 2u);
  EXPECT_EQ(stats.completed[static_cast<int>(Outcome::kFailed)], 0u);
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(Metric("inferd_scheduler_retries_total"), 0.0);
}

// Verifies the opt-in: a BACKGROUND task of a model without
// scheduling.preemptible keeps its slot; the CRITICAL task waits for it.
TEST_F(PreemptionTest, NonPreemptibleModelKeepsItsSlot) {
  BuildWith(/*preemption=*/true);
  auto gate = NewGate();
  model_->SetGate(gate);
  const TaskId background = Submit(Spec("test", 1, 2, 0, Priority::kBackground));
  ASSERT_EQ(StateOf(background), TaskState::kRunning);
  model_->SetGate(nullptr);
  const TaskId critical = Submit(Spec("test", 1, 2, 0, Priority::kCritical));
  EXPECT_EQ(StateOf(critical), TaskState::kQueued);
  EXPECT_EQ(sched_->GetStats().preemptions, 0u);
  gate->Open();
  EXPECT_EQ(WaitFor(background).attempts, 1);
  EXPECT_EQ(WaitFor(critical).state, TaskState::kSucceeded);
  EXPECT_EQ(Metric("inferd_scheduler_preemptions_total"), 0.0);
}

TEST_F(PreemptionTest, NothingIsPreemptedWithPreemptionOff) {
  BuildWith(/*preemption=*/false);
  auto gate = NewGate();
  bg_->SetGate(gate);
  const TaskId background = Submit(Spec("bg", 1, 2, 0, Priority::kBackground));
  ASSERT_EQ(StateOf(background), TaskState::kRunning);
  bg_->SetGate(nullptr);
  const TaskId critical = Submit(Spec("test", 1, 2, 0, Priority::kCritical));
  EXPECT_EQ(StateOf(critical), TaskState::kQueued);
  gate->Open();
  EXPECT_EQ(WaitFor(background).attempts, 1);
  EXPECT_EQ(WaitFor(critical).state, TaskState::kSucceeded);
  EXPECT_EQ(sched_->GetStats().preemptions, 0u);
}

TEST_F(PreemptionTest, HighPriorityDoesNotPreempt) {
  BuildWith(/*preemption=*/true);
  auto gate = NewGate();
  bg_->SetGate(gate);
  const TaskId background = Submit(Spec("bg", 1, 2, 0, Priority::kBackground));
  ASSERT_EQ(StateOf(background), TaskState::kRunning);
  bg_->SetGate(nullptr);
  const TaskId high = Submit(Spec("test", 1, 2, 0, Priority::kHigh));
  EXPECT_EQ(StateOf(high), TaskState::kQueued);
  gate->Open();
  EXPECT_EQ(WaitFor(background).attempts, 1);
  EXPECT_EQ(WaitFor(high).state, TaskState::kSucceeded);
  EXPECT_EQ(sched_->GetStats().preemptions, 0u);
}

// Verifies that only BACKGROUND work is preempted: a LOW task of a
// preemptible model keeps its slot.
TEST_F(PreemptionTest, OnlyBackgroundWorkIsPreempted) {
  BuildWith(/*preemption=*/true);
  auto gate = NewGate();
  bg_->SetGate(gate);
  const TaskId low = Submit(Spec("bg", 1, 2, 0, Priority::kLow));
  ASSERT_EQ(StateOf(low), TaskState::kRunning);
  bg_->SetGate(nullptr);
  const TaskId critical = Submit(Spec("test", 1, 2, 0, Priority::kCritical));
  EXPECT_EQ(StateOf(critical), TaskState::kQueued);
  gate->Open();
  EXPECT_EQ(WaitFor(critical).state, TaskState::kSucceeded);
  EXPECT_EQ(sched_->GetStats().preemptions, 0u);
}

// Verifies that a job is preempted at most once: held again on its re-run,
// it keeps its slot when a second CRITICAL task arrives.
TEST_F(PreemptionTest, AJobIsNeverPreemptedTwice) {
  BuildWith(/*preemption=*/true);
  auto first = NewGate();
  auto second = NewGate();
  bg_->SetGate(first);
  WatchBackground();
  const TaskId background = Submit(Spec("bg", 1, 2, 0, Priority::kBackground));
  ASSERT_EQ(StateOf(background), TaskState::kRunning);
  bg_->SetGate(second);  // holds the re-run
  const TaskId c1 = Submit(Spec("test", 1, 2, 0, Priority::kCritical));
  EXPECT_EQ(WaitFor(c1).state, TaskState::kSucceeded);
  first->Open();
  AwaitRunning(2);  // the re-run started
  const TaskId c2 = Submit(Spec("test", 1, 2, 0, Priority::kCritical));
  EXPECT_EQ(StateOf(c2), TaskState::kQueued);
  EXPECT_EQ(sched_->GetStats().preemptions, 1u);
  second->Open();
  const TaskInfo info = WaitFor(background);
  EXPECT_EQ(info.state, TaskState::kSucceeded);
  EXPECT_EQ(info.attempts, 2);
  EXPECT_EQ(WaitFor(c2).state, TaskState::kSucceeded);
}

// Verifies batches: one whose members are all BACKGROUND is preempted and
// re-run, each responder getting its own rows once; the responders are
// never asked for output memory twice.
TEST_F(PreemptionTest, BackgroundBatchIsPreemptedAndRerun) {
  BuildWith(/*preemption=*/true);
  auto gate = NewGate();
  bg_batched_->SetGate(gate);
  TestCall a(bg_batched_, 1, 3, 0, Priority::kBackground), b(bg_batched_, 2, 3, 100,
                                                               Priority::kBackground);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);
  Advance(absl::Milliseconds(2));  // past the queue delay: the batch runs, held
  ASSERT_EQ(sched_->GetStats().running, 1);
  bg_batched_->SetGate(nullptr);
  TestCall critical(model_, 1, 2, 7, Priority::kCritical);
  sched_->Submit(critical.request(), &critical);
  ASSERT_TRUE(critical.Wait().ok());
  EXPECT_FALSE(a.done());
  EXPECT_EQ(sched_->GetStats().preemptions, 1u);
  gate->Open();
  for (TestCall* t : {&a, &b}) {
    ASSERT_TRUE(t->Wait().ok());
    EXPECT_EQ(t->output(), Doubled(t->input()));
    EXPECT_EQ(t->allocations(), 1);
    EXPECT_EQ(t->completions(), 1);
  }
  EXPECT_THAT(bg_batched_->rows(), ElementsAre(3, 3));
}

// Verifies that a batch with a member above BACKGROUND keeps its slot.
TEST_F(PreemptionTest, BatchWithANonBackgroundMemberIsNotPreempted) {
  BuildWith(/*preemption=*/true);
  auto gate = NewGate();
  bg_batched_->SetGate(gate);
  TestCall a(bg_batched_, 1, 3, 0, Priority::kBackground), b(bg_batched_, 2, 3, 100,
                                                               Priority::kLow);
  sched_->Submit(a.request(), &a);
  sched_->Submit(b.request(), &b);
  Advance(absl::Milliseconds(2));
  ASSERT_EQ(sched_->GetStats().running, 1);
  bg_batched_->SetGate(nullptr);
  TestCall critical(model_, 1, 2, 7, Priority::kCritical);
  sched_->Submit(critical.request(), &critical);
  EXPECT_FALSE(critical.done());
  EXPECT_EQ(sched_->GetStats().preemptions, 0u);
  gate->Open();
  for (TestCall* t : {&a, &b, &critical}) ASSERT_TRUE(t->Wait().ok());
  EXPECT_THAT(bg_batched_->rows(), ElementsAre(3));
}

}  // namespace
}  // namespace inferd
