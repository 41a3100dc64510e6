#include "core/models/model_statistics.h"

#include <algorithm>

namespace inferd {
namespace {

uint64_t NonNegative(int64_t v) { return v > 0 ? static_cast<uint64_t>(v) : 0; }

}  // namespace

ModelStatistics::ModelStatistics() = default;

void ModelStatistics::Counter::Add(int64_t ns_value) {
  count.fetch_add(1, std::memory_order_relaxed);
  ns.fetch_add(NonNegative(ns_value), std::memory_order_relaxed);
}

StatDuration ModelStatistics::Counter::Load() const {
  return StatDuration{count.load(std::memory_order_relaxed), ns.load(std::memory_order_relaxed)};
}

void ModelStatistics::AddDuration(absl::Duration total) {
  const double seconds = absl::ToDoubleSeconds(total);
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(kRequestDurationBounds.begin(), kRequestDurationBounds.end(), seconds) -
      kRequestDurationBounds.begin());
  duration_buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
}

void ModelStatistics::RecordSuccess(int64_t rows, absl::Duration total, absl::Duration queue,
                                    const ExecutionTiming& timing, absl::Time now) {
  inference_count_.fetch_add(NonNegative(std::max<int64_t>(rows, 1)), std::memory_order_relaxed);
  success_.Add(absl::ToInt64Nanoseconds(total));
  AddDuration(total);
  queue_.Add(absl::ToInt64Nanoseconds(queue));
  compute_input_.Add(timing.compute_input_ns);
  compute_infer_.Add(timing.compute_infer_ns);
  compute_output_.Add(timing.compute_output_ns);
  last_inference_ms_.store(absl::ToUnixMillis(now), std::memory_order_relaxed);
}

void ModelStatistics::RecordFailure(absl::Duration total, absl::Time now) {
  fail_.Add(absl::ToInt64Nanoseconds(total));
  AddDuration(total);
  last_inference_ms_.store(absl::ToUnixMillis(now), std::memory_order_relaxed);
}

ModelStatistics::BatchCounters* ModelStatistics::ForBatchSize(int64_t batch_size) {
  if (batch_size >= 1 && batch_size <= kTrackedBatchSizes) return &small_batches_[batch_size - 1];
  absl::MutexLock lock(&mu_);
  std::unique_ptr<BatchCounters>& slot = large_batches_[batch_size];
  if (slot == nullptr) slot = std::make_unique<BatchCounters>();
  return slot.get();
}

void ModelStatistics::RecordExecution(int64_t batch_size, const ExecutionTiming& timing) {
  execution_count_.fetch_add(1, std::memory_order_relaxed);
  BatchCounters* b = ForBatchSize(std::max<int64_t>(batch_size, 1));
  b->compute_input.Add(timing.compute_input_ns);
  b->compute_infer.Add(timing.compute_infer_ns);
  b->compute_output.Add(timing.compute_output_ns);
}

ModelStatisticsSnapshot ModelStatistics::Snapshot() const {
  ModelStatisticsSnapshot s;
  s.last_inference_ms = NonNegative(last_inference_ms_.load(std::memory_order_relaxed));
  s.inference_count = inference_count_.load(std::memory_order_relaxed);
  s.execution_count = execution_count_.load(std::memory_order_relaxed);
  s.success = success_.Load();
  s.fail = fail_.Load();
  s.queue = queue_.Load();
  s.compute_input = compute_input_.Load();
  s.compute_infer = compute_infer_.Load();
  s.compute_output = compute_output_.Load();
  s.request_duration_buckets.reserve(duration_buckets_.size());
  for (const auto& b : duration_buckets_) {
    s.request_duration_buckets.push_back(b.load(std::memory_order_relaxed));
  }
  auto add = [&s](int64_t size, const BatchCounters& b) {
    ModelStatisticsSnapshot::Batch out;
    out.batch_size = static_cast<uint64_t>(size);
    out.compute_input = b.compute_input.Load();
    out.compute_infer = b.compute_infer.Load();
    out.compute_output = b.compute_output.Load();
    if (out.compute_infer.count > 0) s.batches.push_back(out);
  };
  for (int i = 0; i < kTrackedBatchSizes; ++i) add(i + 1, small_batches_[i]);
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [size, b] : large_batches_) add(size, *b);
  }
  std::sort(s.batches.begin(), s.batches.end(),
            [](const auto& a, const auto& b) { return a.batch_size < b.batch_size; });
  return s;
}

}  // namespace inferd
