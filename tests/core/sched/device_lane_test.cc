// Unit tests of the device lanes: eligibility, slot questions, placement
// loads, queue counters and reservations, over host devices.
#include "core/sched/device_lane.h"

#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/device/host_device.h"
#include "gtest/gtest.h"
#include "tests/core/sched/sched_test_util.h"

namespace inferd {
namespace {

class DeviceLanesTest : public ::testing::Test {
 protected:
  // Devices with the given DeviceInfo indexes, `max_tasks` slots each.
  void Build(std::vector<int> indexes, int max_tasks, bool preemption = false) {
    for (int index : indexes) {
      HostDeviceOptions o;
      o.index = index;
      o.ordinal = index;
      o.num_streams = 4;
      devices_.push_back(std::make_unique<HostDevice>(o));
      ptrs_.push_back(devices_.back().get());
    }
    lanes_ = std::make_unique<DeviceLanes>(nullptr, ptrs_, max_tasks, /*first_stream=*/0,
                                           AgingOptions{}, preemption);
  }

  // Ends `job`, running on `lane`, as the scheduler does: its slot back.
  static void EndRunningLocked(DeviceLane& lane, Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane.mu) {
    lane.UnlinkRunning(job);
    lane.ReturnSlotLocked(job);
    lane.running.fetch_sub(1);
  }

  // A model whose executions do not overlap, and one whose do.
  std::shared_ptr<testing::TestModel> SerialModel() {
    auto serial = std::make_shared<testing::TestModel>("serial");
    serial->set_overlap_executions(false);
    return serial;
  }
  std::shared_ptr<testing::TestModel> other_ = std::make_shared<testing::TestModel>("other");

