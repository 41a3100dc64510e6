// ScalingMetrics: the scaler's Prometheus metrics, a typed struct of
// prometheus-cpp references built from a registry the caller owns (main's,
// or a private one in tests). Names follow inferd_<engine>_<what>_<unit>.
//
// The figure Kubernetes autoscalers read (docs/SCALING.md):
//   inferd_scaler_desired_replicas = active/healthy devices
//                                    + (ScalingStats::desired_replicas - 1)
// i.e. how many replicas this daemon's load calls for: 1 with every device
// busy and no more asked for, above 1 when it asks for more machines, below 1
// when part of this machine is idle. Summed over Pods with an AverageValue
// target of 1 it is the fleet size the daemons ask for.
#ifndef INFERD_CORE_SCALING_SCALING_METRICS_H_
#define INFERD_CORE_SCALING_SCALING_METRICS_H_

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace inferd {

// Thread-safe (prometheus-cpp metrics are). The registry must outlive it.
struct ScalingMetrics {
  explicit ScalingMetrics(prometheus::Registry& registry);

  prometheus::Gauge& desired_replicas;  // inferd_scaler_desired_replicas
  prometheus::Gauge& active_devices;    // inferd_scaler_active_devices
  prometheus::Gauge& healthy_devices;   // inferd_scaler_healthy_devices
  // Window means (over ScalingPolicy::window_length).
  prometheus::Gauge& queue_length;     // inferd_scaler_queue_length
  prometheus::Gauge& throughput;       // inferd_scaler_throughput_tasks_per_second
  prometheus::Gauge& processing_time;  // inferd_scaler_processing_time_seconds
  prometheus::Gauge& utilization;      // inferd_scaler_utilization_ratio
  prometheus::Gauge& memory_used;      // inferd_scaler_memory_used_ratio
  // inferd_scaler_decisions_total{direction="up|down",scope="device|replica"}
  prometheus::Counter& decisions_up_device;
  prometheus::Counter& decisions_down_device;
  prometheus::Counter& decisions_up_replica;
  prometheus::Counter& decisions_down_replica;
  prometheus::Counter& evaluations;    // inferd_scaler_evaluations_total
  prometheus::Counter& device_faults;  // inferd_scaler_device_faults_total

 private:
  ScalingMetrics(prometheus::Registry& registry,
                 prometheus::Family<prometheus::Counter>& decisions);
};

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_SCALING_METRICS_H_
