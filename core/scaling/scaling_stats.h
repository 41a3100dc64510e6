// ScalingStats and the sample structs: the plain data that goes into and
// comes out of DynamicScaler (what GetScalingStats and the report show).
#ifndef INFERD_CORE_SCALING_SCALING_STATS_H_
#define INFERD_CORE_SCALING_SCALING_STATS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "core/scaling/scaling_event.h"
#include "core/scaling/scaling_policy.h"
#include "core/scaling/workload_window.h"

namespace inferd {

// From the scheduler (continuously) or a client (CollectWorkloadMetrics).
// All fields must be finite and >= 0.
struct SchedulerSample {
  double queue_length = 0.0;             // tasks waiting
  double processing_time_seconds = 0.0;  // per task
  double throughput_tasks_per_second = 0.0;
};

// From a device monitor (sampled). Fractions in [0, 1].
struct DeviceSample {
  int device = -1;  // DeviceInfo::index
  double utilization = 0.0;
  double memory_used = 0.0;
};

struct ScalingStats {
  bool enabled = true;                // enable_dynamic_scaling
  std::vector<int> active_devices;    // ascending
  std::vector<int> inactive_devices;  // healthy, not active
  std::vector<int> unhealthy_devices;
  // Replicas asked for, this one included (>= 1; > 1 only once every usable
  // local device is active and a scale-up rule still holds).
  int desired_replicas = 1;
  // What inferd_scaler_desired_replicas exports: active/healthy devices +
  // (desired_replicas - 1); below 1 when part of this machine is idle.
  double replica_demand = 0.0;
  // Outcome of the last evaluation (action kNone when no rule held).
  std::optional<ScalingEvent> last_decision;
  absl::Time last_scale_time = absl::InfinitePast();
  absl::Time last_evaluation_time = absl::InfinitePast();
  // Daemon-wide aggregates over the whole window, indexed by WorkloadMetric.
  std::array<WindowAggregate, kNumWorkloadMetrics> window;
  absl::Duration window_length;
  ScalingPolicy policy;  // in force when the stats were taken

  int64_t evaluations = 0;
  int64_t device_activations = 0;    // rule-driven and repairs
  int64_t device_deactivations = 0;  // rule-driven and faults
  int64_t replica_raises = 0;
  int64_t replica_lowerings = 0;
  int64_t held_cooldown = 0;  // evaluations a holding rule was held back
  int64_t held_unstable = 0;
  int64_t held_at_bound = 0;
  int64_t device_faults = 0;
  int64_t scheduler_samples = 0;
  int64_t device_samples = 0;
  int64_t client_samples = 0;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_SCALING_STATS_H_
