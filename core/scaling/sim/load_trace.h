// LoadTrace: a deterministic synthetic arrival trace for replaying load
// through the scaler at simulated time — a "day" compressed into the trace
// length (night at the trough for the first and last fifth, a sin^2 ramp up
// to the peak and back in between) plus bursts of a fixed factor at seeded
// random times. Arrivals are a non-homogeneous Poisson process drawn by
// thinning from a fixed-seed std::mt19937_64 (whose sequence the standard
// fixes), so given options yield the same trace run after run.
#ifndef INFERD_CORE_SCALING_SIM_LOAD_TRACE_H_
#define INFERD_CORE_SCALING_SIM_LOAD_TRACE_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace inferd {

struct LoadTraceOptions {
  absl::Duration length = absl::Minutes(30);
  double trough_rate = 20.0;  // tasks/s at night
  double peak_rate = 300.0;   // tasks/s at midday
  int bursts = 6;
  absl::Duration burst_length = absl::Seconds(45);
  double burst_factor = 1.5;  // rate multiplier during a burst
  uint64_t seed = 20240601;
};

struct Burst {
  absl::Duration start;  // offset from the trace start
  absl::Duration end;
};

struct LoadTrace {
  LoadTraceOptions options;
  std::vector<Burst> bursts;             // ascending start
  std::vector<absl::Duration> arrivals;  // offsets, ascending

  // Returns the arrival rate (tasks/s) the trace was drawn from at `t`.
  double RateAt(absl::Duration t) const;
};

// Generates the trace. Deterministic for given options.
LoadTrace GenerateLoadTrace(const LoadTraceOptions& options);

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_SIM_LOAD_TRACE_H_
