#include "core/scaling/sim/load_trace.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

namespace inferd {
namespace {

// Uniform double in [0, 1) from the top 53 bits: portable, unlike
// std::uniform_real_distribution whose algorithm is implementation-defined.
double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

double LoadTrace::RateAt(absl::Duration t) const {
  // Night (first and last fifth) at the trough; a sin^2 day in between.
  const double x = absl::FDivDuration(t, options.length);
  const double day = std::clamp((x - 0.2) / 0.6, 0.0, 1.0);
  const double s = std::sin(std::numbers::pi * day);
  double rate = options.trough_rate + (options.peak_rate - options.trough_rate) * s * s;
  for (const Burst& b : bursts) {
    if (t >= b.start && t < b.end) {
      rate *= options.burst_factor;
      break;
    }
  }
  return rate;
}

LoadTrace GenerateLoadTrace(const LoadTraceOptions& options) {
  LoadTrace trace;
  trace.options = options;
  std::mt19937_64 rng(options.seed);

  // Bursts start uniformly in the middle 90% of the trace.
  const double length_s = absl::ToDoubleSeconds(options.length);
  for (int i = 0; i < options.bursts; ++i) {
    const double start = length_s * (0.05 + 0.9 * Uniform(rng));
    trace.bursts.push_back({absl::Seconds(start), absl::Seconds(start) + options.burst_length});
  }
  std::sort(trace.bursts.begin(), trace.bursts.end(),
            [](const Burst& a, const Burst& b) { return a.start < b.start; });

  // Thinning: candidates at the maximum rate, each kept with rate(t)/max.
  const double max_rate =
      std::max(options.trough_rate, options.peak_rate) * std::max(1.0, options.burst_factor);
  if (max_rate <= 0) return trace;
  double t = 0.0;
  for (;;) {
    t += -std::log(1.0 - Uniform(rng)) / max_rate;
    if (t >= length_s) break;
    const absl::Duration at = absl::Seconds(t);
    if (Uniform(rng) * max_rate < trace.RateAt(at)) {
      trace.arrivals.push_back(at);
    }
  }
  return trace;
}

}  // namespace inferd
