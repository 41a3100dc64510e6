#include "core/scaling/policy_from_config.h"

namespace inferd {

ScalingPolicy ScalingPolicyFromConfig(const PerformanceConfig& config) {
  ScalingPolicy policy;
  policy.enabled = config.enable_dynamic_scaling;
  policy.scale_up_cooldown = absl::Seconds(config.scale_up_cooldown);
  policy.scale_down_cooldown = absl::Seconds(config.scale_down_cooldown);
  policy.evaluation_interval = absl::Seconds(config.scaling_evaluation_interval);
  policy.stability_threshold = config.scaling_stability_threshold;
  return policy;
}

}  // namespace inferd
