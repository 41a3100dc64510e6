#include "core/models/model_statistics.h"

#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(ModelStatisticsTest, SuccessAddsCountsDurationsAndLastInference) {
  ModelStatistics stats;
  const absl::Time now = absl::FromUnixMillis(1234567);
  stats.RecordSuccess(4, absl::Microseconds(10), absl::Microseconds(3), {100, 200, 300}, now);
  stats.RecordSuccess(1, absl::Microseconds(20), absl::Microseconds(1), {1, 2, 3}, now);
  ModelStatisticsSnapshot s = stats.Snapshot();
  EXPECT_EQ(s.inference_count, 5u);
  EXPECT_EQ(s.success.count, 2u);
  EXPECT_EQ(s.success.ns, 30000u);
  EXPECT_EQ(s.queue.ns, 4000u);
  EXPECT_EQ(s.compute_infer.count, 2u);
  EXPECT_EQ(s.compute_infer.ns, 202u);
  EXPECT_EQ(s.last_inference_ms, 1234567u);
  EXPECT_EQ(s.execution_count, 0u);  // executions are recorded separately
}

TEST(ModelStatisticsTest, FailureCountsWithoutInferences) {
  ModelStatistics stats;
  stats.RecordFailure(absl::Milliseconds(1), absl::FromUnixMillis(5));
  ModelStatisticsSnapshot s = stats.Snapshot();
  EXPECT_EQ(s.fail.count, 1u);
  EXPECT_EQ(s.fail.ns, 1000000u);
  EXPECT_EQ(s.inference_count, 0u);
  EXPECT_EQ(s.last_inference_ms, 5u);
}

TEST(ModelStatisticsTest, ExecutionsGroupByBatchSizeIncludingLargeOnes) {
  ModelStatistics stats;
  stats.RecordExecution(8, {1, 2, 3});
  stats.RecordExecution(8, {1, 2, 3});
  stats.RecordExecution(1, {5, 5, 5});
  stats.RecordExecution(1000, {7, 7, 7});  // past the preallocated sizes
  ModelStatisticsSnapshot s = stats.Snapshot();
  EXPECT_EQ(s.execution_count, 4u);
  ASSERT_EQ(s.batches.size(), 3u);
  EXPECT_EQ(s.batches[0].batch_size, 1u);
  EXPECT_EQ(s.batches[1].batch_size, 8u);
  EXPECT_EQ(s.batches[1].compute_infer.count, 2u);
  EXPECT_EQ(s.batches[1].compute_output.ns, 6u);
  EXPECT_EQ(s.batches[2].batch_size, 1000u);
}

TEST(ModelStatisticsTest, NegativeDurationsCountAsZero) {
  ModelStatistics stats;
  stats.RecordExecution(1, {-5, 10, -1});
  ModelStatisticsSnapshot s = stats.Snapshot();
  EXPECT_EQ(s.batches[0].compute_input.ns, 0u);
  EXPECT_EQ(s.batches[0].compute_infer.ns, 10u);
}

// Successes and failures land in the duration bucket of their end-to-end
// time (upper bounds inclusive), beyond the last bound in +Inf.
TEST(ModelStatisticsTest, RequestDurationsFillTheirBuckets) {
  ModelStatistics stats;
  const absl::Time now = absl::FromUnixMillis(1);
  stats.RecordSuccess(1, absl::Microseconds(50), absl::ZeroDuration(), {}, now);   // <= 100us
  stats.RecordSuccess(1, absl::Microseconds(100), absl::ZeroDuration(), {}, now);  // <= 100us
  stats.RecordFailure(absl::Milliseconds(3), now);                                 // <= 5ms
  stats.RecordFailure(absl::Seconds(60), now);                                     // +Inf
  ModelStatisticsSnapshot s = stats.Snapshot();
  ASSERT_EQ(s.request_duration_buckets.size(), kRequestDurationBounds.size() + 1);
  EXPECT_EQ(s.request_duration_buckets[0], 2u);
  EXPECT_EQ(s.request_duration_buckets[5], 1u);  // (2.5ms, 5ms]
  EXPECT_EQ(s.request_duration_buckets.back(), 1u);
  uint64_t total = 0;
  for (uint64_t b : s.request_duration_buckets) total += b;
  EXPECT_EQ(total, 4u);
}

}  // namespace
}  // namespace inferd
