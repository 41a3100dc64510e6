// ScalingPolicyFromConfig / ScalerOptionsFromConfig: map the config's scaling
// keys — the seed's under device.multi_gpu.performance_optimization
// (enable_dynamic_scaling, cooldowns, evaluation interval, stability) and the
// scaling.* section (window, device and replica bounds, rules) — onto what
// DynamicScaler::Create takes, for the composition root.
#ifndef INFERD_CORE_SCALING_POLICY_FROM_CONFIG_H_
#define INFERD_CORE_SCALING_POLICY_FROM_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/config.h"
#include "core/scaling/dynamic_scaler.h"
#include "core/scaling/scaling_policy.h"

namespace inferd {

// Returns the policy, checked with ValidatePolicy (ValidateConfig checks each
// key alone; this checks their combination, e.g. a rule's hold against the
// window). scaling.rules: [] gives DefaultScalingRules(). INVALID_ARGUMENT
// names the config key, e.g. "scaling.rules[1].hold_seconds: 600 exceeds
// window_length (300)".
absl::StatusOr<ScalingPolicy> ScalingPolicyFromConfig(const Config& config);

// Returns options for `devices` (DeviceInfo indexes) with the policy above,
// all devices active at start, and a window resolution of
// min(1 s, evaluation interval) so every evaluation sees its own samples.
absl::StatusOr<ScalerOptions> ScalerOptionsFromConfig(const Config& config,
                                                      std::vector<int> devices);

// Returns the config key of a ScalingPolicy field (see PolicyFieldRenamer):
// ("scale_up_cooldown", -1) -> "device.multi_gpu.performance_optimization.
// scale_up_cooldown", ("hold", 2) -> "scaling.rules[2].hold_seconds".
std::string ScalingConfigKey(absl::string_view field, int rule_index);

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_POLICY_FROM_CONFIG_H_
