// Placement: which device a task goes to. Pure functions over a snapshot of
// device states, so each strategy is unit-tested on crafted states.
//
// Strategies (device.multi_gpu.performance_optimization.scheduling_strategy):
//  - round_robin: the next eligible device after the previous choice.
//  - least_loaded: the fewest queued-ahead + running tasks (queued-ahead:
//    queued tasks of the same or a more urgent priority, which run first).
//  - memory_aware: the most available memory (free - reserved by tasks
//    already placed) among devices where the task's memory_requirement fits;
//    ties go to the less loaded. When it fits nowhere now, the device with
//    the most available memory (the task waits there for memory to free).
//  - balanced: the lowest score
//        load_weight        * (queued_ahead + running) / max_running
//      + memory_weight      * (1 - available / total)
//      + utilization_weight * utilization
//    with default weights 0.5 / 0.3 / 0.2 (load first: it is what delays a
//    task; memory next: it is what fails one; utilization last: it lags),
//    plus 1.0 when the memory requirement does not fit now.
// All strategies: only eligible devices (active and healthy) are chosen; a
// device constraint picks that device or fails; devices in excluded_mask
// (where a retried task already failed) are avoided while another eligible
// device exists; ties rotate with `rotation` so equal devices share work;
// a preferred device (where the task's input tensors live) wins when it has
// a free slot.
//
// Thread-compatible (pure functions).
#ifndef INFERD_CORE_SCHED_PLACEMENT_H_
#define INFERD_CORE_SCHED_PLACEMENT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace inferd {

enum class PlacementStrategy { kRoundRobin, kLeastLoaded, kMemoryAware, kBalanced };

// INVALID_ARGUMENT naming the config key for an unknown name.
absl::StatusOr<PlacementStrategy> ParsePlacementStrategy(absl::string_view name);
absl::string_view PlacementStrategyName(PlacementStrategy strategy);

// One device as placement sees it at one moment.
struct DeviceLoad {
  int index = 0;         // DeviceInfo::index
  bool eligible = true;  // active (scaler) and healthy
  int queued = 0;
  // Queued work that would run before the task being placed (same or more
  // urgent priority); -1: use `queued`. Loads below count this, so a
  // CRITICAL task goes where few CRITICAL tasks wait, whatever else is queued.
  int queued_ahead = -1;
  int running = 0;
  int max_running = 1;  // max_tasks_per_device
  uint64_t total_memory_bytes = 0;
  uint64_t free_memory_bytes = 0;
  uint64_t reserved_bytes = 0;  // memory_requirement of tasks placed here
  double utilization = 0.0;     // 0..1
};

struct BalancedWeights {
  double load = 0.5;
  double memory = 0.3;
  double utilization = 0.2;
};

struct PlacementRequest {
  uint64_t memory_requirement_bytes = 0;
  int device = -1;             // >= 0: only this device
  uint64_t excluded_mask = 0;  // bit i: avoid devices[i] if possible
  int preferred = -1;          // DeviceInfo::index where inputs live; -1 none
  uint64_t rotation = 0;       // tie-break / round-robin counter
};

// Returns the position in `devices` of the chosen device.
// INVALID_ARGUMENT when the constraint names no device;
// UNAVAILABLE when the constrained device, or every device, is inactive or
// unhealthy; RESOURCE_EXHAUSTED when the memory requirement exceeds the
// total memory of every eligible device.
absl::StatusOr<int> PlaceTask(PlacementStrategy strategy, absl::Span<const DeviceLoad> devices,
                              const PlacementRequest& request, const BalancedWeights& weights = {});

// The balanced strategy's score of one device (lower is better).
double BalancedScore(const DeviceLoad& d, uint64_t memory_requirement,
                     const BalancedWeights& weights);

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_PLACEMENT_H_
