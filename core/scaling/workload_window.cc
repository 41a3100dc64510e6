#include "core/scaling/workload_window.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "core/util/check.h"

namespace inferd {
namespace {

constexpr std::array<absl::string_view, kNumWorkloadMetrics> kMetricNames = {
    "queue_length", "processing_time", "throughput",
    "utilization",  "memory_used",     "queue_length_per_device"};

// Index of the per-device series for a metric, or -1.
int DeviceSlot(WorkloadMetric metric) {
  switch (metric) {
    case WorkloadMetric::kUtilization:
      return 0;
    case WorkloadMetric::kMemoryUsed:
      return 1;
    default:
      return -1;
  }
}

}  // namespace

absl::string_view WorkloadMetricName(WorkloadMetric metric) {
  const int i = static_cast<int>(metric);
  if (i < 0 || i >= kNumWorkloadMetrics) return "unknown";
  return kMetricNames[i];
}

bool ParseWorkloadMetric(absl::string_view name, WorkloadMetric* out) {
  for (int i = 0; i < kNumWorkloadMetrics; ++i) {
    if (kMetricNames[i] == name) {
      *out = static_cast<WorkloadMetric>(i);
      return true;
    }
  }
  return false;
}

WorkloadWindow::WorkloadWindow(WindowOptions options) : options_(options) {
  INFERD_CHECK(options_.resolution > absl::ZeroDuration());
  INFERD_CHECK(options_.length >= options_.resolution);
}

int64_t WorkloadWindow::BucketIndex(absl::Time t) const {
  const absl::Duration since = t - absl::UnixEpoch();
  absl::Duration rem;
  int64_t q = absl::IDivDuration(since, options_.resolution, &rem);
  if (rem < absl::ZeroDuration()) --q;  // floor for times before the epoch
  return q;
}

int64_t WorkloadWindow::MaxBuckets() const {
  absl::Duration rem;  // this abseil's IDivDuration needs a remainder slot
  return absl::IDivDuration(options_.length, options_.resolution, &rem);
}

void WorkloadWindow::SetLength(absl::Duration length) {
  INFERD_CHECK(length >= options_.resolution);
  options_.length = length;
}

void WorkloadWindow::AddTo(Series& series, absl::Time time, double value) {
  if (std::isnan(value)) return;
  const int64_t index = BucketIndex(time);
  const int64_t newest = series.empty() ? index : std::max(index, series.back().index);
  const int64_t oldest_kept = newest - MaxBuckets() + 1;
  if (index < oldest_kept) return;

  auto it = std::lower_bound(series.begin(), series.end(), index,
                             [](const Bucket& b, int64_t i) { return b.index < i; });
  if (it == series.end() || it->index != index) {
    Bucket b;
    b.index = index;
    b.min = value;
    b.max = value;
    it = series.insert(it, b);
  }
  it->count += 1;
  it->sum += value;
  it->sum_sq += value * value;
  it->min = std::min(it->min, value);
  it->max = std::max(it->max, value);

  while (!series.empty() && series.front().index < oldest_kept) {
    series.pop_front();
  }
}

void WorkloadWindow::Add(WorkloadMetric metric, absl::Time time, double value) {
  const int i = static_cast<int>(metric);
  if (i < 0 || i >= kNumWorkloadMetrics) return;
  AddTo(fleet_[i], time, value);
}

void WorkloadWindow::AddDevice(int device, WorkloadMetric metric, absl::Time time, double value) {
  const int slot = DeviceSlot(metric);
  if (slot < 0) return;
  AddTo(devices_[device][slot], time, value);
}

WindowAggregate WorkloadWindow::AggregateSeries(const Series& series, absl::Time now,
                                                absl::Duration span) const {
  WindowAggregate agg;
  if (span > options_.length) span = options_.length;
  if (span <= absl::ZeroDuration()) return agg;
  // Buckets whose start lies in (now - span, now].
  const int64_t last = BucketIndex(now);
  const absl::Time lower = now - span;
  double sum = 0.0;
  double sum_sq = 0.0;
  std::vector<double> means;
  for (size_t k = series.size(); k-- > 0;) {  // newest first
    const Bucket& b = series[k];
    if (b.index > last) continue;
    const absl::Time start = absl::UnixEpoch() + b.index * options_.resolution;
    if (start <= lower) break;
    if (agg.count == 0) {
      agg.min = b.min;
      agg.max = b.max;
      agg.newest = start;
    }
    agg.oldest = start;
    agg.count += b.count;
    sum += b.sum;
    sum_sq += b.sum_sq;
    agg.min = std::min(agg.min, b.min);
    agg.max = std::max(agg.max, b.max);
    means.push_back(b.sum / static_cast<double>(b.count));
  }
  if (agg.count == 0) return agg;
  const auto n = static_cast<double>(agg.count);
  agg.mean = sum / n;
  const double var = std::max(0.0, sum_sq / n - agg.mean * agg.mean);
  agg.stddev = std::sqrt(var);
  // Rounding leaves a tiny variance for equal samples; treat as none.
  const double tolerance = 1e-12 * std::max(1.0, agg.mean * agg.mean);
  if (var <= tolerance || agg.max == agg.min) {
    agg.stddev = 0.0;
    agg.cv = 0.0;
  } else if (agg.mean == 0.0) {
    agg.cv = std::numeric_limits<double>::infinity();
  } else {
    agg.cv = agg.stddev / std::fabs(agg.mean);
  }
  std::sort(means.begin(), means.end());
  const auto rank = static_cast<size_t>(std::ceil(0.99 * static_cast<double>(means.size())));
  agg.p99 = means[std::max<size_t>(rank, 1) - 1];
  return agg;
}

WindowAggregate WorkloadWindow::Aggregate(WorkloadMetric metric, absl::Time now,
                                          absl::Duration span) const {
  const int i = static_cast<int>(metric);
  if (i < 0 || i >= kNumWorkloadMetrics) return {};
  return AggregateSeries(fleet_[i], now, span);
}

WindowAggregate WorkloadWindow::AggregateDevice(int device, WorkloadMetric metric, absl::Time now,
                                                absl::Duration span) const {
  const int slot = DeviceSlot(metric);
  auto it = devices_.find(device);
  if (slot < 0 || it == devices_.end()) return {};
  return AggregateSeries(it->second[slot], now, span);
}

double WorkloadWindow::SliceMeansCv(WorkloadMetric metric, absl::Time now, absl::Duration span,
                                    absl::Duration slice) const {
  const int i = static_cast<int>(metric);
  if (i < 0 || i >= kNumWorkloadMetrics) return 0.0;
  if (span > options_.length) span = options_.length;
  if (span <= absl::ZeroDuration() || slice <= absl::ZeroDuration()) {
    return 0.0;
  }
  const Series& series = fleet_[i];
  const int64_t last = BucketIndex(now);
  const absl::Time lower = now - span;
  std::map<int64_t, std::pair<double, int64_t>> slices;  // j -> (sum, count)
  for (size_t k = series.size(); k-- > 0;) {             // newest first
    const Bucket& b = series[k];
    if (b.index > last) continue;
    const absl::Time start = absl::UnixEpoch() + b.index * options_.resolution;
    if (start <= lower) break;
    // Starts in (now - (j+1)*slice, now - j*slice] belong to slice j.
    absl::Duration rem;
    const int64_t j = absl::IDivDuration(now - start, slice, &rem);
    auto& [sum, count] = slices[j];
    sum += b.sum;
    count += b.count;
  }
  if (slices.size() < 2) return 0.0;
  double total = 0.0;
  double total_sq = 0.0;
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  for (const auto& [j, sc] : slices) {
    const double mean = sc.first / static_cast<double>(sc.second);
    total += mean;
    total_sq += mean * mean;
    lo = std::min(lo, mean);
    hi = std::max(hi, mean);
  }
  const auto n = static_cast<double>(slices.size());
  const double mean = total / n;
  if (hi == lo) return 0.0;
  const double var = std::max(0.0, total_sq / n - mean * mean);
  if (mean == 0.0) return std::numeric_limits<double>::infinity();
  return std::sqrt(var) / std::fabs(mean);
}

size_t WorkloadWindow::BucketCount() const {
  size_t n = 0;
  for (const Series& s : fleet_) n += s.size();
  for (const auto& [device, series] : devices_) {
    n += series[0].size() + series[1].size();
  }
  return n;
}

}  // namespace inferd
