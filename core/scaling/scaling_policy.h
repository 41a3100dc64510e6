// ScalingPolicy: the rules and limits the dynamic scaler acts on — which
// workload metric, compared how, against what threshold, for how long; the
// cooldowns, the stability check, and the device / replica bounds. Plain data,
// validated by ValidatePolicy before the scaler takes it.
//
// Rule semantics (docs/SCALING.md has the full story):
//   * A rule holds when, at every evaluation during the last `hold`, the mean
//     of its metric over the preceding evaluation_interval satisfied the
//     comparison (like a Prometheus alert's `for:`). Hold 0: one evaluation.
//   * Scale-up rules are OR'ed: any holding one asks for more capacity.
//     Scale-down rules are AND'ed: all must hold (and there must be one).
//   * Stability: before acting, the coefficient of variation of the deciding
//     metric must be below stability_threshold. It is taken over the
//     evaluation_interval means that the rule compares, across its hold span
//     (at least two intervals): a level that keeps moving between intervals
//     is unstable; per-sample jitter that averages out within an interval
//     (Poisson arrivals sampled every second) is not. Deciding metric: for
//     up, the holding rule (the first stable one wins); for down, the first
//     scale-down rule.
#ifndef INFERD_CORE_SCALING_SCALING_POLICY_H_
#define INFERD_CORE_SCALING_SCALING_POLICY_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/scaling/workload_window.h"

namespace inferd {

enum class Comparison { kGreater, kGreaterEqual, kLess, kLessEqual };

// ">", ">=", "<", "<=".
absl::string_view ComparisonName(Comparison comparison);
// Parses a name written by ComparisonName; false when unknown.
bool ParseComparison(absl::string_view name, Comparison* out);
// Returns `value <comparison> threshold`.
bool Compare(double value, Comparison comparison, double threshold);

enum class ScaleDirection { kUp, kDown };
// "up" | "down".
absl::string_view ScaleDirectionName(ScaleDirection direction);

struct ScalingRule {
  ScaleDirection direction = ScaleDirection::kUp;
  WorkloadMetric metric = WorkloadMetric::kUtilization;
  Comparison comparison = Comparison::kGreater;
  double threshold = 0.0;                   // >= 0; <= 1 for utilization and memory_used
  absl::Duration hold = absl::Seconds(30);  // >= 0, <= window_length

  bool operator==(const ScalingRule&) const = default;
};

// Returns the default rules:
//   up:   queue_length_per_device > 8    for 30 s
//   up:   utilization > 0.85             for 30 s
//   down: utilization < 0.3              for 120 s   (deciding metric)
//   down: queue_length_per_device < 1    for 120 s
std::vector<ScalingRule> DefaultScalingRules();

// Most rules a policy may have (each is evaluated every interval).
inline constexpr size_t kMaxScalingRules = 64;
// Shortest evaluation interval: evaluations cost a window aggregation each,
// so a client must not be able to ask for thousands a second.
inline constexpr absl::Duration kMinEvaluationInterval = absl::Milliseconds(100);

// Defaults equal configs/inferd.yaml (the performance_optimization
// block) plus DefaultScalingRules().
struct ScalingPolicy {
  // enable_dynamic_scaling. false: every healthy device stays active and the
  // scaler only samples and reports.
  bool enabled = true;
  std::vector<ScalingRule> rules = DefaultScalingRules();
  // Cooldowns count from the last scale event of either direction; the
  // candidate action's direction picks which one applies.
  absl::Duration scale_up_cooldown = absl::Seconds(30);
  absl::Duration scale_down_cooldown = absl::Seconds(60);
  absl::Duration evaluation_interval = absl::Seconds(10);  // >= kMinEvaluationInterval
  double stability_threshold = 0.1;                        // max CV of the deciding metric, > 0
  int min_active_devices = 1;                              // >= 1
  int max_active_devices = 0;                              // 0: all healthy devices
  int max_replicas = 8;                                    // >= 1; 1 = never ask for more machines
  absl::Duration window_length = absl::Minutes(5);         // >= every rule's hold

  bool operator==(const ScalingPolicy&) const = default;
};

// Returns OK, or INVALID_ARGUMENT whose message starts with the field path
// and value, e.g. "rules[1].threshold: -2 must be >= 0",
// "scale_down_cooldown: -1 is negative".
absl::Status ValidatePolicy(const ScalingPolicy& policy);

// Names a policy field as a caller shows it: `field` is the leaf
// ("scale_up_cooldown", "threshold", "hold"), `rule_index` the rule's index
// or -1 for a policy-level field.
using PolicyFieldRenamer = std::function<std::string(absl::string_view field, int rule_index)>;

// Returns `status` with the field path that starts a ValidatePolicy or
// SetPolicy message ("rules[1].hold: ...") replaced by `rename`'s name for
// it, for callers that present the policy as config keys or wire fields.
// Statuses that are OK, not INVALID_ARGUMENT or not of that form pass through.
absl::Status RenamePolicyField(const absl::Status& status, const PolicyFieldRenamer& rename);

// Returns "up: utilization > 0.85 for 30s".
std::string DescribeRule(const ScalingRule& rule);

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_SCALING_POLICY_H_
