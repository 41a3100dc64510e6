#include "server/scaling_proto.h"

#include <cmath>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;

v1::ScalingPolicy WirePolicy() {
  v1::ScalingPolicy w;
  w.set_enabled(true);
  v1::ScalingRule* up = w.add_rules();
  up->set_direction(v1::SCALING_DIRECTION_UP);
  up->set_metric(v1::SCALING_METRIC_QUEUE_LENGTH_PER_DEVICE);
  up->set_comparison(v1::SCALING_COMPARISON_GREATER_EQUAL);
  up->set_threshold(8);
  up->set_hold_seconds(5);
  v1::ScalingRule* down = w.add_rules();
  down->set_direction(v1::SCALING_DIRECTION_DOWN);
  down->set_metric(v1::SCALING_METRIC_UTILIZATION);
  down->set_comparison(v1::SCALING_COMPARISON_LESS);
  down->set_threshold(0.2);
  w.set_scale_up_cooldown_seconds(30);
  w.set_scale_down_cooldown_seconds(60);
  w.set_evaluation_interval_seconds(1);
  w.set_window_length_seconds(120);
  w.set_stability_threshold(0.5);
  w.set_min_active_devices(1);
  w.set_max_active_devices(4);
  w.set_max_replicas(8);
  return w;
}

TEST(ScalingProtoTest, PolicyRoundTrips) {
  absl::StatusOr<ScalingPolicy> policy = PolicyFromProto(WirePolicy());
  ASSERT_TRUE(policy.ok()) << policy.status();
  ASSERT_EQ(policy->rules.size(), 2u);
  EXPECT_EQ(policy->rules[0].direction, ScaleDirection::kUp);
  EXPECT_EQ(policy->rules[0].metric, WorkloadMetric::kQueueLengthPerDevice);
  EXPECT_EQ(policy->rules[0].comparison, Comparison::kGreaterEqual);
  EXPECT_EQ(policy->rules[0].hold, absl::Seconds(5));
  EXPECT_EQ(policy->rules[1].metric, WorkloadMetric::kUtilization);
  EXPECT_EQ(policy->window_length, absl::Seconds(120));
  EXPECT_EQ(policy->max_replicas, 8);

  v1::ScalingPolicy back;
  PolicyToProto(*policy, &back);
  EXPECT_EQ(back.SerializeAsString(), WirePolicy().SerializeAsString());
}

TEST(ScalingProtoTest, EveryMetricAndComparisonRoundTrips) {
  for (int m = 0; m < kNumWorkloadMetrics; ++m) {
    for (Comparison c : {Comparison::kGreater, Comparison::kGreaterEqual, Comparison::kLess,
                         Comparison::kLessEqual}) {
      ScalingPolicy policy;
      ScalingRule rule;
      rule.metric = static_cast<WorkloadMetric>(m);
      rule.comparison = c;
      policy.rules = {rule};
      v1::ScalingPolicy wire;
      PolicyToProto(policy, &wire);
      absl::StatusOr<ScalingPolicy> back = PolicyFromProto(wire);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->rules[0].metric, rule.metric);
      EXPECT_EQ(back->rules[0].comparison, c);
    }
  }
}

TEST(ScalingProtoTest, BadEnumsAndNumbersAreNamed) {
  v1::ScalingPolicy w = WirePolicy();
  w.mutable_rules(1)->set_direction(v1::SCALING_DIRECTION_UNSPECIFIED);
  EXPECT_THAT(std::string(PolicyFromProto(w).status().message()),
              HasSubstr("policy.rules[1].direction: SCALING_DIRECTION_UNSPECIFIED is not"));

  w = WirePolicy();
  w.mutable_rules(0)->set_metric(static_cast<v1::ScalingMetric>(77));
  absl::Status st = PolicyFromProto(w).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "policy.rules[0].metric: 77 is not a workload metric");

  w = WirePolicy();
  w.mutable_rules(0)->set_comparison(v1::SCALING_COMPARISON_UNSPECIFIED);
  EXPECT_THAT(std::string(PolicyFromProto(w).status().message()),
              HasSubstr("policy.rules[0].comparison: "));

  w = WirePolicy();
  w.mutable_rules(0)->set_hold_seconds(INFINITY);
  EXPECT_EQ(PolicyFromProto(w).status().message(),
            "policy.rules[0].hold_seconds: inf must be finite");

  w = WirePolicy();
  w.set_window_length_seconds(NAN);
  EXPECT_THAT(std::string(PolicyFromProto(w).status().message()),
              HasSubstr("policy.window_length_seconds: "));
}

TEST(ScalingProtoTest, FieldNamesAreTheWireNames) {
  EXPECT_EQ(PolicyFieldName("hold", 1), "policy.rules[1].hold_seconds");
  EXPECT_EQ(PolicyFieldName("threshold", 0), "policy.rules[0].threshold");
  EXPECT_EQ(PolicyFieldName("scale_up_cooldown", -1), "policy.scale_up_cooldown_seconds");
  EXPECT_EQ(PolicyFieldName("window_length", -1), "policy.window_length_seconds");
  EXPECT_EQ(PolicyFieldName("max_replicas", -1), "policy.max_replicas");
}

TEST(ScalingProtoTest, EventsCarryTheirScope) {
  ScalingEvent e;
  e.action = ScalingAction::kDeactivateDevice;
  e.device = 2;
  e.direction = ScaleDirection::kDown;
  v1::ScalingEvent w;
  EventToProto(e, &w);
  EXPECT_EQ(w.action(), v1::SCALING_ACTION_DEACTIVATE_DEVICE);
  EXPECT_EQ(w.scope(), v1::SCALING_SCOPE_DEVICE);
  EXPECT_EQ(w.direction(), v1::SCALING_DIRECTION_DOWN);
  e.action = ScalingAction::kRaiseReplicas;
  EventToProto(e, &w);
  EXPECT_EQ(w.scope(), v1::SCALING_SCOPE_REPLICA);
}

TEST(ScalingProtoTest, StatsListHealthyDevicesSorted) {
  ScalingStats stats;
  stats.active_devices = {3, 1};
  stats.inactive_devices = {2};
  stats.unhealthy_devices = {0};
  v1::GetScalingStatsResponse w;
  ScalingStatsToProto(stats, &w);
  ASSERT_EQ(w.healthy_devices_size(), 3);
  EXPECT_EQ(w.healthy_devices(0), 1);
  EXPECT_EQ(w.healthy_devices(2), 3);
  EXPECT_EQ(w.window_size(), kNumWorkloadMetrics);
}

}  // namespace
}  // namespace inferd
