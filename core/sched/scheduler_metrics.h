// SchedulerMetrics: the scheduler's Prometheus metrics, a typed struct of
// prometheus-cpp references built from a registry the caller owns (main's,
// or a private one in tests). Names follow inferd_scheduler_<what>_<unit>;
// labels are bounded, and priority is a label only where it pays (queue
// length and wait, refusals, outcomes): per-model histograms are by model
// alone (docs/METRICS.md states the series counts).
//
//   inferd_scheduler_queue_length{priority}            gauge (sampled every second)
//   inferd_scheduler_running_tasks{device}              gauge (sampled every second)
//   inferd_scheduler_device_healthy{device}             gauge 1/0
//   inferd_scheduler_tasks_completed_total{model,priority,outcome}  (created as they occur)
//   inferd_scheduler_queue_duration_seconds{priority}   histogram
//   inferd_scheduler_execution_duration_seconds{model}  histogram
//   inferd_scheduler_batch_size{model}                  histogram (requests)
//   inferd_scheduler_retries_total                      counter
//   inferd_scheduler_preemptions_total                  counter (running work requeued)
//   inferd_scheduler_rejected_total{priority}           counter (queue full)
//
// The series of a model no longer loaded leave the registry once no job
// holds them (RemoveUnloaded, called by the scheduler's upkeep).
#ifndef INFERD_CORE_SCHED_SCHEDULER_METRICS_H_
#define INFERD_CORE_SCHED_SCHEDULER_METRICS_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/infer/infer_request.h"
#include "core/sched/task.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace inferd {

// Thread-safe. Must not outlive the registry.
class SchedulerMetrics {
 public:
  // The series of one model. A job holds one reference from ForModel to
  // Release; the series stay while any reference is held.
  struct Model {
    std::string name;
    prometheus::Histogram* execution_duration = nullptr;
    prometheus::Histogram* batch_size = nullptr;
    // Created on first use (CountCompleted).
    std::array<std::array<std::atomic<prometheus::Counter*>, kNumOutcomes>, kNumPriorities>
        completed{};
    std::atomic<int64_t> users{0};
  };

  // Upper bounds (seconds) of the duration histograms: 50 µs to 30 s, with
  // 0.1 s for the queue-time SLO (deploy/prometheus/inferd-rules.yaml).
  static const std::vector<double>& DurationBounds();

  // `devices`: DeviceInfo::index of every device.
  SchedulerMetrics(prometheus::Registry& registry, const std::vector<int>& devices);

  // Returns the series of `model` (stable pointer), creating them on first
  // use, and takes a reference the caller gives back with Release.
  Model* ForModel(absl::string_view model);
  static void Release(Model* m) {
    if (m != nullptr) m->users.fetch_sub(1, std::memory_order_acq_rel);
  }

  // One finished request or task of `m`.
  void CountCompleted(Model& m, Priority p, Outcome o);

  // Removes the series of every model for which `loaded` is false and that
  // no job holds. Returns how many models' series went.
  int RemoveUnloaded(const std::function<bool(absl::string_view)>& loaded);
  // Models with series (tests).
  int num_models() const;

  prometheus::Histogram& queue_duration(Priority p) {
    return *queue_duration_[static_cast<int>(p)];
  }
  prometheus::Gauge& queue_length(Priority p) { return *queue_length_[static_cast<int>(p)]; }
  prometheus::Counter& rejected(Priority p) { return *rejected_[static_cast<int>(p)]; }
  // By position in the device list given at construction.
  prometheus::Gauge& running(int position) { return *running_[position]; }
  prometheus::Gauge& device_healthy(int position) { return *healthy_[position]; }
  prometheus::Counter& retries() { return retries_; }
  prometheus::Counter& preemptions() { return preemptions_; }

 private:
  prometheus::Family<prometheus::Gauge>& queue_length_family_;
  prometheus::Family<prometheus::Gauge>& running_family_;
  prometheus::Family<prometheus::Gauge>& healthy_family_;
  prometheus::Family<prometheus::Counter>& completed_family_;
  prometheus::Family<prometheus::Histogram>& queue_duration_family_;
  prometheus::Family<prometheus::Histogram>& execution_duration_family_;
  prometheus::Family<prometheus::Histogram>& batch_size_family_;
  prometheus::Family<prometheus::Counter>& rejected_family_;
  prometheus::Counter& retries_;
  prometheus::Counter& preemptions_;
  std::array<prometheus::Gauge*, kNumPriorities> queue_length_{};
  std::array<prometheus::Counter*, kNumPriorities> rejected_{};
  std::array<prometheus::Histogram*, kNumPriorities> queue_duration_{};
  std::vector<prometheus::Gauge*> running_;
  std::vector<prometheus::Gauge*> healthy_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Model>> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_SCHEDULER_METRICS_H_
