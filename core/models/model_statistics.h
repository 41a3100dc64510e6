// ModelStatistics: the cumulative inference statistics of one loaded model,
// in the terms of the KServe v2 / Triton statistics extension (the
// ModelStatistics RPC): request success and failure counts and durations,
// queue and compute phases, inference and execution counts, the time of the
// last inference, and per-batch-size execution figures.
//
// Recorded from the execution path (core/infer/device_execution.cc records
// executions; the submitter that completes a request records the request),
// so every backend and every way in (ModelInfer, ModelStreamInfer, Scheduler
// tasks) is counted. Each loaded model owns one (Model::statistics()); a
// reload starts from zero, as Triton does.
//
// Thread-safety: thread-safe. Recording is lock-free (relaxed atomics)
// except the first execution of a batch size above kTrackedBatchSizes,
// which takes a mutex once to add that size.
#ifndef INFERD_CORE_MODELS_MODEL_STATISTICS_H_
#define INFERD_CORE_MODELS_MODEL_STATISTICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace inferd {

// How long one execution's phases took (nanoseconds): copying inputs to
// the device, running the model, copying outputs back.
struct ExecutionTiming {
  int64_t compute_input_ns = 0;
  int64_t compute_infer_ns = 0;
  int64_t compute_output_ns = 0;
};

// A count and a cumulative duration, as the protocol's StatisticDuration.
struct StatDuration {
  uint64_t count = 0;
  uint64_t ns = 0;
};

// A consistent-enough copy of the counters (each field is read atomically;
// fields recorded concurrently with the snapshot may be one event apart).
struct ModelStatisticsSnapshot {
  uint64_t last_inference_ms = 0;  // ms since the Unix epoch; 0 = never
  uint64_t inference_count = 0;    // successful requests, counted in batch rows
  uint64_t execution_count = 0;    // successful model executions
  StatDuration success, fail, queue, compute_input, compute_infer, compute_output;
  struct Batch {
    uint64_t batch_size = 0;
    StatDuration compute_input, compute_infer, compute_output;
  };
  std::vector<Batch> batches;  // sizes that ran, ascending
  // Requests (successes and failures) by end-to-end duration: counts per
  // bucket of kRequestDurationBounds, not cumulative; the last is +Inf.
  std::vector<uint64_t> request_duration_buckets;
};

// Upper bounds (seconds) of the request duration buckets.
inline constexpr std::array<double, 14> kRequestDurationBounds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   5.0};

class ModelStatistics {
 public:
  // Batch sizes 1..kTrackedBatchSizes have preallocated counters.
  static constexpr int kTrackedBatchSizes = 64;

  ModelStatistics();
  ModelStatistics(const ModelStatistics&) = delete;
  ModelStatistics& operator=(const ModelStatistics&) = delete;

  // A request completed successfully: `rows` inferences (its batch rows, 1
  // for a model that does not batch), `total` from arrival to completion,
  // `queue` waiting before it ran, `timing` of the execution it rode in.
  void RecordSuccess(int64_t rows, absl::Duration total, absl::Duration queue,
                     const ExecutionTiming& timing, absl::Time now);
  // A request failed (validation, queue full, timeout, device error,
  // cancellation) after `total`.
  void RecordFailure(absl::Duration total, absl::Time now);
  // A model execution of `batch_size` rows succeeded.
  void RecordExecution(int64_t batch_size, const ExecutionTiming& timing);

  ModelStatisticsSnapshot Snapshot() const;

  // Requests of this model the scheduler holds now, queued or running
  // (inferd_model_pending_requests). Not part of the protocol's statistics.
  void AddPending(int64_t delta) { pending_.fetch_add(delta, std::memory_order_relaxed); }
  int64_t pending() const { return pending_.load(std::memory_order_relaxed); }

 private:
  struct Counter {
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> ns{0};
    void Add(int64_t ns_value);
    StatDuration Load() const;
  };
  struct BatchCounters {
    Counter compute_input, compute_infer, compute_output;
  };
  BatchCounters* ForBatchSize(int64_t batch_size);

  std::atomic<int64_t> last_inference_ms_{0};
  std::atomic<uint64_t> inference_count_{0};
  std::atomic<uint64_t> execution_count_{0};
  std::atomic<int64_t> pending_{0};
  Counter success_, fail_, queue_, compute_input_, compute_infer_, compute_output_;
  std::array<BatchCounters, kTrackedBatchSizes> small_batches_;
  std::array<std::atomic<uint64_t>, kRequestDurationBounds.size() + 1> duration_buckets_{};
  void AddDuration(absl::Duration total);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<int64_t, std::unique_ptr<BatchCounters>> large_batches_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_MODEL_STATISTICS_H_
