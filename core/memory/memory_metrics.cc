#include "core/memory/memory_metrics.h"

#include <string>

namespace inferd {
namespace {

prometheus::Family<prometheus::Gauge>& G(prometheus::Registry& r, const char* name,
                                         const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
prometheus::Family<prometheus::Counter>& C(prometheus::Registry& r, const char* name,
                                           const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

}  // namespace

MemoryMetrics::MemoryMetrics(prometheus::Registry& r)
    : total_bytes(G(r, "inferd_memory_total_bytes", "Device memory capacity.")),
      reserved_bytes(G(r, "inferd_memory_reserved_bytes",
                       "Bytes the memory pool holds from the driver (segments).")),
      allocated_bytes(G(r, "inferd_memory_allocated_bytes",
                        "Bytes of pool blocks handed out (tensors and scratch).")),
      active_tensors(G(r, "inferd_memory_active_tensors", "Tensors in the tensor store.")),
      fragmentation_ratio(G(r, "inferd_memory_fragmentation_ratio",
                            "External fragmentation: 1 - largest free block / free bytes.")),
      largest_free_block_bytes(
          G(r, "inferd_memory_largest_free_block_bytes", "Largest free block cached in the pool.")),
      allocations_total(C(r, "inferd_memory_allocations_total", "Pool allocations.")),
      frees_total(C(r, "inferd_memory_frees_total", "Pool frees.")),
      gc_runs_total(C(r, "inferd_memory_gc_runs_total",
                      "Garbage collections (threshold crossed or allocation failed).")),
      gc_reclaimed_bytes_total(C(r, "inferd_memory_gc_reclaimed_bytes_total",
                                 "Bytes reclaimed by GC: expired tensors and released segments.")),
      compactions_total(C(r, "inferd_memory_compactions_total", "Compactions run.")),
      compaction_moved_bytes_total(
          C(r, "inferd_memory_compaction_moved_bytes_total", "Bytes moved by compaction.")),
      lease_expirations_total(C(r, "inferd_memory_lease_expirations_total",
                                "Tensors freed because their lease expired.")) {}

MemoryMetrics::Device MemoryMetrics::ForDevice(int index) {
  const prometheus::Labels labels{{"device", std::to_string(index)}};
  return Device{total_bytes.Add(labels),
                reserved_bytes.Add(labels),
                allocated_bytes.Add(labels),
                active_tensors.Add(labels),
                fragmentation_ratio.Add(labels),
                largest_free_block_bytes.Add(labels),
                allocations_total.Add(labels),
                frees_total.Add(labels),
                gc_runs_total.Add(labels),
                gc_reclaimed_bytes_total.Add(labels),
                compactions_total.Add(labels),
                compaction_moved_bytes_total.Add(labels),
                lease_expirations_total.Add(labels)};
}

}  // namespace inferd
