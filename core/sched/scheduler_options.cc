#include "core/sched/scheduler_options.h"

namespace inferd {

absl::StatusOr<SchedulerOptions> SchedulerOptionsFromConfig(const Config& config) {
  const PerformanceConfig& perf = config.device.performance;
  SchedulerOptions o;
  absl::StatusOr<PlacementStrategy> strategy = ParsePlacementStrategy(perf.scheduling_strategy);
  if (!strategy.ok()) return strategy.status();
  o.strategy = *strategy;
  o.max_tasks_per_device = perf.max_tasks_per_device;
  o.default_timeout = absl::Seconds(perf.task_timeout);
  o.enable_preemption = perf.enable_task_preemption;
  o.enable_migration = perf.enable_task_migration;
  o.limits = config.limits;
  return o;
}

}  // namespace inferd
