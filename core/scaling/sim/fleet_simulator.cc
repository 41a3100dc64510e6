#include "core/scaling/sim/fleet_simulator.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <vector>

#include "core/util/check.h"

namespace inferd {
namespace {

double NearestRank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

}  // namespace

FleetSimResult SimulateFleet(const LoadTrace& trace, const FleetSimOptions& options,
                             FakeClock& clock, DynamicScaler* scaler) {
  const int n = options.devices;
  INFERD_CHECK(n > 0);
  INFERD_CHECK(options.step > absl::ZeroDuration());
  const int64_t steps_per_period =
      std::max<int64_t>(1, absl::ToInt64Milliseconds(options.sample_period) /
                               std::max<int64_t>(1, absl::ToInt64Milliseconds(options.step)));
  const double dt = absl::ToDoubleSeconds(options.step);
  const double period = dt * static_cast<double>(steps_per_period);
  const double service = absl::ToDoubleSeconds(options.service_time);
  const double length = absl::ToDoubleSeconds(trace.options.length);

  std::vector<double> arrivals;
  arrivals.reserve(trace.arrivals.size());
  for (absl::Duration a : trace.arrivals) {
    arrivals.push_back(absl::ToDoubleSeconds(a));
  }

  FleetSimResult result;
  result.tasks = static_cast<int64_t>(arrivals.size());
  result.min_active = n;
  std::vector<double> free_at(n, 0.0);
  std::vector<double> busy(n, 0.0);   // busy seconds in the current period
  std::vector<double> carry(n, 0.0);  // busy seconds spilling into later ones
  std::vector<bool> active(n, true);
  std::deque<double> queue;  // arrival times, FIFO
  std::vector<double> waits;
  waits.reserve(arrivals.size());
  size_t next = 0;
  int64_t completed_in_period = 0;
  int64_t active_steps = 0;  // sum over steps of the active-device count

  for (int64_t k = 0;; ++k) {
    const double t = dt * static_cast<double>(k);
    if (t >= length && queue.empty() && next == arrivals.size()) {
      result.simulated_minutes = t / 60.0;
      break;
    }
    const double t_end = t + dt;
    const int64_t period_index = k / steps_per_period;
    const double period_end = period * static_cast<double>(period_index + 1);

    if (scaler != nullptr) {
      std::vector<bool> now_active(n, false);
      for (int d : scaler->ActiveDevices()) {
        if (d >= 0 && d < n) now_active[d] = true;
      }
      for (int d = 0; d < n; ++d) {
        result.scale_events += now_active[d] != active[d] ? 1 : 0;
      }
      active = now_active;
    }
    const int active_count = static_cast<int>(std::count(active.begin(), active.end(), true));
    result.min_active = std::min(result.min_active, active_count);
    result.max_active = std::max(result.max_active, active_count);

    while (next < arrivals.size() && arrivals[next] < t_end) {
      queue.push_back(arrivals[next++]);
    }
    // Serve the queue head on the earliest-free active device until no
    // task can start within this step.
    while (!queue.empty()) {
      int best = -1;
      double best_free = std::numeric_limits<double>::infinity();
      for (int d = 0; d < n; ++d) {
        if (!active[d]) continue;
        const double f = std::max(free_at[d], t);
        if (f < best_free) {
          best_free = f;
          best = d;
        }
      }
      if (best < 0) break;
      const double start = std::max(best_free, queue.front());
      if (start >= t_end) break;
      waits.push_back(start - queue.front());
      queue.pop_front();
      const double end = start + service;
      free_at[best] = end;
      busy[best] += std::min(end, period_end) - start;
      carry[best] += std::max(0.0, end - period_end);
      ++completed_in_period;
    }

    active_steps += active_count;
    clock.Advance(options.step);

    if ((k + 1) % steps_per_period == 0) {
      if (scaler != nullptr) {
        // Errors are impossible here: every value is finite and in range.
        (void)scaler->RecordSchedulerSample({static_cast<double>(queue.size()), service,
                                             static_cast<double>(completed_in_period) / period});
        for (int d = 0; d < n; ++d) {
          (void)scaler->RecordDeviceSample(
              {d, std::min(1.0, busy[d] / period), options.memory_used});
        }
        scaler->EvaluateIfDue();
      }
      for (int d = 0; d < n; ++d) {
        busy[d] = std::min(carry[d], period);
        carry[d] -= busy[d];
      }
      completed_in_period = 0;
    }
  }

  result.device_minutes = static_cast<double>(active_steps) * dt / 60.0;
  result.served = static_cast<int64_t>(waits.size());
  std::sort(waits.begin(), waits.end());
  result.queue_time_p50_s = NearestRank(waits, 0.50);
  result.queue_time_p99_s = NearestRank(waits, 0.99);
  result.queue_time_max_s = waits.empty() ? 0.0 : waits.back();
  return result;
}

}  // namespace inferd
