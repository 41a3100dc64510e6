#include "core/sched/batching_stage.h"

#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/sched/sched_test_util.h"

namespace inferd {
namespace {

using testing::TestCall;
using testing::TestModel;

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1);

std::unique_ptr<Job> MakeJob(const TestCall& call, Priority p = Priority::kNormal) {
  auto job = std::make_unique<Job>();
  job->request = call.request();
  job->priority = p;
  job->rows = BatchRows(job->request);
  return job;
}

std::vector<int64_t> Rows(const std::vector<Job*>& jobs) {
  std::vector<int64_t> out;
  for (Job* j : jobs) out.push_back(j->rows);
  return out;
}

TEST(BatchRowsTest, OnlyBatchingModelsWithHostInputsOfEqualDimZero) {
  auto batching = std::make_shared<TestModel>("m", 8);
  auto plain = std::make_shared<TestModel>("p", 0);
  EXPECT_EQ(BatchRows(TestCall(batching, 3, 2, 0).request()), 3);
  EXPECT_EQ(BatchRows(TestCall(plain, 3, 2, 0).request()), -1);
  EXPECT_EQ(BatchRows(TestCall(batching, 9, 2, 0).request()), -1);  // above max
  InferRequest on_device = TestCall(batching, 2, 2, 0).request();
  HostDevice device(HostDeviceOptions{});
  on_device.inputs[0].device = &device;
  EXPECT_EQ(BatchRows(on_device), -1);
  InferRequest scalar = TestCall(batching, 1, 1, 0).request();
  scalar.inputs[0].desc.shape.clear();
  EXPECT_EQ(BatchRows(scalar), -1);
}

TEST(MergeRequestsTest, ConcatenatesAlongDimZeroInOrder) {
  auto model = std::make_shared<TestModel>("m", 8);
  TestCall a(model, 1, 3, 0), b(model, 2, 3, 100);
  InferRequest ra = a.request(), rb = b.request();
  const InferRequest* reqs[] = {&ra, &rb};
  absl::StatusOr<InferRequest> merged = MergeRequests(reqs);
  ASSERT_TRUE(merged.ok()) << merged.status();
  ASSERT_EQ(merged->inputs.size(), 1u);
  EXPECT_EQ(merged->inputs[0].desc.shape, (Shape{3, 3}));
  EXPECT_EQ(merged->inputs[0].desc.byte_size, 9 * sizeof(float));
  EXPECT_EQ(merged->inputs[0].data, nullptr);  // gathered when the batch runs
  std::vector<float> got(9);
  GatherInputs(reqs, reinterpret_cast<uint8_t*>(got.data()), /*pinned=*/true, &*merged);
  EXPECT_EQ(merged->inputs[0].data, got.data());
  EXPECT_TRUE(merged->inputs[0].pinned);
  EXPECT_EQ(got, (std::vector<float>{0, 1, 2, 100, 101, 102, 103, 104, 105}));
}

TEST(MergeRequestsTest, ParallelGatherCopiesTheSameBytes) {
  auto model = std::make_shared<TestModel>("m", 8);
  // 1.2 MB per request: above the copier's threshold, so its threads share it.
  TestCall a(model, 3, 100000, 0), b(model, 1, 100000, 7), c(model, 2, 100000, 11);
  InferRequest ra = a.request(), rb = b.request(), rc = c.request();
  const InferRequest* reqs[] = {&ra, &rb, &rc};
  absl::StatusOr<InferRequest> alone = MergeRequests(reqs);
  absl::StatusOr<InferRequest> shared = MergeRequests(reqs);
  ASSERT_TRUE(alone.ok() && shared.ok());
  const size_t n = alone->inputs[0].desc.byte_size / sizeof(float);
  ASSERT_EQ(n, 600000u);
  std::vector<float> want(n), got(n, -1.0f);
  GatherInputs(reqs, reinterpret_cast<uint8_t*>(want.data()), false, &*alone);
  ParallelCopy copier(3);
  GatherInputs(reqs, reinterpret_cast<uint8_t*>(got.data()), false, &*shared, &copier);
  EXPECT_EQ(shared->inputs[0].data, got.data());
  EXPECT_EQ(want[300000], 7.0f);  // b's first value follows a's rows
  EXPECT_EQ(got, want);
}

TEST(MergeRequestsTest, RefusesDifferentTrailingDimsOrParams) {
  auto model = std::make_shared<TestModel>("m", 8);
  TestCall a(model, 1, 3, 0), b(model, 1, 4, 0), c(model, 1, 3, 0, Priority::kNormal, 5);
  InferRequest ra = a.request(), rb = b.request(), rc = c.request();
  rc.params.has_factor = true;
  EXPECT_FALSE(CanMerge(ra, rb));
  EXPECT_FALSE(CanMerge(ra, rc));
  const InferRequest* reqs[] = {&ra, &rb};
  EXPECT_EQ(MergeRequests(reqs).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SliceDescTest, SplitsByRowsAndRejectsBrokenContract) {
  TensorDesc batched{DataType::kFp32, {6, 4}, 6 * 4 * 4};
  absl::StatusOr<TensorDesc> part = SliceDesc(batched, 6, 2);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->shape, (Shape{2, 4}));
  EXPECT_EQ(part->byte_size, 2u * 4 * 4);
  EXPECT_EQ(SliceDesc(batched, 5, 2).status().code(), absl::StatusCode::kInternal);
}

TEST(DynamicBatcherTest, FlushesWhenRowsReachTheLargestPreferredSize) {
  auto model = std::make_shared<TestModel>("m", 16);
  BatchingPolicy policy;
  policy.preferred_batch_sizes = {2, 4};
  policy.max_queue_delay = absl::Milliseconds(1);
  DynamicBatcher batcher(policy, 16);
  EXPECT_EQ(batcher.target_rows(), 4);
  TestCall c1(model, 1, 2, 0), c2(model, 2, 2, 0), c3(model, 1, 2, 0);
  auto j1 = MakeJob(c1), j2 = MakeJob(c2), j3 = MakeJob(c3);
  DynamicBatcher::AddResult r1 = batcher.Add(j1.get(), kT0);
  EXPECT_TRUE(r1.ready.empty());
  EXPECT_TRUE(r1.arm_timer);
  EXPECT_EQ(r1.flush_at, kT0 + absl::Milliseconds(1));
  DynamicBatcher::AddResult r2 = batcher.Add(j2.get(), kT0);
  EXPECT_TRUE(r2.ready.empty());
  EXPECT_FALSE(r2.arm_timer);
  DynamicBatcher::AddResult r3 = batcher.Add(j3.get(), kT0);
  ASSERT_EQ(r3.ready.size(), 1u);
  EXPECT_EQ(Rows(r3.ready[0]), (std::vector<int64_t>{1, 2, 1}));
  EXPECT_EQ(batcher.pending(), 0u);
  // The first batch's timer is stale now.
  EXPECT_TRUE(batcher.FlushExpired(r1.generation).empty());
}

TEST(DynamicBatcherTest, FlushesFirstWhenTheNextRequestWouldPassTheMaximum) {
  auto model = std::make_shared<TestModel>("m", 4);
  DynamicBatcher batcher(BatchingPolicy{}, 4);
  TestCall c1(model, 3, 2, 0), c2(model, 2, 2, 0);
  auto j1 = MakeJob(c1), j2 = MakeJob(c2);
  EXPECT_TRUE(batcher.Add(j1.get(), kT0).ready.empty());
  DynamicBatcher::AddResult r = batcher.Add(j2.get(), kT0);
  ASSERT_EQ(r.ready.size(), 1u);
  EXPECT_EQ(Rows(r.ready[0]), (std::vector<int64_t>{3}));
  EXPECT_TRUE(r.arm_timer);  // j2 starts a new batch
  EXPECT_EQ(batcher.pending(), 1u);
  EXPECT_EQ(Rows(batcher.FlushExpired(r.generation)), (std::vector<int64_t>{2}));
}

TEST(DynamicBatcherTest, IncompatibleShapeFlushesThePendingBatch) {
  auto model = std::make_shared<TestModel>("m", 8);
  DynamicBatcher batcher(BatchingPolicy{}, 8);
  TestCall c1(model, 1, 2, 0), c2(model, 1, 3, 0);
  auto j1 = MakeJob(c1), j2 = MakeJob(c2);
  batcher.Add(j1.get(), kT0);
  DynamicBatcher::AddResult r = batcher.Add(j2.get(), kT0);
  ASSERT_EQ(r.ready.size(), 1u);
  EXPECT_EQ(r.ready[0][0], j1.get());
  EXPECT_EQ(batcher.TakeAll().size(), 1u);
}

TEST(DynamicBatcherTest, CriticalRequestFlushesAtOnce) {
  auto model = std::make_shared<TestModel>("m", 8);
  DynamicBatcher batcher(BatchingPolicy{}, 8);
  TestCall c1(model, 1, 2, 0), c2(model, 1, 2, 0);
  auto j1 = MakeJob(c1), j2 = MakeJob(c2, Priority::kCritical);
  batcher.Add(j1.get(), kT0);
  DynamicBatcher::AddResult r = batcher.Add(j2.get(), kT0);
  ASSERT_EQ(r.ready.size(), 1u);
  EXPECT_EQ(r.ready[0].size(), 2u);
}

TEST(DynamicBatcherTest, RemoveTakesOutAPendingJob) {
  auto model = std::make_shared<TestModel>("m", 8);
  DynamicBatcher batcher(BatchingPolicy{}, 8);
  TestCall c1(model, 1, 2, 0), c2(model, 2, 2, 0);
  auto j1 = MakeJob(c1), j2 = MakeJob(c2);
  DynamicBatcher::AddResult r = batcher.Add(j1.get(), kT0);
  batcher.Add(j2.get(), kT0);
  EXPECT_TRUE(batcher.Remove(j1.get()));
  EXPECT_FALSE(batcher.Remove(j1.get()));
  std::vector<Job*> left = batcher.FlushExpired(r.generation);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0], j2.get());
}

