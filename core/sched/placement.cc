#include "core/sched/placement.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"

namespace inferd {
namespace {

uint64_t Available(const DeviceLoad& d) {
  return d.free_memory_bytes > d.reserved_bytes ? d.free_memory_bytes - d.reserved_bytes : 0;
}

bool Fits(const DeviceLoad& d, uint64_t requirement) {
  return requirement == 0 || Available(d) >= requirement;
}

int Load(const DeviceLoad& d) {
  return (d.queued_ahead >= 0 ? d.queued_ahead : d.queued) + d.running;
}

}  // namespace

absl::StatusOr<PlacementStrategy> ParsePlacementStrategy(absl::string_view name) {
  if (name == "round_robin") return PlacementStrategy::kRoundRobin;
  if (name == "least_loaded") return PlacementStrategy::kLeastLoaded;
  if (name == "memory_aware") return PlacementStrategy::kMemoryAware;
  if (name == "balanced") return PlacementStrategy::kBalanced;
  return absl::InvalidArgumentError(
      absl::StrCat("device.multi_gpu.performance_optimization.scheduling_strategy: \"", name,
                   "\" is not one of round_robin, least_loaded, memory_aware, balanced"));
}

absl::string_view PlacementStrategyName(PlacementStrategy strategy) {
  switch (strategy) {
    case PlacementStrategy::kRoundRobin:
      return "round_robin";
    case PlacementStrategy::kLeastLoaded:
      return "least_loaded";
    case PlacementStrategy::kMemoryAware:
      return "memory_aware";
    case PlacementStrategy::kBalanced:
      return "balanced";
  }
  return "balanced";
}

double BalancedScore(const DeviceLoad& d, uint64_t memory_requirement,
                     const BalancedWeights& weights) {
  const double load =
      static_cast<double>(Load(d)) / static_cast<double>(std::max(1, d.max_running));
  double memory_used = 0.0;
  if (d.total_memory_bytes > 0) {
    memory_used =
        1.0 - static_cast<double>(Available(d)) / static_cast<double>(d.total_memory_bytes);
  }
  double score = weights.load * load + weights.memory * std::clamp(memory_used, 0.0, 1.0) +
                 weights.utilization * std::clamp(d.utilization, 0.0, 1.0);
  if (!Fits(d, memory_requirement)) score += 1.0;
  return score;
}

absl::StatusOr<int> PlaceTask(PlacementStrategy strategy, absl::Span<const DeviceLoad> devices,
                              const PlacementRequest& request, const BalancedWeights& weights) {
  const int n = static_cast<int>(devices.size());
  if (request.device >= 0) {
    for (int i = 0; i < n; ++i) {
      if (devices[i].index != request.device) continue;
      if (!devices[i].eligible) {
        return absl::UnavailableError(
            absl::StrCat("device: device ", request.device, " is inactive or unhealthy"));
      }
      if (request.memory_requirement_bytes > devices[i].total_memory_bytes &&
          devices[i].total_memory_bytes > 0) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "memory_requirement_bytes: ", request.memory_requirement_bytes, " exceeds the ",
            devices[i].total_memory_bytes, " bytes of device ", request.device));
      }
      return i;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "device: ", request.device, " is not a device of this daemon (", n, " device(s))"));
  }

  // Candidates: eligible, not excluded (unless that leaves none), and able to
  // hold the requirement at all.
  uint64_t largest_total = 0;
  bool any_eligible = false;
  bool any_unexcluded = false;
  for (int i = 0; i < n; ++i) {
    const DeviceLoad& d = devices[i];
    if (!d.eligible) continue;
    any_eligible = true;
    largest_total = std::max(largest_total, d.total_memory_bytes);
    const bool too_small =
        d.total_memory_bytes > 0 && request.memory_requirement_bytes > d.total_memory_bytes;
    if (!too_small && (i >= 64 || !(request.excluded_mask >> i & 1))) any_unexcluded = true;
  }
  if (!any_eligible) {
    return absl::UnavailableError("no active healthy device to place the task on");
  }
  auto candidate = [&](int i) {
    const DeviceLoad& d = devices[i];
    if (!d.eligible) return false;
    if (d.total_memory_bytes > 0 && request.memory_requirement_bytes > d.total_memory_bytes) {
      return false;
    }
    if (any_unexcluded && i < 64 && (request.excluded_mask >> i & 1)) return false;
    return true;
  };
  bool any_candidate = false;
  for (int i = 0; i < n && !any_candidate; ++i) any_candidate = candidate(i);
  if (!any_candidate) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "memory_requirement_bytes: ", request.memory_requirement_bytes,
        " exceeds the total memory of every device (largest ", largest_total, " bytes)"));
  }

  if (request.preferred >= 0) {
    for (int i = 0; i < n; ++i) {
      const DeviceLoad& d = devices[i];
      if (d.index == request.preferred && candidate(i) && Load(d) < d.max_running &&
          Fits(d, request.memory_requirement_bytes)) {
        return i;
      }
    }
  }

  const int start = static_cast<int>(request.rotation % static_cast<uint64_t>(n));
  int best = -1;
  switch (strategy) {
    case PlacementStrategy::kRoundRobin:
      for (int k = 0; k < n && best < 0; ++k) {
        if (candidate((start + k) % n)) best = (start + k) % n;
      }
      break;
    case PlacementStrategy::kLeastLoaded:
      for (int k = 0; k < n; ++k) {
        const int i = (start + k) % n;
        if (candidate(i) && (best < 0 || Load(devices[i]) < Load(devices[best]))) best = i;
      }
      break;
    case PlacementStrategy::kMemoryAware: {
      const uint64_t req = request.memory_requirement_bytes;
      for (int k = 0; k < n; ++k) {
        const int i = (start + k) % n;
        if (!candidate(i)) continue;
        if (best < 0) {
          best = i;
          continue;
        }
        const DeviceLoad& a = devices[i];
        const DeviceLoad& b = devices[best];
        const bool fa = Fits(a, req), fb = Fits(b, req);
        if (fa != fb) {
          if (fa) best = i;
        } else if (Available(a) != Available(b)) {
          if (Available(a) > Available(b)) best = i;
        } else if (Load(a) < Load(b)) {
          best = i;
        }
      }
      break;
    }
    case PlacementStrategy::kBalanced: {
      double best_score = std::numeric_limits<double>::infinity();
      for (int k = 0; k < n; ++k) {
        const int i = (start + k) % n;
        if (!candidate(i)) continue;
        const double s = BalancedScore(devices[i], request.memory_requirement_bytes, weights);
        if (s < best_score) {
          best_score = s;
          best = i;
        }
      }
      break;
    }
  }
  return best;
}

}  // namespace inferd
