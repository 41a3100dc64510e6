#include "core/scaling/scaling_policy.h"

#include <string>

#include "gtest/gtest.h"

namespace inferd {
namespace {

std::string ErrorOf(const ScalingPolicy& policy) {
  const absl::Status status = ValidatePolicy(policy);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(ScalingPolicyTest, DefaultPolicyIsValidAndMatchesTheConfigDefaults) {
  const ScalingPolicy policy;
  EXPECT_TRUE(ValidatePolicy(policy).ok());
  EXPECT_TRUE(policy.enabled);
  EXPECT_EQ(policy.scale_up_cooldown, absl::Seconds(30));
  EXPECT_EQ(policy.scale_down_cooldown, absl::Seconds(60));
  EXPECT_EQ(policy.evaluation_interval, absl::Seconds(10));
  EXPECT_DOUBLE_EQ(policy.stability_threshold, 0.1);
}

TEST(ScalingPolicyTest, DefaultRulesAreTheDocumentedOnes) {
  const std::vector<ScalingRule> rules = DefaultScalingRules();
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(DescribeRule(rules[0]), "up: queue_length_per_device > 8 for 30s");
  EXPECT_EQ(DescribeRule(rules[1]), "up: utilization > 0.85 for 30s");
  EXPECT_EQ(DescribeRule(rules[2]), "down: utilization < 0.3 for 2m");
  EXPECT_EQ(DescribeRule(rules[3]), "down: queue_length_per_device < 1 for 2m");
}

TEST(ScalingPolicyTest, RuleErrorsNameTheRuleAndField) {
  ScalingPolicy policy;
  policy.rules[1].threshold = -2;
  EXPECT_EQ(ErrorOf(policy), "rules[1].threshold: -2 must be >= 0");

  policy = ScalingPolicy();
  policy.rules[2].threshold = 1.5;
  EXPECT_EQ(ErrorOf(policy), "rules[2].threshold: 1.5 must be <= 1 for utilization");

  policy = ScalingPolicy();
  policy.rules[0].hold = absl::Seconds(-5);
  EXPECT_EQ(ErrorOf(policy), "rules[0].hold: -5 is negative");

  policy = ScalingPolicy();
  policy.rules[3].hold = absl::Minutes(10);
  EXPECT_EQ(ErrorOf(policy), "rules[3].hold: 600 exceeds window_length (300)");

  policy = ScalingPolicy();
  policy.rules[0].metric = static_cast<WorkloadMetric>(42);
  EXPECT_EQ(ErrorOf(policy), "rules[0].metric: 42 is not a workload metric");
}

TEST(ScalingPolicyTest, TopLevelErrorsNameTheField) {
  ScalingPolicy policy;
  policy.scale_down_cooldown = absl::Seconds(-1);
  EXPECT_EQ(ErrorOf(policy), "scale_down_cooldown: -1 is negative");

  policy = ScalingPolicy();
  policy.scale_up_cooldown = absl::Seconds(-0.5);
  EXPECT_EQ(ErrorOf(policy), "scale_up_cooldown: -0.5 is negative");

  policy = ScalingPolicy();
  policy.evaluation_interval = absl::ZeroDuration();
  EXPECT_EQ(ErrorOf(policy), "evaluation_interval: 0 must be positive and finite");

  policy = ScalingPolicy();
  policy.stability_threshold = 0;
  EXPECT_EQ(ErrorOf(policy), "stability_threshold: 0 must be a positive finite number");

  policy = ScalingPolicy();
  policy.min_active_devices = 0;
  EXPECT_EQ(ErrorOf(policy), "min_active_devices: 0 must be >= 1");

  policy = ScalingPolicy();
  policy.min_active_devices = 3;
  policy.max_active_devices = 2;
  EXPECT_EQ(ErrorOf(policy), "max_active_devices: 2 is below min_active_devices (3)");

  policy = ScalingPolicy();
  policy.max_replicas = 0;
  EXPECT_EQ(ErrorOf(policy), "max_replicas: 0 must be >= 1");

  policy = ScalingPolicy();
  policy.window_length = absl::Seconds(5);
  EXPECT_EQ(ErrorOf(policy), "window_length: 5 must be finite and >= evaluation_interval (10)");
}

// Verifies that a client cannot ask for thousands of evaluations a second
// (SetScalingPolicy accepted 1e-9 s).
TEST(ScalingPolicyTest, RejectsAnEvaluationIntervalBelowTheMinimum) {
  ScalingPolicy policy;
  policy.evaluation_interval = absl::Nanoseconds(1);
  policy.window_length = absl::Seconds(300);
  EXPECT_EQ(ErrorOf(policy), "evaluation_interval: 1e-09 is below the minimum of 0.1");
  policy.evaluation_interval = kMinEvaluationInterval;
  EXPECT_TRUE(ValidatePolicy(policy).ok());
}

TEST(ScalingPolicyTest, EmptyRulesAreValid) {
  ScalingPolicy policy;
  policy.rules.clear();
  EXPECT_TRUE(ValidatePolicy(policy).ok());
}

TEST(ScalingPolicyTest, ComparisonsParseAndCompare) {
  for (Comparison c : {Comparison::kGreater, Comparison::kGreaterEqual, Comparison::kLess,
                       Comparison::kLessEqual}) {
    Comparison parsed;
    ASSERT_TRUE(ParseComparison(ComparisonName(c), &parsed));
    EXPECT_EQ(parsed, c);
  }
  Comparison parsed;
  EXPECT_FALSE(ParseComparison("==", &parsed));
  EXPECT_TRUE(Compare(2, Comparison::kGreater, 1));
  EXPECT_FALSE(Compare(1, Comparison::kGreater, 1));
  EXPECT_TRUE(Compare(1, Comparison::kGreaterEqual, 1));
  EXPECT_TRUE(Compare(0.5, Comparison::kLess, 1));
  EXPECT_FALSE(Compare(1, Comparison::kLess, 1));
  EXPECT_TRUE(Compare(1, Comparison::kLessEqual, 1));
}

}  // namespace
}  // namespace inferd
