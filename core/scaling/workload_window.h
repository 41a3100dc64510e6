// WorkloadWindow: a time-bounded sliding window of workload samples (queue
// length, processing time, throughput, device utilization and memory) that
// the dynamic scaler reads its rules from. Samples are folded into buckets of
// a fixed resolution, so memory is bounded by length / resolution buckets per
// series however fast the sources feed it.
#ifndef INFERD_CORE_SCALING_WORKLOAD_WINDOW_H_
#define INFERD_CORE_SCALING_WORKLOAD_WINDOW_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace inferd {

// What a scaling rule can look at.
enum class WorkloadMetric {
  kQueueLength = 0,           // tasks waiting in the daemon
  kProcessingTime = 1,        // seconds per task
  kThroughput = 2,            // tasks completed per second
  kUtilization = 3,           // busy fraction 0..1 (fleet: mean over active)
  kMemoryUsed = 4,            // used memory fraction 0..1 (fleet: mean over active)
  kQueueLengthPerDevice = 5,  // queue_length / active devices when sampled
};
inline constexpr int kNumWorkloadMetrics = 6;

// Returns the config/wire name: "queue_length", "processing_time",
// "throughput", "utilization", "memory_used", "queue_length_per_device".
absl::string_view WorkloadMetricName(WorkloadMetric metric);
// Parses a name written by WorkloadMetricName; false when unknown.
bool ParseWorkloadMetric(absl::string_view name, WorkloadMetric* out);

// Statistics of one series over a span of the window.
struct WindowAggregate {
  int64_t count = 0;  // samples in the span; all fields below are 0 when 0
  double mean = 0.0;
  double min = 0.0;
  double max = 0.0;
  // Nearest-rank p99 of the per-bucket means (exact when each bucket holds
  // at most one sample, i.e. sources sample no faster than the resolution).
  double p99 = 0.0;
  double stddev = 0.0;  // population standard deviation of the samples
  // Coefficient of variation, stddev / |mean|: 0 when all samples are equal,
  // +infinity when the mean is 0 but the samples differ.
  double cv = 0.0;
  absl::Time oldest = absl::InfinitePast();  // start of the oldest bucket used
  absl::Time newest = absl::InfinitePast();  // start of the newest bucket used
};

struct WindowOptions {
  absl::Duration length = absl::Minutes(5);      // how far back samples are kept
  absl::Duration resolution = absl::Seconds(1);  // bucket width
};

// Keeps one series per WorkloadMetric for the whole daemon, plus per-device
// utilization and memory series. Time comes from the caller (the scaler's
// injected Clock). A span of `d` ending at `now` covers the buckets whose
// start lies in (now - d, now], so it is exact to the resolution.
//
// Thread-compatible: the owner (DynamicScaler) serializes access.
class WorkloadWindow {
 public:
  // Requires resolution > 0 and length >= resolution (checked).
  explicit WorkloadWindow(WindowOptions options = {});

  // Adds a daemon-wide sample. Samples older than the window (relative to
  // the newest sample of the series) are dropped; NaN values are dropped.
  void Add(WorkloadMetric metric, absl::Time time, double value);
  // Adds a sample of one device's kUtilization or kMemoryUsed (other
  // metrics are ignored).
  void AddDevice(int device, WorkloadMetric metric, absl::Time time, double value);

  // Aggregates the last `span` (capped at the window length) up to `now`.
  WindowAggregate Aggregate(WorkloadMetric metric, absl::Time now, absl::Duration span) const;
  WindowAggregate AggregateDevice(int device, WorkloadMetric metric, absl::Time now,
                                  absl::Duration span) const;

  // Returns the coefficient of variation of the means of consecutive
  // `slice`-long slices of the last `span` (slice j covers
  // (now - (j+1)*slice, now - j*slice]; empty slices are skipped): how much
  // the level moved between slices, ignoring jitter that averages out within
  // one. 0 with fewer than two non-empty slices; +infinity when the means
  // differ around a zero mean.
  double SliceMeansCv(WorkloadMetric metric, absl::Time now, absl::Duration span,
                      absl::Duration slice) const;

  // Changes the window length (requires length >= resolution); shrinking
  // drops the older buckets at the next Add.
  void SetLength(absl::Duration length);
  absl::Duration length() const { return options_.length; }
  absl::Duration resolution() const { return options_.resolution; }

  // Returns how many buckets are held in all series (for memory tests).
  size_t BucketCount() const;

 private:
  struct Bucket {
    int64_t index = 0;  // start = UnixEpoch + index * resolution
    int64_t count = 0;
    double sum = 0.0;
    double sum_sq = 0.0;
    double min = 0.0;
    double max = 0.0;
  };
  using Series = std::deque<Bucket>;  // ascending index, no duplicates

  int64_t BucketIndex(absl::Time t) const;
  int64_t MaxBuckets() const;
  void AddTo(Series& series, absl::Time time, double value);
  WindowAggregate AggregateSeries(const Series& series, absl::Time now, absl::Duration span) const;

  WindowOptions options_;
  std::array<Series, kNumWorkloadMetrics> fleet_;
  // device -> [utilization, memory_used]
  std::map<int, std::array<Series, 2>> devices_;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_WORKLOAD_WINDOW_H_
