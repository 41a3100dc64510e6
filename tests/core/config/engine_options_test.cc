#include "core/config/engine_options.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Parses `yaml` (which must be valid) into a Config.
Config Parse(const std::string& yaml) {
  absl::StatusOr<Config> config = ParseConfig(yaml);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.value_or(Config{});
}

std::string PolicyError(const std::string& yaml) {
  absl::StatusOr<ScalingPolicy> policy = ScalingPolicyFromConfig(Parse(yaml));
  EXPECT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(policy.status().message());
}

std::string ConfigError(const std::string& yaml) {
  absl::StatusOr<Config> config = ParseConfig(yaml);
  EXPECT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

std::string Rule(const std::string& direction, const std::string& metric,
                 const std::string& comparison, const std::string& threshold,
                 const std::string& hold) {
  return absl::StrCat("    - {direction: ", direction, ", metric: ", metric, ", comparison: \"",
                      comparison, "\", threshold: ", threshold, ", hold_seconds: ", hold, "}\n");
}

TEST(PolicyFromConfigTest, DefaultConfigGivesDefaultPolicy) {
  absl::StatusOr<ScalingPolicy> policy = ScalingPolicyFromConfig(Config{});
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(*policy, ScalingPolicy());
  EXPECT_EQ(policy->rules, DefaultScalingRules());
}

TEST(PolicyFromConfigTest, MapsThePerformanceOptimizationKeys) {
  Config config;
  PerformanceConfig& perf = config.device.performance;
  perf.enable_dynamic_scaling = false;
  perf.scale_up_cooldown = 5;
  perf.scale_down_cooldown = 90.5;
  perf.scaling_evaluation_interval = 2;
  perf.scaling_stability_threshold = 0.25;
  absl::StatusOr<ScalingPolicy> policy = ScalingPolicyFromConfig(config);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_FALSE(policy->enabled);
  EXPECT_EQ(policy->scale_up_cooldown, absl::Seconds(5));
  EXPECT_EQ(policy->scale_down_cooldown, absl::Milliseconds(90500));
  EXPECT_EQ(policy->evaluation_interval, absl::Seconds(2));
  EXPECT_DOUBLE_EQ(policy->stability_threshold, 0.25);
}

TEST(PolicyFromConfigTest, MapsTheScalingSection) {
  const Config config =
      Parse(absl::StrCat("scaling:\n  window_length_seconds: 600\n  min_active_devices: 2\n"
                         "  max_active_devices: 3\n  max_replicas: 4\n  rules:\n",
                         Rule("up", "queue_length", ">=", "50", "15.5"),
                         Rule("down", "memory_used", "<=", "0.25", "600")));
  absl::StatusOr<ScalingPolicy> policy = ScalingPolicyFromConfig(config);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->window_length, absl::Minutes(10));
  EXPECT_EQ(policy->min_active_devices, 2);
  EXPECT_EQ(policy->max_active_devices, 3);
  EXPECT_EQ(policy->max_replicas, 4);
  const std::vector<ScalingRule> want = {
      {ScaleDirection::kUp, WorkloadMetric::kQueueLength, Comparison::kGreaterEqual, 50.0,
       absl::Milliseconds(15500)},
      {ScaleDirection::kDown, WorkloadMetric::kMemoryUsed, Comparison::kLessEqual, 0.25,
       absl::Minutes(10)},
  };
  EXPECT_EQ(policy->rules, want);
}

// Verifies that the metric and comparison names the config table accepts
// are exactly those core/scaling parses (the table keeps its own copy).
TEST(PolicyFromConfigTest, ConfigAcceptsEveryMetricAndComparisonName) {
  for (int m = 0; m < kNumWorkloadMetrics; ++m) {
    const std::string name(WorkloadMetricName(static_cast<WorkloadMetric>(m)));
    for (Comparison c : {Comparison::kGreater, Comparison::kGreaterEqual, Comparison::kLess,
                         Comparison::kLessEqual}) {
      const std::string yaml = absl::StrCat(
          "scaling:\n  rules:\n", Rule("up", name, std::string(ComparisonName(c)), "0.5", "1"));
      absl::StatusOr<Config> config = ParseConfig(yaml);
      ASSERT_TRUE(config.ok()) << name << ": " << config.status();
      absl::StatusOr<ScalingPolicy> policy = ScalingPolicyFromConfig(*config);
      ASSERT_TRUE(policy.ok()) << policy.status();
      ASSERT_EQ(policy->rules.size(), 1u);
      EXPECT_EQ(policy->rules[0].metric, static_cast<WorkloadMetric>(m));
      EXPECT_EQ(policy->rules[0].comparison, c);
    }
  }
  EXPECT_THAT(ConfigError("scaling:\n  rules:\n" + Rule("up", "latency", ">", "1", "1")),
              StartsWith("scaling.rules[0].metric: \"latency\" is not one of"));
}

