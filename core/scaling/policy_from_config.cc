#include "core/scaling/policy_from_config.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/util/check.h"

namespace inferd {
namespace {

constexpr char kSeed[] = "device.multi_gpu.performance_optimization.";

ScalingRule RuleFromConfig(const ScalingRuleConfig& config) {
  ScalingRule rule;
  // ValidateConfig has checked the names; an unknown one fails here loudly.
  rule.direction = config.direction == "down" ? ScaleDirection::kDown : ScaleDirection::kUp;
  INFERD_CHECK(ParseWorkloadMetric(config.metric, &rule.metric));
  INFERD_CHECK(ParseComparison(config.comparison, &rule.comparison));
  rule.threshold = config.threshold;
  rule.hold = absl::Seconds(config.hold_seconds);
  return rule;
}

}  // namespace

std::string ScalingConfigKey(absl::string_view field, int rule_index) {
  if (rule_index >= 0) {
    return absl::StrCat("scaling.rules[", rule_index, "].",
                        field == "hold" ? "hold_seconds" : field);
  }
  if (field == "enabled") return absl::StrCat(kSeed, "enable_dynamic_scaling");
  if (field == "scale_up_cooldown" || field == "scale_down_cooldown") {
    return absl::StrCat(kSeed, field);
  }
  if (field == "evaluation_interval") return absl::StrCat(kSeed, "scaling_evaluation_interval");
  if (field == "stability_threshold") return absl::StrCat(kSeed, "scaling_stability_threshold");
  if (field == "window_length") return "scaling.window_length_seconds";
  return absl::StrCat("scaling.", field);
}

absl::StatusOr<ScalingPolicy> ScalingPolicyFromConfig(const Config& config) {
  const PerformanceConfig& seed = config.device.performance;
  const ScalingConfig& scaling = config.scaling;
  ScalingPolicy policy;
  policy.enabled = seed.enable_dynamic_scaling;
  policy.scale_up_cooldown = absl::Seconds(seed.scale_up_cooldown);
  policy.scale_down_cooldown = absl::Seconds(seed.scale_down_cooldown);
  policy.evaluation_interval = absl::Seconds(seed.scaling_evaluation_interval);
  policy.stability_threshold = seed.scaling_stability_threshold;
  policy.min_active_devices = scaling.min_active_devices;
  policy.max_active_devices = scaling.max_active_devices;
  policy.max_replicas = scaling.max_replicas;
  policy.window_length = absl::Seconds(scaling.window_length_seconds);
  const bool default_rules = scaling.rules.empty();
  if (!default_rules) {
    policy.rules.clear();
    for (const ScalingRuleConfig& rule : scaling.rules)
      policy.rules.push_back(RuleFromConfig(rule));
  }
  const absl::Status status = ValidatePolicy(policy);
  if (status.ok()) return policy;
  if (default_rules && absl::StartsWith(status.message(), "rules[")) {
    // The user wrote no rule: blame the key that made the defaults invalid.
    return absl::InvalidArgumentError(
        absl::StrCat("scaling.window_length_seconds: ", scaling.window_length_seconds,
                     " is shorter than a default rule's hold (", status.message(),
                     "); raise it or write scaling.rules"));
  }
  return RenamePolicyField(status, ScalingConfigKey);
}

absl::StatusOr<ScalerOptions> ScalerOptionsFromConfig(const Config& config,
                                                      std::vector<int> devices) {
  absl::StatusOr<ScalingPolicy> policy = ScalingPolicyFromConfig(config);
  if (!policy.ok()) return policy.status();
  ScalerOptions options;
  options.devices = std::move(devices);
  options.window_resolution = std::min(absl::Seconds(1), policy->evaluation_interval);
  options.policy = *std::move(policy);
  return options;
}

}  // namespace inferd
