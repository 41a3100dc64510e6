#include "core/scaling/workload_window.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace inferd {
namespace {

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(24);

TEST(WorkloadWindowTest, AggregatesMeanMinMaxP99AndCv) {
  WorkloadWindow window({absl::Minutes(5), absl::Seconds(1)});
  for (int i = 1; i <= 100; ++i) {
    window.Add(WorkloadMetric::kQueueLength, kT0 + absl::Seconds(i), i);
  }
  const WindowAggregate agg =
      window.Aggregate(WorkloadMetric::kQueueLength, kT0 + absl::Seconds(100), absl::Minutes(5));
  EXPECT_EQ(agg.count, 100);
  EXPECT_DOUBLE_EQ(agg.mean, 50.5);
  EXPECT_DOUBLE_EQ(agg.min, 1);
  EXPECT_DOUBLE_EQ(agg.max, 100);
  EXPECT_DOUBLE_EQ(agg.p99, 99);  // nearest rank: ceil(0.99 * 100) = 99th
  // Population stddev of 1..100 is sqrt((100^2 - 1) / 12).
  EXPECT_NEAR(agg.stddev, std::sqrt(9999.0 / 12.0), 1e-9);
  EXPECT_NEAR(agg.cv, agg.stddev / 50.5, 1e-12);
  EXPECT_EQ(agg.oldest, kT0 + absl::Seconds(1));
  EXPECT_EQ(agg.newest, kT0 + absl::Seconds(100));
}

// Verifies that a span of d ending at now covers samples in (now - d, now].
TEST(WorkloadWindowTest, SpanCoversOnlyTheRecentSamples) {
  WorkloadWindow window({absl::Minutes(5), absl::Seconds(1)});
  for (int i = 1; i <= 60; ++i) {
    window.Add(WorkloadMetric::kThroughput, kT0 + absl::Seconds(i), i <= 50 ? 0.0 : 10.0);
  }
  const WindowAggregate last10 =
      window.Aggregate(WorkloadMetric::kThroughput, kT0 + absl::Seconds(60), absl::Seconds(10));
  EXPECT_EQ(last10.count, 10);
  EXPECT_DOUBLE_EQ(last10.mean, 10.0);
  EXPECT_DOUBLE_EQ(last10.cv, 0.0);
  const WindowAggregate last11 =
      window.Aggregate(WorkloadMetric::kThroughput, kT0 + absl::Seconds(60), absl::Seconds(11));
  EXPECT_EQ(last11.count, 11);
  EXPECT_DOUBLE_EQ(last11.min, 0.0);
}

TEST(WorkloadWindowTest, EmptySpanAggregatesToZeroCount) {
  WorkloadWindow window;
  window.Add(WorkloadMetric::kQueueLength, kT0, 5);
  const WindowAggregate agg =
      window.Aggregate(WorkloadMetric::kQueueLength, kT0 + absl::Minutes(1), absl::Seconds(10));
  EXPECT_EQ(agg.count, 0);
  EXPECT_EQ(agg.mean, 0.0);
  EXPECT_EQ(window.Aggregate(WorkloadMetric::kUtilization, kT0, absl::Seconds(10)).count, 0);
}

TEST(WorkloadWindowTest, DropsSamplesOlderThanTheWindow) {
  WorkloadWindow window({absl::Seconds(10), absl::Seconds(1)});
  for (int i = 0; i < 100; ++i) {
    window.Add(WorkloadMetric::kQueueLength, kT0 + absl::Seconds(i), i);
  }
  const WindowAggregate agg =
      window.Aggregate(WorkloadMetric::kQueueLength, kT0 + absl::Seconds(99), absl::Hours(1));
  EXPECT_EQ(agg.count, 10);  // the span is capped at the window length
  EXPECT_DOUBLE_EQ(agg.min, 90);
  // A late sample older than the window is ignored.
  window.Add(WorkloadMetric::kQueueLength, kT0, 1000);
  EXPECT_DOUBLE_EQ(
      window.Aggregate(WorkloadMetric::kQueueLength, kT0 + absl::Seconds(99), absl::Hours(1)).max,
      99);
}

// Verifies that memory stays bounded by length / resolution buckets per
// series however fast a source feeds the window.
TEST(WorkloadWindowTest, MemoryIsBoundedUnderAFastSource) {
  WorkloadWindow window({absl::Seconds(10), absl::Seconds(1)});
  for (int i = 0; i < 100000; ++i) {
    const absl::Time t = kT0 + absl::Milliseconds(i);
    window.Add(WorkloadMetric::kQueueLength, t, i % 7);
    window.AddDevice(0, WorkloadMetric::kUtilization, t, 0.5);
  }
  EXPECT_LE(window.BucketCount(), 2u * 10u);
  const WindowAggregate agg = window.Aggregate(WorkloadMetric::kQueueLength,
                                               kT0 + absl::Milliseconds(99999), absl::Seconds(10));
  EXPECT_EQ(agg.count, 10000);
}

TEST(WorkloadWindowTest, ShrinkingTheLengthDropsOldBuckets) {
  WorkloadWindow window({absl::Seconds(60), absl::Seconds(1)});
  for (int i = 0; i < 60; ++i) {
    window.Add(WorkloadMetric::kQueueLength, kT0 + absl::Seconds(i), 1);
  }
  EXPECT_EQ(window.BucketCount(), 60u);
  window.SetLength(absl::Seconds(5));
  window.Add(WorkloadMetric::kQueueLength, kT0 + absl::Seconds(60), 1);
  EXPECT_EQ(window.BucketCount(), 5u);
}

TEST(WorkloadWindowTest, CvIsZeroForConstantAndInfiniteAroundZeroMean) {
  WorkloadWindow window;
  for (int i = 0; i < 10; ++i) {
    window.Add(WorkloadMetric::kUtilization, kT0 + absl::Seconds(i), 0.7);
    window.Add(WorkloadMetric::kThroughput, kT0 + absl::Seconds(i), i % 2 == 0 ? 0.0 : -0.0);
  }
  const absl::Time now = kT0 + absl::Seconds(9);
  EXPECT_EQ(window.Aggregate(WorkloadMetric::kUtilization, now, absl::Minutes(1)).cv, 0.0);
  EXPECT_EQ(window.Aggregate(WorkloadMetric::kThroughput, now, absl::Minutes(1)).cv, 0.0);

  WorkloadWindow signed_window;
  signed_window.Add(WorkloadMetric::kQueueLength, kT0, -1);
  signed_window.Add(WorkloadMetric::kQueueLength, kT0 + absl::Seconds(1), 1);
  EXPECT_EQ(signed_window
                .Aggregate(WorkloadMetric::kQueueLength, kT0 + absl::Seconds(1), absl::Minutes(1))
                .cv,
            std::numeric_limits<double>::infinity());
}

TEST(WorkloadWindowTest, SamplesInOneBucketAreFolded) {
  WorkloadWindow window;
  window.Add(WorkloadMetric::kQueueLength, kT0, 2);
  window.Add(WorkloadMetric::kQueueLength, kT0 + absl::Milliseconds(500), 4);
  // Out of order but inside the window: goes into its own bucket.
  window.Add(WorkloadMetric::kQueueLength, kT0 - absl::Seconds(3), 10);
  const WindowAggregate agg = window.Aggregate(WorkloadMetric::kQueueLength,
                                               kT0 + absl::Milliseconds(500), absl::Minutes(1));
  EXPECT_EQ(agg.count, 3);
  EXPECT_DOUBLE_EQ(agg.mean, 16.0 / 3);
  EXPECT_DOUBLE_EQ(agg.p99, 10);  // bucket means are 10 and 3
  EXPECT_EQ(window.BucketCount(), 2u);
}

// Verifies that the slice CV sees level shifts between slices but not
// jitter inside them.
TEST(WorkloadWindowTest, SliceMeansCvIgnoresJitterWithinSlices) {
  WorkloadWindow window;
  const absl::Time now = kT0 + absl::Seconds(40);
  for (int i = 1; i <= 40; ++i) {
    const absl::Time t = kT0 + absl::Seconds(i);
    window.Add(WorkloadMetric::kQueueLength, t, i % 2 == 0 ? 0.0 : 20.0);
    window.Add(WorkloadMetric::kThroughput, t, i <= 20 ? 10.0 : 30.0);
  }
  EXPECT_GT(window.Aggregate(WorkloadMetric::kQueueLength, now, absl::Seconds(40)).cv, 0.9);
  EXPECT_DOUBLE_EQ(
      window.SliceMeansCv(WorkloadMetric::kQueueLength, now, absl::Seconds(40), absl::Seconds(10)),
      0.0);
  // Slice means 30, 30, 10, 10: mean 20, stddev 10.
  EXPECT_DOUBLE_EQ(
      window.SliceMeansCv(WorkloadMetric::kThroughput, now, absl::Seconds(40), absl::Seconds(10)),
      0.5);
  // One slice: nothing to compare.
  EXPECT_EQ(
      window.SliceMeansCv(WorkloadMetric::kThroughput, now, absl::Seconds(10), absl::Seconds(10)),
      0.0);
}

TEST(WorkloadWindowTest, DeviceSeriesAreSeparate) {
  WorkloadWindow window;
  window.AddDevice(0, WorkloadMetric::kUtilization, kT0, 0.2);
  window.AddDevice(1, WorkloadMetric::kUtilization, kT0, 0.8);
  window.AddDevice(1, WorkloadMetric::kMemoryUsed, kT0, 0.5);
  window.AddDevice(1, WorkloadMetric::kQueueLength, kT0, 9);  // ignored
  EXPECT_DOUBLE_EQ(
      window.AggregateDevice(0, WorkloadMetric::kUtilization, kT0, absl::Minutes(1)).mean, 0.2);
  EXPECT_DOUBLE_EQ(
      window.AggregateDevice(1, WorkloadMetric::kMemoryUsed, kT0, absl::Minutes(1)).mean, 0.5);
  EXPECT_EQ(window.AggregateDevice(1, WorkloadMetric::kQueueLength, kT0, absl::Minutes(1)).count,
            0);
  EXPECT_EQ(window.Aggregate(WorkloadMetric::kUtilization, kT0, absl::Minutes(1)).count, 0);
}

TEST(WorkloadWindowTest, MetricNamesRoundTrip) {
  for (int i = 0; i < kNumWorkloadMetrics; ++i) {
    const auto metric = static_cast<WorkloadMetric>(i);
    WorkloadMetric parsed;
    ASSERT_TRUE(ParseWorkloadMetric(WorkloadMetricName(metric), &parsed));
    EXPECT_EQ(parsed, metric);
  }
  WorkloadMetric parsed;
  EXPECT_FALSE(ParseWorkloadMetric("gpu_temperature", &parsed));
  EXPECT_EQ(WorkloadMetricName(WorkloadMetric::kQueueLengthPerDevice), "queue_length_per_device");
}

}  // namespace
}  // namespace inferd