// Verifies parking: a batch past its delay keeps filling while parked and
// only TakeParked (a freed slot) or reaching the target takes it.
TEST(DynamicBatcherTest, ParkedBatchKeepsFillingUntilTaken) {
  auto model = std::make_shared<TestModel>("m", 8);
  DynamicBatcher batcher(BatchingPolicy{}, 8);
  TestCall c1(model, 1, 2, 0), c2(model, 2, 2, 0), c3(model, 1, 2, 0);
  auto j1 = MakeJob(c1), j2 = MakeJob(c2), j3 = MakeJob(c3);
  DynamicBatcher::AddResult r = batcher.Add(j1.get(), kT0);
  EXPECT_TRUE(batcher.TakeParked().empty());     // not parked yet
  EXPECT_FALSE(batcher.Park(r.generation + 1));  // stale generation
  ASSERT_TRUE(batcher.Park(r.generation));
  EXPECT_TRUE(batcher.parked());
  DynamicBatcher::AddResult r2 = batcher.Add(j2.get(), kT0);
  EXPECT_TRUE(r2.ready.empty());
  EXPECT_FALSE(r2.arm_timer);  // it joined the parked batch
  batcher.Add(j3.get(), kT0);
  EXPECT_EQ(Rows(batcher.TakeParked()), (std::vector<int64_t>{1, 2, 1}));
  EXPECT_FALSE(batcher.parked());
  EXPECT_EQ(batcher.pending(), 0u);
  EXPECT_TRUE(batcher.TakeParked().empty());
}