TEST(PolicyFromConfigTest, ConfigRejectsBadRulesNamingTheElement) {
  EXPECT_THAT(ConfigError("scaling:\n  rules:\n" + Rule("up", "queue_length", ">", "1", "1") +
                          Rule("sideways", "queue_length", ">", "1", "1")),
              StartsWith("scaling.rules[1].direction: \"sideways\" is not one of up, down"));
  EXPECT_THAT(ConfigError("scaling:\n  rules:\n" + Rule("up", "utilization", ">", "1.5", "1")),
              StartsWith("scaling.rules[0].threshold: 1.5 is out of range [0, 1] for utilization"));
  EXPECT_THAT(ConfigError("scaling:\n  rules:\n" + Rule("up", "queue_length", ">", "-1", "1")),
              StartsWith("scaling.rules[0].threshold: -1.0 is out of range"));
  EXPECT_THAT(ConfigError("scaling:\n  rules:\n" + Rule("up", "queue_length", "!=", "1", "1")),
              StartsWith("scaling.rules[0].comparison:"));
  EXPECT_THAT(ConfigError("scaling:\n  rules:\n" + Rule("up", "queue_length", ">", "1", "-2")),
              StartsWith("scaling.rules[0].hold_seconds: -2.0 is out of range"));
  EXPECT_THAT(ConfigError("scaling:\n  rules:\n    - {direction: up, metric: queue_length, "
                          "comparison: \">\", threshold: 1}\n"),
              StartsWith("scaling.rules[0].hold_seconds: missing"));
  EXPECT_THAT(ConfigError("scaling:\n  rules:\n    - {direction: up, metric: queue_length, "
                          "comparison: \">\", threshold: 1, hold_seconds: 1, for: 2}\n"),
              StartsWith("scaling.rules[0].for: unknown key"));
  EXPECT_THAT(ConfigError("scaling:\n  rules:\n    - {direction: up, metric: queue_length, "
                          "comparison: \">\", threshold: x, hold_seconds: 1}\n"),
              StartsWith("scaling.rules[0].threshold: expected a number"));
  EXPECT_THAT(ConfigError("scaling:\n  rules:\n    - up\n"),
              StartsWith("scaling.rules[0]: expected a map"));
  EXPECT_THAT(ConfigError("scaling:\n  rules: {}\n"), StartsWith("scaling.rules: expected a list"));
  EXPECT_THAT(ConfigError("scaling:\n  max_replicas: 0\n"),
              StartsWith("scaling.max_replicas: 0 is out of range [1, 1000]"));
  EXPECT_THAT(ConfigError("scaling:\n  window_length_seconds: 0\n"),
              StartsWith("scaling.window_length_seconds: 0.0 is out of range (0, 3600]"));
}

TEST(PolicyFromConfigTest, RuleHoldLongerThanWindowNamesTheRuleKey) {
  EXPECT_THAT(PolicyError("scaling:\n  window_length_seconds: 60\n  rules:\n" +
                          Rule("up", "queue_length", ">", "1", "30") +
                          Rule("down", "queue_length", "<", "1", "90")),
              StartsWith("scaling.rules[1].hold_seconds: 90 exceeds window_length (60)"));
}

// Verifies that a window too short for the default rules blames the window
// key, not a rule the user never wrote.
TEST(PolicyFromConfigTest, WindowShorterThanDefaultHoldsNamesTheWindowKey) {
  const std::string message = PolicyError("scaling:\n  window_length_seconds: 60\n");
  EXPECT_THAT(message, StartsWith("scaling.window_length_seconds: 60 is shorter than a default"));
  EXPECT_THAT(message, HasSubstr("write scaling.rules"));
}

TEST(PolicyFromConfigTest, CombinationErrorsNameTheConfigKeys) {
  EXPECT_THAT(PolicyError("scaling:\n  min_active_devices: 3\n  max_active_devices: 2\n"),
              StartsWith("scaling.max_active_devices: 2 is below min_active_devices (3)"));
  EXPECT_THAT(
      PolicyError("device:\n  multi_gpu:\n    performance_optimization:\n"
                  "      scaling_stability_threshold: 0\n"),
      StartsWith("device.multi_gpu.performance_optimization.scaling_stability_threshold: 0 "));
  EXPECT_THAT(PolicyError("device:\n  multi_gpu:\n    performance_optimization:\n"
                          "      scaling_evaluation_interval: 20\n"
                          "scaling:\n  window_length_seconds: 10\n  rules: []\n"),
              StartsWith("scaling.window_length_seconds: 10 must be finite and >= "));
}

TEST(PolicyFromConfigTest, DescribeConfigWithRulesParsesBack) {
  Config config;
  config.scaling.window_length_seconds = 120.5;
  config.scaling.rules = {{"up", "queue_length_per_device", ">", 4.25, 10},
                          {"down", "utilization", "<=", 0.1, 120}};
  absl::StatusOr<Config> back = ParseConfig(DescribeConfig(config));
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << DescribeConfig(config);
  EXPECT_EQ(*back, config);
}

