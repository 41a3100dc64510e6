// MemoryMetrics: the memory engine's Prometheus gauges and counters, built
// from a registry that the composition root owns (tests pass a private one).
// Names follow inferd_memory_<what>_<unit>; the only label is `device`.
#ifndef INFERD_CORE_MEMORY_MEMORY_METRICS_H_
#define INFERD_CORE_MEMORY_MEMORY_METRICS_H_

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace inferd {

// Thread-safe (prometheus-cpp metrics are atomic). Must not outlive the
// registry.
struct MemoryMetrics {
  // The series of one device.
  struct Device {
    prometheus::Gauge& total_bytes;
    prometheus::Gauge& reserved_bytes;
    prometheus::Gauge& allocated_bytes;
    prometheus::Gauge& active_tensors;
    prometheus::Gauge& fragmentation_ratio;
    prometheus::Gauge& largest_free_block_bytes;
    prometheus::Counter& allocations_total;
    prometheus::Counter& frees_total;
    prometheus::Counter& gc_runs_total;
    prometheus::Counter& gc_reclaimed_bytes_total;
    prometheus::Counter& compactions_total;
    prometheus::Counter& compaction_moved_bytes_total;
    prometheus::Counter& lease_expirations_total;
  };

  explicit MemoryMetrics(prometheus::Registry& registry);

  // Adds (or finds) the series labelled device="<index>".
  Device ForDevice(int index);

  prometheus::Family<prometheus::Gauge>& total_bytes;
  prometheus::Family<prometheus::Gauge>& reserved_bytes;
  prometheus::Family<prometheus::Gauge>& allocated_bytes;
  prometheus::Family<prometheus::Gauge>& active_tensors;
  prometheus::Family<prometheus::Gauge>& fragmentation_ratio;
  prometheus::Family<prometheus::Gauge>& largest_free_block_bytes;
  prometheus::Family<prometheus::Counter>& allocations_total;
  prometheus::Family<prometheus::Counter>& frees_total;
  prometheus::Family<prometheus::Counter>& gc_runs_total;
  prometheus::Family<prometheus::Counter>& gc_reclaimed_bytes_total;
  prometheus::Family<prometheus::Counter>& compactions_total;
  prometheus::Family<prometheus::Counter>& compaction_moved_bytes_total;
  prometheus::Family<prometheus::Counter>& lease_expirations_total;
};

}  // namespace inferd

#endif  // INFERD_CORE_MEMORY_MEMORY_METRICS_H_
