#include "core/scaling/policy_from_config.h"

#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(PolicyFromConfigTest, DefaultConfigGivesDefaultPolicy) {
  EXPECT_EQ(ScalingPolicyFromConfig(PerformanceConfig()), ScalingPolicy());
}

TEST(PolicyFromConfigTest, MapsTheSeedKeys) {
  PerformanceConfig config;
  config.enable_dynamic_scaling = false;
  config.scale_up_cooldown = 5;
  config.scale_down_cooldown = 90.5;
  config.scaling_evaluation_interval = 2;
  config.scaling_stability_threshold = 0.25;
  const ScalingPolicy policy = ScalingPolicyFromConfig(config);
  EXPECT_FALSE(policy.enabled);
  EXPECT_EQ(policy.scale_up_cooldown, absl::Seconds(5));
  EXPECT_EQ(policy.scale_down_cooldown, absl::Milliseconds(90500));
  EXPECT_EQ(policy.evaluation_interval, absl::Seconds(2));
  EXPECT_DOUBLE_EQ(policy.stability_threshold, 0.25);
  EXPECT_TRUE(ValidatePolicy(policy).ok());
}

}  // namespace
}  // namespace inferd
