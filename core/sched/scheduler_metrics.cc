#include "core/sched/scheduler_metrics.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace inferd {
namespace {

// Seconds from 10 µs to 60 s; 0.1 s is the queue-time SLO's bucket
// (deploy/prometheus/inferd-rules.yaml).
const prometheus::Histogram::BucketBoundaries& DurationBuckets() {
  static const auto* const kBuckets = new prometheus::Histogram::BucketBoundaries{
      1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025,
      0.05, 0.1,  0.25, 0.5,    1.0,  2.5,  5.0,    10.0, 30.0, 60.0};
  return *kBuckets;
}

const prometheus::Histogram::BucketBoundaries& BatchBuckets() {
  static const auto* const kBuckets =
      new prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  return *kBuckets;
}

std::string Label(absl::string_view v) { return std::string(v.data(), v.size()); }

}  // namespace

SchedulerMetrics::SchedulerMetrics(prometheus::Registry& registry, const std::vector<int>& devices)
    : queue_length_family_(prometheus::BuildGauge()
                               .Name("inferd_scheduler_queue_length")
                               .Help("Requests and tasks queued for a device, by priority.")
                               .Register(registry)),
      running_family_(prometheus::BuildGauge()
                          .Name("inferd_scheduler_running_tasks")
                          .Help("Requests and tasks running on a device.")
                          .Register(registry)),
      healthy_family_(prometheus::BuildGauge()
                          .Name("inferd_scheduler_device_healthy")
                          .Help("1 while the scheduler places work on the device, 0 after "
                                "repeated failures marked it unhealthy.")
                          .Register(registry)),
      completed_family_(prometheus::BuildCounter()
                            .Name("inferd_scheduler_tasks_completed_total")
                            .Help("Finished requests and tasks, by model, priority and outcome.")
                            .Register(registry)),
      queue_duration_family_(prometheus::BuildHistogram()
                                 .Name("inferd_scheduler_queue_duration_seconds")
                                 .Help("Time from submission (or readiness, for tasks with "
                                       "dependencies) to the start of execution.")
                                 .Register(registry)),
      execution_duration_family_(prometheus::BuildHistogram()
                                     .Name("inferd_scheduler_execution_duration_seconds")
                                     .Help("Time from the start of execution to completion.")
                                     .Register(registry)),
      batch_size_family_(prometheus::BuildHistogram()
                             .Name("inferd_scheduler_batch_size")
                             .Help("Requests merged into one execution by dynamic batching.")
                             .Register(registry)),
      rejected_family_(prometheus::BuildCounter()
                           .Name("inferd_scheduler_rejected_total")
                           .Help("Submissions refused because the priority's queue was full.")
                           .Register(registry)),
      retries_(prometheus::BuildCounter()
                   .Name("inferd_scheduler_retries_total")
                   .Help("Executions retried after a device failure.")
                   .Register(registry)
                   .Add({})),
      preemptions_(prometheus::BuildCounter()
                       .Name("inferd_scheduler_preemptions_total")
                       .Help("Running BACKGROUND executions whose slot a CRITICAL task took "
                             "(their result dropped, the work queued again).")
                       .Register(registry)
                       .Add({})) {
  for (int p = 0; p < kNumPriorities; ++p) {
    const std::string label = Label(PriorityLabel(static_cast<Priority>(p)));
    queue_length_[p] = &queue_length_family_.Add({{"priority", label}});
    rejected_[p] = &rejected_family_.Add({{"priority", label}});
  }
  for (int index : devices) {
    const std::string label = absl::StrCat(index);
    running_.push_back(&running_family_.Add({{"device", label}}));
    healthy_.push_back(&healthy_family_.Add({{"device", label}}));
    healthy_.back()->Set(1);
  }
}

SchedulerMetrics::Model* SchedulerMetrics::ForModel(absl::string_view model) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = models_.find(model);
    if (it != models_.end()) return it->second.get();
  }
  absl::MutexLock lock(&mu_);
  auto& slot = models_[model];
  if (slot != nullptr) return slot.get();
  slot = std::make_unique<Model>();
  const std::string name = Label(model);
  for (int p = 0; p < kNumPriorities; ++p) {
    const std::string priority = Label(PriorityLabel(static_cast<Priority>(p)));
    for (int o = 0; o < kNumOutcomes; ++o) {
      slot->completed[p][o] =
          &completed_family_.Add({{"model", name},
                                  {"priority", priority},
                                  {"outcome", Label(OutcomeName(static_cast<Outcome>(o)))}});
    }
    slot->queue_duration[p] =
        &queue_duration_family_.Add({{"model", name}, {"priority", priority}}, DurationBuckets());
    slot->execution_duration[p] = &execution_duration_family_.Add(
        {{"model", name}, {"priority", priority}}, DurationBuckets());
  }
  slot->batch_size = &batch_size_family_.Add({{"model", name}}, BatchBuckets());
  return slot.get();
}

}  // namespace inferd
