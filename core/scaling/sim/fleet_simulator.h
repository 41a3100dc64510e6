// FleetSimulator: replays a LoadTrace through a model of N devices at
// simulated time, to compare a DynamicScaler against a static all-devices
// policy. The model: one FIFO queue; each active device serves one task at a
// time for a fixed service time; a deactivated device takes no new tasks
// (queued ones stay in the shared queue) but finishes the one it runs. Time
// advances in fixed steps on a FakeClock; every sample period the simulator
// feeds the scaler what the scheduler and device monitors would (queue
// length, processing time, throughput, per-device busy fraction) and lets it
// evaluate when due. The active set is re-read from the scaler every step.
#ifndef INFERD_CORE_SCALING_SIM_FLEET_SIMULATOR_H_
#define INFERD_CORE_SCALING_SIM_FLEET_SIMULATOR_H_

#include <cstdint>

#include "absl/time/time.h"
#include "core/scaling/dynamic_scaler.h"
#include "core/scaling/sim/load_trace.h"
#include "core/util/clock.h"

namespace inferd {

struct FleetSimOptions {
  int devices = 4;                                       // indexes 0..devices-1
  absl::Duration service_time = absl::Milliseconds(10);  // 100 tasks/s each
  absl::Duration step = absl::Milliseconds(100);
  absl::Duration sample_period = absl::Seconds(1);
  double memory_used = 0.3;  // reported for every device
};

struct FleetSimResult {
  int64_t tasks = 0;              // arrivals in the trace
  int64_t served = 0;             // tasks started (all of them at the end)
  double device_minutes = 0.0;    // integral of the active-device count
  double queue_time_p50_s = 0.0;  // arrival to start of service
  double queue_time_p99_s = 0.0;
  double queue_time_max_s = 0.0;
  double simulated_minutes = 0.0;  // trace length plus the final drain
  int min_active = 0;
  int max_active = 0;
  int64_t scale_events = 0;  // active-set changes
};

// Runs `trace` to completion (every task served). With `scaler` null all
// devices stay active; otherwise `scaler` must own devices 0..devices-1 and
// use `clock`, which the simulator advances.
FleetSimResult SimulateFleet(const LoadTrace& trace, const FleetSimOptions& options,
                             FakeClock& clock, DynamicScaler* scaler);

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_SIM_FLEET_SIMULATOR_H_
