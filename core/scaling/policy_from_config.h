// ScalingPolicyFromConfig: maps the seed's scaling keys of
// device.multi_gpu.performance_optimization onto a ScalingPolicy, for the
// composition root. Keys the seed lacks (rules, device and replica bounds,
// window length) keep ScalingPolicy's defaults.
#ifndef INFERD_CORE_SCALING_POLICY_FROM_CONFIG_H_
#define INFERD_CORE_SCALING_POLICY_FROM_CONFIG_H_

#include "core/config/config.h"
#include "core/scaling/scaling_policy.h"

namespace inferd {

// Returns the policy. Run ValidatePolicy on it: ValidateConfig range-checks
// each key, ValidatePolicy their combination.
ScalingPolicy ScalingPolicyFromConfig(const PerformanceConfig& config);

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_POLICY_FROM_CONFIG_H_