TEST(PolicyFromConfigTest, ScalerOptionsUseAllDevicesAndAFineEnoughWindow) {
  Config config;
  absl::StatusOr<ScalerOptions> options = ScalerOptionsFromConfig(config, {0, 1, 2});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->devices, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(options->initial_active_devices, 0);
  EXPECT_EQ(options->window_resolution, absl::Seconds(1));
  EXPECT_EQ(options->policy, ScalingPolicy());

  config.device.performance.scaling_evaluation_interval = 0.25;
  options = ScalerOptionsFromConfig(config, {0});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->window_resolution, absl::Milliseconds(250));

  config.scaling.max_replicas = 0;
  EXPECT_FALSE(ScalerOptionsFromConfig(config, {0}).ok());
}

TEST(PolicyFromConfigTest, ScalingConfigKeyNamesEveryPolicyField) {
  EXPECT_EQ(ScalingConfigKey("enabled", -1),
            "device.multi_gpu.performance_optimization.enable_dynamic_scaling");
  EXPECT_EQ(ScalingConfigKey("scale_down_cooldown", -1),
            "device.multi_gpu.performance_optimization.scale_down_cooldown");
  EXPECT_EQ(ScalingConfigKey("evaluation_interval", -1),
            "device.multi_gpu.performance_optimization.scaling_evaluation_interval");
  EXPECT_EQ(ScalingConfigKey("window_length", -1), "scaling.window_length_seconds");
  EXPECT_EQ(ScalingConfigKey("max_replicas", -1), "scaling.max_replicas");
  EXPECT_EQ(ScalingConfigKey("hold", 3), "scaling.rules[3].hold_seconds");
  EXPECT_EQ(ScalingConfigKey("threshold", 0), "scaling.rules[0].threshold");
}

TEST(RenamePolicyFieldTest, RewritesOnlyTheLeadingFieldPath) {
  auto rename = [](absl::string_view field, int index) {
    return absl::StrCat("policy.", index >= 0 ? absl::StrCat("rules[", index, "].") : "", field,
                        "_x");
  };
  EXPECT_EQ(RenamePolicyField(absl::InvalidArgumentError("rules[12].hold: 5 exceeds x: y"), rename)
                .message(),
            "policy.rules[12].hold_x: 5 exceeds x: y");
  EXPECT_EQ(
      RenamePolicyField(absl::InvalidArgumentError("scale_up_cooldown: -1 is negative"), rename)
          .message(),
      "policy.scale_up_cooldown_x: -1 is negative");
  // Other codes, OK and unrecognized shapes pass through.
  EXPECT_EQ(RenamePolicyField(absl::NotFoundError("device: 3"), rename),
            absl::NotFoundError("device: 3"));
  EXPECT_TRUE(RenamePolicyField(absl::OkStatus(), rename).ok());
  EXPECT_EQ(RenamePolicyField(absl::InvalidArgumentError("Bad Thing: x"), rename).message(),
            "Bad Thing: x");
  EXPECT_EQ(RenamePolicyField(absl::InvalidArgumentError("rules[x].hold: 1"), rename).message(),
            "rules[x].hold: 1");
}

TEST(OtherOptionsFromConfigTest, SharedMemoryAndRepositoryOptions) {
  Config config;
  config.shared_memory.max_regions = 7;
  config.models.torch_backend_library = "/opt/libinferd_torch.so";
  SharedMemoryOptions shm = SharedMemoryOptionsFromConfig(config, {nullptr, nullptr});
  EXPECT_EQ(shm.max_regions, 7);
  EXPECT_EQ(shm.devices.size(), 2u);
  ModelRepositoryOptions repo = ModelRepositoryOptionsFromConfig(config, {nullptr});
  EXPECT_EQ(repo.torch_backend_library, "/opt/libinferd_torch.so");
  EXPECT_EQ(repo.devices.size(), 1u);
}

TEST(OtherOptionsFromConfigTest, ControlModeFollowsTheKey) {
  Config config;
  EXPECT_EQ(ModelControlModeFromConfig(config), ModelControlMode::kExplicit);
  config.models.control_mode = "poll";
  EXPECT_EQ(ModelControlModeFromConfig(config), ModelControlMode::kPoll);
  config.models.control_mode = "none";
  EXPECT_EQ(ModelControlModeFromConfig(config), ModelControlMode::kNone);
}

TEST(OtherOptionsFromConfigTest, NoRepositoryMeansNoBatchingLookup) {
  EXPECT_EQ(ModelBatchingLookup(nullptr, BatchingPolicy{}), nullptr);
}

}  // namespace
}  // namespace inferd
