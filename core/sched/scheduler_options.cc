#include "core/sched/scheduler_options.h"

namespace inferd {

absl::StatusOr<SchedulerOptions> SchedulerOptionsFromConfig(const Config& config) {
  const PerformanceConfig& perf = config.device.performance;
  const SchedulerConfig& sched = config.scheduler;
  SchedulerOptions o;
  absl::StatusOr<PlacementStrategy> strategy = ParsePlacementStrategy(perf.scheduling_strategy);
  if (!strategy.ok()) return strategy.status();
  o.strategy = *strategy;
  o.max_tasks_per_device = perf.max_tasks_per_device;
  o.default_timeout = absl::Seconds(perf.task_timeout);
  o.enable_preemption = perf.enable_task_preemption;
  o.enable_migration = perf.enable_task_migration;
  o.max_queue_depth = sched.max_queue_depth;
  o.aging_interval = absl::Seconds(sched.aging_interval_seconds);
  o.default_max_retries = sched.default_max_retries;
  o.retry_backoff = absl::Seconds(sched.retry_backoff_seconds);
  o.unhealthy_threshold = sched.unhealthy_threshold;
  o.unhealthy_probe_interval = absl::Seconds(sched.unhealthy_probe_interval_seconds);
  o.max_retained_tasks = static_cast<size_t>(sched.max_retained_tasks);
  o.watch_buffer_events = static_cast<size_t>(sched.watch_buffer_events);
  o.default_batching.enabled = sched.enable_dynamic_batching;
  o.default_batching.max_queue_delay = absl::Microseconds(sched.batch_max_queue_delay_us);
  o.default_batching.preferred_batch_sizes = sched.preferred_batch_sizes;
  o.limits = config.limits;
  o.submit_tasks_async = true;
  return o;
}

}  // namespace inferd