  std::vector<std::unique_ptr<HostDevice>> devices_;
  std::vector<Device*> ptrs_;
  std::unique_ptr<DeviceLanes> lanes_;
};

TEST_F(DeviceLanesTest, EligibleMeansActiveAndHealthy) {
  Build({0}, 1);
  DeviceLane& lane = (*lanes_)[0];
  EXPECT_TRUE(lane.Eligible());
  lane.active = false;
  EXPECT_FALSE(lane.Eligible());
  lane.active = true;
  lane.healthy = false;
  EXPECT_FALSE(lane.Eligible());
}

TEST_F(DeviceLanesTest, PositionOfMapsDeviceIndexes) {
  Build({3, 7}, 1);
  EXPECT_EQ(lanes_->PositionOf(3), 0);
  EXPECT_EQ(lanes_->PositionOf(7), 1);
  EXPECT_EQ(lanes_->PositionOf(0), -1);
  EXPECT_EQ(lanes_->PositionOf(-1), -1);
}

TEST_F(DeviceLanesTest, AnySlotFreeCountsRunningAndQueuedOnEligibleLanes) {
  Build({0, 1}, 2);
  EXPECT_TRUE(lanes_->AnySlotFree());
  (*lanes_)[0].running = 2;
  (*lanes_)[1].running = 1;
  EXPECT_TRUE(lanes_->AnySlotFree());
  (*lanes_)[1].queued = 1;  // the queued job takes the last slot
  EXPECT_FALSE(lanes_->AnySlotFree());
  (*lanes_)[1].queued = 0;
  (*lanes_)[1].healthy = false;  // its free slot does not count
  EXPECT_FALSE(lanes_->AnySlotFree());
  (*lanes_)[0].active = false;  // no eligible lane: work fails at placement
  EXPECT_TRUE(lanes_->AnySlotFree());
}

TEST_F(DeviceLanesTest, SlotFreeElsewhereSkipsTheAskingLaneAndIneligibleOnes) {
  Build({0, 1}, 1);
  EXPECT_TRUE(lanes_->SlotFreeElsewhere((*lanes_)[0]));
  (*lanes_)[1].running = 1;
  EXPECT_FALSE(lanes_->SlotFreeElsewhere((*lanes_)[0]));
  (*lanes_)[1].running = 0;
  (*lanes_)[1].active = false;
  EXPECT_FALSE(lanes_->SlotFreeElsewhere((*lanes_)[0]));
}

TEST_F(DeviceLanesTest, LoadsReportEligibilityAndCounters) {
  Build({0, 1}, 3);
  (*lanes_)[0].running = 2;
  (*lanes_)[1].healthy = false;
  (*lanes_)[1].queued_by_priority[static_cast<int>(Priority::kCritical)] = 1;
  (*lanes_)[1].queued_by_priority[static_cast<int>(Priority::kLow)] = 4;
  std::vector<DeviceLoad> loads(2);
  lanes_->Loads(Priority::kNormal, absl::MakeSpan(loads));
  EXPECT_TRUE(loads[0].eligible);
  EXPECT_EQ(loads[0].running, 2);
  EXPECT_EQ(loads[0].max_running, 3);
  EXPECT_FALSE(loads[1].eligible);
  EXPECT_EQ(loads[1].index, 1);
  EXPECT_EQ(loads[1].queued_ahead, 1);  // the LOW jobs run after a NORMAL one
}

TEST_F(DeviceLanesTest, QueueOperationsKeepCountersAndMostQueuedFindsTheBusiest) {
  Build({0, 1}, 1);
  auto model = std::make_shared<testing::TestModel>();
  std::vector<std::unique_ptr<Job>> jobs;
  DeviceLane& lane = (*lanes_)[1];
  for (Priority p : {Priority::kNormal, Priority::kHigh}) {
    jobs.push_back(std::make_unique<Job>());
    jobs.back()->request.model = model;
    jobs.back()->priority = p;
    absl::MutexLock lock(&lane.mu);
    lane.PushLocked(jobs.back().get());
  }
  EXPECT_EQ(lane.queued.load(), 2);
  EXPECT_EQ(lane.QueuedAhead(Priority::kHigh), 1);
  EXPECT_EQ(lanes_->MostQueued((*lanes_)[0]), &lane);
  EXPECT_EQ(lanes_->MostQueued(lane), nullptr);
  {
    absl::MutexLock lock(&lane.mu);
    Job* first = lane.PopLocked(absl::UnixEpoch());
    EXPECT_EQ(first->priority, Priority::kHigh);
    lane.TakeSlotLocked(first);
    EXPECT_EQ(first->where.load(), Job::Where::kRunning);
    EXPECT_TRUE(lane.free_slots.empty());
    std::vector<Job*> rest;
    lane.RemoveIfLocked(nullptr, absl::UnixEpoch(), &rest);
    EXPECT_EQ(rest.size(), 1u);
    lane.UnlinkRunning(first);
    lane.ReturnSlotLocked(first);
    EXPECT_EQ(lane.free_slots.size(), 1u);
  }
  EXPECT_EQ(lane.queued.load(), 0);
  EXPECT_EQ(lane.QueuedAhead(Priority::kLow), 0);
}

TEST_F(DeviceLanesTest, ReservationsFollowTheJob) {
  Build({0, 1}, 1);
  Job job;
  job.memory_requirement = 100;
  (*lanes_)[0].Reserve(&job);
  EXPECT_EQ((*lanes_)[0].reserved.load(), 100u);
  EXPECT_TRUE(job.reserved_memory);
  (*lanes_)[0].Unreserve(&job);
  (*lanes_)[0].Unreserve(&job);  // once only
  EXPECT_EQ((*lanes_)[0].reserved.load(), 0u);
  Job none;
  (*lanes_)[1].Reserve(&none);
  EXPECT_FALSE(none.reserved_memory);
}

TEST_F(DeviceLanesTest, PreemptionNeedsASpareStreamAndAPreemptibleRunningJob) {
  Build({0}, 4, /*preemption=*/true);  // 4 streams, 4 slots: no spare stream
  EXPECT_FALSE((*lanes_)[0].can_preempt);
  devices_.clear();
  ptrs_.clear();
  Build({0}, 1, /*preemption=*/true);
  DeviceLane& lane = (*lanes_)[0];
  EXPECT_TRUE(lane.can_preempt);
  Job critical;
  critical.priority = Priority::kCritical;
  critical.request.model = std::make_shared<testing::TestModel>();
  lane.running = 1;  // its one slot taken
  EXPECT_EQ(lanes_->PreemptionTarget(critical), -1);  // nothing preemptible runs
  lane.preemptible = 1;
  EXPECT_EQ(lanes_->PreemptionTarget(critical), 0);
  lane.running = 0;  // a free slot: ordinary placement
  EXPECT_EQ(lanes_->PreemptionTarget(critical), -1);
}

// Verifies where a model whose executions do not overlap runs: every
// execution on the stream of the first one still running (stream_slot),
// and in a slot of its own that is not that stream's whenever another is
// free, so that its copies stay off the stream the model runs on. A model
// whose executions overlap runs on its own slot's stream.
TEST_F(DeviceLanesTest, ExecutionsThatDoNotOverlapShareTheFirstOnesStream) {
  Build({0}, 3);
  DeviceLane& lane = (*lanes_)[0];
  auto serial = SerialModel();
  Job a, b, c, d, e;
  for (Job* j : {&a, &b, &c, &e}) j->request.model = serial;
  d.request.model = other_;
  absl::MutexLock lock(&lane.mu);
  lane.TakeSlotLocked(&a);
  EXPECT_EQ(a.stream_slot, a.slot);
  lane.TakeSlotLocked(&b);
  EXPECT_NE(b.slot, a.slot);
  EXPECT_EQ(b.stream_slot, a.slot);
  const int model_stream = a.slot;
  // a ends: its slot is the most recently freed, but c's model runs on it.
  EndRunningLocked(lane, &a);
  lane.TakeSlotLocked(&c);
  EXPECT_NE(c.slot, model_stream);
  EXPECT_EQ(c.stream_slot, model_stream);
  // Another model takes the last free slot and runs on its own stream.
  lane.TakeSlotLocked(&d);
  EXPECT_EQ(d.stream_slot, d.slot);
  // With nothing of the model running, the next starts a stream of its own.
  for (Job* j : {&b, &c}) EndRunningLocked(lane, j);
  lane.TakeSlotLocked(&e);
  EXPECT_EQ(e.stream_slot, e.slot);
  for (Job* j : {&d, &e}) EndRunningLocked(lane, j);
}

// Verifies that no job takes a free slot whose stream a model whose
// executions do not overlap still runs on (its first execution ended and
// freed the slot) while another slot is free: another model's execution
// there would queue behind that model's work.
TEST_F(DeviceLanesTest, OtherModelsKeepOffAStreamASerialModelStillRunsOn) {
  Build({0}, 3);
  DeviceLane& lane = (*lanes_)[0];
  auto serial = SerialModel();
  Job a, b, d, f;
  for (Job* j : {&a, &b}) j->request.model = serial;
  for (Job* j : {&d, &f}) j->request.model = other_;
  absl::MutexLock lock(&lane.mu);
  lane.TakeSlotLocked(&a);
  lane.TakeSlotLocked(&b);
  const int model_stream = a.slot;
  ASSERT_EQ(b.stream_slot, model_stream);
  EndRunningLocked(lane, &a);  // the most recently freed slot; b's model runs there
  lane.TakeSlotLocked(&d);
  EXPECT_NE(d.slot, model_stream);
  EXPECT_EQ(d.stream_slot, d.slot);
  // The only free slot left: taken, as a job never waits for a slot that
  // is free.
  lane.TakeSlotLocked(&f);
  EXPECT_EQ(f.slot, model_stream);
  for (Job* j : {&b, &d, &f}) EndRunningLocked(lane, j);
}

}  // namespace
}  // namespace inferd
