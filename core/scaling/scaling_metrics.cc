#include "core/scaling/scaling_metrics.h"

#include <string>

namespace inferd {
namespace {

prometheus::Gauge& MakeGauge(prometheus::Registry& registry, const std::string& name,
                             const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Family<prometheus::Counter>& DecisionFamily(prometheus::Registry& registry) {
  return prometheus::BuildCounter()
      .Name("inferd_scaler_decisions_total")
      .Help("Scale actions taken, by direction and scope (device or replica).")
      .Register(registry);
}

prometheus::Counter& MakeCounter(prometheus::Registry& registry, const std::string& name,
                                 const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

}  // namespace

ScalingMetrics::ScalingMetrics(prometheus::Registry& registry)
    : ScalingMetrics(registry, DecisionFamily(registry)) {}

ScalingMetrics::ScalingMetrics(prometheus::Registry& registry,
                               prometheus::Family<prometheus::Counter>& decisions)
    : desired_replicas(
          MakeGauge(registry, "inferd_scaler_desired_replicas",
                    "Replicas this daemon's load calls for: active/healthy devices plus "
                    "replicas asked for beyond this one. Sum over Pods for an autoscaler "
                    "target of 1 per Pod.")),
      active_devices(
          MakeGauge(registry, "inferd_scaler_active_devices", "Devices in the active set.")),
      healthy_devices(
          MakeGauge(registry, "inferd_scaler_healthy_devices", "Devices not marked unhealthy.")),
      queue_length(MakeGauge(registry, "inferd_scaler_queue_length",
                             "Mean queued tasks over the workload window.")),
      throughput(MakeGauge(registry, "inferd_scaler_throughput_tasks_per_second",
                           "Mean completed tasks per second over the workload window.")),
      processing_time(MakeGauge(registry, "inferd_scaler_processing_time_seconds",
                                "Mean task processing time over the workload window.")),
      utilization(MakeGauge(registry, "inferd_scaler_utilization_ratio",
                            "Mean utilization (0..1) of active devices over the workload "
                            "window.")),
      memory_used(MakeGauge(registry, "inferd_scaler_memory_used_ratio",
                            "Mean used memory fraction (0..1) of active devices over the "
                            "workload window.")),
      decisions_up_device(decisions.Add({{"direction", "up"}, {"scope", "device"}})),
      decisions_down_device(decisions.Add({{"direction", "down"}, {"scope", "device"}})),
      decisions_up_replica(decisions.Add({{"direction", "up"}, {"scope", "replica"}})),
      decisions_down_replica(decisions.Add({{"direction", "down"}, {"scope", "replica"}})),
      evaluations(
          MakeCounter(registry, "inferd_scaler_evaluations_total", "Scaling rule evaluations.")),
      device_faults(MakeCounter(registry, "inferd_scaler_device_faults_total",
                                "Devices marked unhealthy.")) {}

}  // namespace inferd
