// SchedulerMetrics: the scheduler's Prometheus metrics, a typed struct of
// prometheus-cpp references built from a registry the caller owns (main's,
// or a private one in tests). Names follow inferd_scheduler_<what>_<unit>;
// labels are bounded (priority: 5 values, outcome: 4, device: the devices,
// model: the loaded models).
//
//   inferd_scheduler_queue_length{priority}            gauge (sampled every second)
//   inferd_scheduler_running_tasks{device}              gauge (sampled every second)
//   inferd_scheduler_device_healthy{device}             gauge 1/0
//   inferd_scheduler_tasks_completed_total{model,priority,outcome}
//   inferd_scheduler_queue_duration_seconds{model,priority}      histogram
//   inferd_scheduler_execution_duration_seconds{model,priority}  histogram
//   inferd_scheduler_batch_size{model}                  histogram (requests)
//   inferd_scheduler_retries_total                      counter
//   inferd_scheduler_preemptions_total                  counter (running work requeued)
//   inferd_scheduler_rejected_total{priority}           counter (queue full)
#ifndef INFERD_CORE_SCHED_SCHEDULER_METRICS_H_
#define INFERD_CORE_SCHED_SCHEDULER_METRICS_H_

#include <array>
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
  // The series of one model, created on first use and kept.
  struct Model {
    std::array<std::array<prometheus::Counter*, kNumOutcomes>, kNumPriorities> completed{};
    std::array<prometheus::Histogram*, kNumPriorities> queue_duration{};
    std::array<prometheus::Histogram*, kNumPriorities> execution_duration{};
    prometheus::Histogram* batch_size = nullptr;
  };

  // `devices`: DeviceInfo::index of every device.
  SchedulerMetrics(prometheus::Registry& registry, const std::vector<int>& devices);

  // Returns the series of `model` (stable pointer).
  Model* ForModel(absl::string_view model);

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
  std::vector<prometheus::Gauge*> running_;
  std::vector<prometheus::Gauge*> healthy_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Model>> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_SCHEDULER_METRICS_H_