TEST(DynamicBatcherTest, RemovingTheLastParkedJobUnparks) {
  auto model = std::make_shared<TestModel>("m", 8);
  DynamicBatcher batcher(BatchingPolicy{}, 8);
  TestCall c1(model, 1, 2, 0), c2(model, 1, 2, 0);
  auto j1 = MakeJob(c1), j2 = MakeJob(c2);
  DynamicBatcher::AddResult r = batcher.Add(j1.get(), kT0);
  ASSERT_TRUE(batcher.Park(r.generation));
  EXPECT_TRUE(batcher.Remove(j1.get()));
  EXPECT_FALSE(batcher.parked());
  DynamicBatcher::AddResult r2 = batcher.Add(j2.get(), kT0);
  EXPECT_TRUE(r2.arm_timer);  // a fresh batch with its own delay
  EXPECT_TRUE(batcher.TakeParked().empty());
  EXPECT_EQ(batcher.TakeAll().size(), 1u);
}

// Verifies the row limit (the memory engine's optimal batch size): it
// lowers the maximum and the target, and 0 lifts it.
TEST(DynamicBatcherTest, RowLimitCapsMaximumAndTarget) {
  auto model = std::make_shared<TestModel>("m", 16);
  BatchingPolicy policy;
  policy.preferred_batch_sizes = {8};
  DynamicBatcher batcher(policy, 16);
  EXPECT_EQ(batcher.max_rows(), 16);
  EXPECT_EQ(batcher.target_rows(), 8);
  batcher.SetRowLimit(3);
  EXPECT_EQ(batcher.max_rows(), 3);
  EXPECT_EQ(batcher.target_rows(), 3);
  TestCall c1(model, 2, 2, 0), c2(model, 2, 2, 0), c3(model, 1, 2, 0);
  auto j1 = MakeJob(c1), j2 = MakeJob(c2), j3 = MakeJob(c3);
  EXPECT_TRUE(batcher.Add(j1.get(), kT0).ready.empty());
  DynamicBatcher::AddResult r = batcher.Add(j2.get(), kT0);  // 4 rows would pass 3
  ASSERT_EQ(r.ready.size(), 1u);
  EXPECT_EQ(Rows(r.ready[0]), (std::vector<int64_t>{2}));
  DynamicBatcher::AddResult r3 = batcher.Add(j3.get(), kT0);  // 3 rows: the target
  ASSERT_EQ(r3.ready.size(), 1u);
  EXPECT_EQ(Rows(r3.ready[0]), (std::vector<int64_t>{2, 1}));
  batcher.SetRowLimit(100);  // above the policy's maximum: no effect
  EXPECT_EQ(batcher.max_rows(), 16);
  batcher.SetRowLimit(0);
  EXPECT_EQ(batcher.target_rows(), 8);
}

}  // namespace
}  // namespace inferd
