#include "core/sched/scheduler_metrics.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace inferd {
namespace {

const prometheus::Histogram::BucketBoundaries& BatchBuckets() {
  static const auto* const kBuckets =
      new prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  return *kBuckets;
}

std::string Label(absl::string_view v) { return std::string(v.data(), v.size()); }

}  // namespace

const std::vector<double>& SchedulerMetrics::DurationBounds() {
  static const auto* const kBuckets = new prometheus::Histogram::BucketBoundaries{
      5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 2.5e-2, 0.1, 0.25, 1.0, 5.0, 30.0};
  return *kBuckets;
}

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
                                       "dependencies) to the start of execution, by priority.")
                                 .Register(registry)),
      execution_duration_family_(prometheus::BuildHistogram()
                                     .Name("inferd_scheduler_execution_duration_seconds")
                                     .Help("Time from the start of execution to completion, "
                                           "by model.")
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
    queue_duration_[p] = &queue_duration_family_.Add({{"priority", label}}, DurationBounds());
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
    if (it != models_.end()) {
      it->second->users.fetch_add(1, std::memory_order_relaxed);
      return it->second.get();
    }
  }
  absl::MutexLock lock(&mu_);
  auto& slot = models_[model];
  if (slot == nullptr) {
    slot = std::make_unique<Model>();
    slot->name = Label(model);
    slot->execution_duration =
        &execution_duration_family_.Add({{"model", slot->name}}, DurationBounds());
    slot->batch_size = &batch_size_family_.Add({{"model", slot->name}}, BatchBuckets());
  }
  slot->users.fetch_add(1, std::memory_order_relaxed);
  return slot.get();
}

void SchedulerMetrics::CountCompleted(Model& m, Priority p, Outcome o) {
  std::atomic<prometheus::Counter*>& cell =
      m.completed[static_cast<int>(p)][static_cast<int>(o)];
  prometheus::Counter* c = cell.load(std::memory_order_acquire);
  if (c == nullptr) {
    absl::MutexLock lock(&mu_);
    c = cell.load(std::memory_order_relaxed);
    if (c == nullptr) {
      c = &completed_family_.Add({{"model", m.name},
                                  {"priority", Label(PriorityLabel(p))},
                                  {"outcome", Label(OutcomeName(o))}});
      cell.store(c, std::memory_order_release);
    }
  }
  c->Increment();
}

int SchedulerMetrics::RemoveUnloaded(const std::function<bool(absl::string_view)>& loaded) {
  absl::MutexLock lock(&mu_);
  int removed = 0;
  for (auto it = models_.begin(); it != models_.end();) {
    Model& m = *it->second;
    if (m.users.load(std::memory_order_acquire) != 0 || loaded(m.name)) {
      ++it;
      continue;
    }
    execution_duration_family_.Remove(m.execution_duration);
    batch_size_family_.Remove(m.batch_size);
    for (auto& by_outcome : m.completed) {
      for (auto& cell : by_outcome) {
        if (prometheus::Counter* c = cell.load(std::memory_order_relaxed); c != nullptr) {
          completed_family_.Remove(c);
        }
      }
    }
    models_.erase(it++);
    ++removed;
  }
  return removed;
}

int SchedulerMetrics::num_models() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<int>(models_.size());
}

}  // namespace inferd
