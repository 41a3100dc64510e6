#include "core/scaling/scaling_policy.h"

#include <cctype>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

std::string Seconds(absl::Duration d) { return absl::StrCat(absl::ToDoubleSeconds(d)); }

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status CheckNonNegative(absl::string_view field, absl::Duration d) {
  if (d < absl::ZeroDuration()) {
    return Invalid(field, absl::StrCat(Seconds(d), " is negative"));
  }
  if (d == absl::InfiniteDuration()) {
    return Invalid(field, "must be finite");
  }
  return absl::OkStatus();
}

absl::Status ValidateRule(const ScalingRule& rule, int index, absl::Duration window_length) {
  const std::string prefix = absl::StrCat("rules[", index, "]");
  const int metric = static_cast<int>(rule.metric);
  if (metric < 0 || metric >= kNumWorkloadMetrics) {
    return Invalid(absl::StrCat(prefix, ".metric"),
                   absl::StrCat(metric, " is not a workload metric"));
  }
  if (rule.direction != ScaleDirection::kUp && rule.direction != ScaleDirection::kDown) {
    return Invalid(absl::StrCat(prefix, ".direction"), "must be up or down");
  }
  const std::string threshold = absl::StrCat(prefix, ".threshold");
  if (!std::isfinite(rule.threshold)) {
    return Invalid(threshold, "must be a finite number");
  }
  if (rule.threshold < 0) {
    return Invalid(threshold, absl::StrCat(rule.threshold, " must be >= 0"));
  }
  if ((rule.metric == WorkloadMetric::kUtilization || rule.metric == WorkloadMetric::kMemoryUsed) &&
      rule.threshold > 1) {
    return Invalid(threshold, absl::StrCat(rule.threshold, " must be <= 1 for ",
                                           WorkloadMetricName(rule.metric)));
  }
  const std::string hold = absl::StrCat(prefix, ".hold");
  RETURN_IF_ERROR(CheckNonNegative(hold, rule.hold));
  if (rule.hold > window_length) {
    return Invalid(hold, absl::StrCat(Seconds(rule.hold), " exceeds window_length (",
                                      Seconds(window_length), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view ComparisonName(Comparison comparison) {
  switch (comparison) {
    case Comparison::kGreater:
      return ">";
    case Comparison::kGreaterEqual:
      return ">=";
    case Comparison::kLess:
      return "<";
    case Comparison::kLessEqual:
      return "<=";
  }
  return "?";
}

bool ParseComparison(absl::string_view name, Comparison* out) {
  for (Comparison c : {Comparison::kGreater, Comparison::kGreaterEqual, Comparison::kLess,
                       Comparison::kLessEqual}) {
    if (ComparisonName(c) == name) {
      *out = c;
      return true;
    }
  }
  return false;
}

bool Compare(double value, Comparison comparison, double threshold) {
  switch (comparison) {
    case Comparison::kGreater:
      return value > threshold;
    case Comparison::kGreaterEqual:
      return value >= threshold;
    case Comparison::kLess:
      return value < threshold;
    case Comparison::kLessEqual:
      return value <= threshold;
  }
  return false;
}

absl::string_view ScaleDirectionName(ScaleDirection direction) {
  return direction == ScaleDirection::kUp ? "up" : "down";
}

std::vector<ScalingRule> DefaultScalingRules() {
  return {
      {ScaleDirection::kUp, WorkloadMetric::kQueueLengthPerDevice, Comparison::kGreater, 8.0,
       absl::Seconds(30)},
      {ScaleDirection::kUp, WorkloadMetric::kUtilization, Comparison::kGreater, 0.85,
       absl::Seconds(30)},
      {ScaleDirection::kDown, WorkloadMetric::kUtilization, Comparison::kLess, 0.3,
       absl::Seconds(120)},
      {ScaleDirection::kDown, WorkloadMetric::kQueueLengthPerDevice, Comparison::kLess, 1.0,
       absl::Seconds(120)},
  };
}

absl::Status ValidatePolicy(const ScalingPolicy& policy) {
  RETURN_IF_ERROR(CheckNonNegative("scale_up_cooldown", policy.scale_up_cooldown));
  RETURN_IF_ERROR(CheckNonNegative("scale_down_cooldown", policy.scale_down_cooldown));
  if (policy.evaluation_interval <= absl::ZeroDuration() ||
      policy.evaluation_interval == absl::InfiniteDuration()) {
    return Invalid("evaluation_interval", absl::StrCat(Seconds(policy.evaluation_interval),
                                                       " must be positive and finite"));
  }
  if (policy.evaluation_interval < kMinEvaluationInterval) {
    return Invalid("evaluation_interval",
                   absl::StrCat(Seconds(policy.evaluation_interval), " is below the minimum of ",
                                Seconds(kMinEvaluationInterval)));
  }
  if (!(policy.stability_threshold > 0) || std::isinf(policy.stability_threshold)) {
    return Invalid("stability_threshold",
                   absl::StrCat(policy.stability_threshold, " must be a positive finite number"));
  }
  if (policy.min_active_devices < 1) {
    return Invalid("min_active_devices", absl::StrCat(policy.min_active_devices, " must be >= 1"));
  }
  if (policy.max_active_devices < 0) {
    return Invalid("max_active_devices",
                   absl::StrCat(policy.max_active_devices, " must be >= 0 (0 = all devices)"));
  }
  if (policy.max_active_devices > 0 && policy.max_active_devices < policy.min_active_devices) {
    return Invalid("max_active_devices",
                   absl::StrCat(policy.max_active_devices, " is below min_active_devices (",
                                policy.min_active_devices, ")"));
  }
  if (policy.max_replicas < 1) {
    return Invalid("max_replicas", absl::StrCat(policy.max_replicas, " must be >= 1"));
  }
  if (policy.window_length < policy.evaluation_interval ||
      policy.window_length == absl::InfiniteDuration()) {
    return Invalid("window_length", absl::StrCat(Seconds(policy.window_length),
                                                 " must be finite and >= evaluation_interval (",
                                                 Seconds(policy.evaluation_interval), ")"));
  }
  if (policy.rules.size() > kMaxScalingRules) {
    return Invalid("rules", absl::StrCat(policy.rules.size(), " rules exceed the limit of ",
                                         kMaxScalingRules));
  }
  for (size_t i = 0; i < policy.rules.size(); ++i) {
    RETURN_IF_ERROR(ValidateRule(policy.rules[i], static_cast<int>(i), policy.window_length));
  }
  return absl::OkStatus();
}

absl::Status RenamePolicyField(const absl::Status& status, const PolicyFieldRenamer& rename) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return status;
  const absl::string_view message = status.message();
  const size_t colon = message.find(": ");
  if (colon == absl::string_view::npos) return status;
  absl::string_view field = message.substr(0, colon);
  int rule_index = -1;
  if (absl::ConsumePrefix(&field, "rules[")) {
    const size_t close = field.find("].");
    if (close == absl::string_view::npos ||
        !absl::SimpleAtoi(field.substr(0, close), &rule_index) || rule_index < 0) {
      return status;
    }
    field.remove_prefix(close + 2);
  }
  if (field.empty()) return status;
  for (char c : field) {
    if (!std::islower(static_cast<unsigned char>(c)) && c != '_') return status;
  }
  return absl::InvalidArgumentError(absl::StrCat(rename(field, rule_index), message.substr(colon)));
}

std::string DescribeRule(const ScalingRule& rule) {
  return absl::StrCat(ScaleDirectionName(rule.direction), ": ", WorkloadMetricName(rule.metric),
                      " ", ComparisonName(rule.comparison), " ", rule.threshold, " for ",
                      absl::FormatDuration(rule.hold));
}

}  // namespace inferd
