#include "core/scaling/dynamic_scaler.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace inferd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ScalingRule Rule(ScaleDirection direction, WorkloadMetric metric, Comparison comparison,
                 double threshold, absl::Duration hold) {
  return ScalingRule{direction, metric, comparison, threshold, hold};
}

bool IsScale(const ScalingEvent& e) {
  return e.action == ScalingAction::kActivateDevice ||
         e.action == ScalingAction::kDeactivateDevice ||
         e.action == ScalingAction::kRaiseReplicas || e.action == ScalingAction::kLowerReplicas;
}

bool IsUp(const ScalingEvent& e) {
  return e.action == ScalingAction::kActivateDevice || e.action == ScalingAction::kRaiseReplicas;
}

class DynamicScalerTest : public ::testing::Test {
 protected:
  std::unique_ptr<DynamicScaler> Make(const ScalingPolicy& policy, int devices = 4, int initial = 0,
                                      size_t history = 256) {
    ScalerOptions options;
    for (int i = 0; i < devices; ++i) options.devices.push_back(i);
    options.policy = policy;
    options.initial_active_devices = initial;
    options.event_history_capacity = history;
    auto scaler = DynamicScaler::Create(options, &clock_, registry_);
    EXPECT_TRUE(scaler.ok()) << scaler.status();
    devices_ = devices;
    return std::move(scaler).value();
  }

  // Runs `seconds` of simulated time, one second at a time: each second the
  // scheduler reports queue(t) tasks and every device reports util(t), then
  // the scaler evaluates if due. `t` counts seconds from the start.
  void Feed(DynamicScaler& scaler, int seconds, const std::function<double(int)>& queue,
            const std::function<double(int)>& util) {
    for (int i = 0; i < seconds; ++i) {
      clock_.Advance(absl::Seconds(1));
      ++t_;
      ASSERT_TRUE(scaler.RecordSchedulerSample({queue(t_), 0.05, 20.0}).ok());
      for (int d = 0; d < devices_; ++d) {
        ASSERT_TRUE(scaler.RecordDeviceSample({d, util(t_), 0.4}).ok());
      }
      scaler.EvaluateIfDue();
    }
  }

  // Seconds since the start at which `e` happened.
  int64_t At(const ScalingEvent& e) const { return absl::ToInt64Seconds(e.time - start_); }

  static std::vector<ScalingEvent> Scales(const DynamicScaler& scaler) {
    std::vector<ScalingEvent> out;
    for (const ScalingEvent& e : scaler.GetEvents()) {
      if (IsScale(e)) out.push_back(e);
    }
    return out;
  }

  FakeClock clock_;
  const absl::Time start_ = clock_.Now();
  prometheus::Registry registry_;
  int devices_ = 0;
  int t_ = 0;
};

const auto kZero = [](int) { return 0.0; };

// Verifies that a step in load scales up only once the rule has held for its
// hold time, and that the next scale-up waits for the cooldown.
TEST_F(DynamicScalerTest, StepLoadScalesUpAfterHoldAndNotBeforeCooldown) {
  ScalingPolicy policy;
  policy.rules = {Rule(ScaleDirection::kUp, WorkloadMetric::kQueueLengthPerDevice,
                       Comparison::kGreater, 8, absl::Seconds(30))};
  policy.scale_up_cooldown = absl::Seconds(60);
  policy.stability_threshold = 0.5;
  auto scaler = Make(policy, 4, /*initial=*/1);
  ASSERT_THAT(scaler->ActiveDevices(), ElementsAre(0));

  constexpr int kStep = 60;  // first loaded sample at t = 61
  Feed(
      *scaler, 300, [](int t) { return t > kStep ? 40.0 : 0.0; }, kZero);

  const std::vector<ScalingEvent> scales = Scales(*scaler);
  ASSERT_GE(scales.size(), 2u);
  EXPECT_EQ(scales[0].action, ScalingAction::kActivateDevice);
  EXPECT_EQ(scales[0].device, 1);
  EXPECT_GE(At(scales[0]), kStep + 30);
  EXPECT_LE(At(scales[0]), kStep + 30 + 2 * 10);
  EXPECT_EQ(scales[0].rule_index, 0);
  EXPECT_DOUBLE_EQ(scales[0].threshold, 8);
  EXPECT_GT(scales[0].value, 8);
  EXPECT_THAT(scales[0].reason, HasSubstr("queue_length_per_device > 8"));
  for (size_t i = 1; i < scales.size(); ++i) {
    EXPECT_GE(At(scales[i]) - At(scales[i - 1]), 60) << i;
  }
  EXPECT_GT(scaler->GetStats().held_cooldown, 0);
}

// Verifies the default rules do not flap on a square wave whose period equals
// the scale-down cooldown (120 s here): each 60 s crest outlasts the 30 s
// scale-up hold, but no 60 s trough outlasts the 120 s scale-down hold, so
// the scaler grows to what the crests need and stays there.
TEST_F(DynamicScalerTest, SquareWaveAtCooldownPeriodDoesNotFlap) {
  ScalingPolicy policy;  // default rules
  policy.scale_down_cooldown = absl::Seconds(120);
  auto scaler = Make(policy, 4, /*initial=*/1);
  const int period = absl::ToInt64Seconds(policy.scale_down_cooldown);
  auto high = [period](int t) { return (t / (period / 2)) % 2 == 0; };
  Feed(
      *scaler, 3600, [&](int t) { return high(t) ? 2.0 : 0.0; },
      [&](int t) { return high(t) ? 0.95 : 0.1; });

  // The crests overload even 4 devices, so it may also ask for replicas.
  int activations = 0;
  for (const ScalingEvent& e : Scales(*scaler)) {
    EXPECT_TRUE(IsUp(e)) << e.reason;
    activations += e.action == ScalingAction::kActivateDevice ? 1 : 0;
  }
  EXPECT_EQ(activations, 3);  // up to all 4 devices, then it stays
  EXPECT_EQ(scaler->ActiveDevices().size(), 4u);
}

// Verifies that with rules that would act at every evaluation, a square wave
// at the cooldown period is throttled: scale events of any direction are a
// cooldown apart, so decisions are bounded by duration / cooldown.
TEST_F(DynamicScalerTest, ReversalsWaitForTheSharedCooldown) {
  ScalingPolicy policy;
  policy.rules = {
      Rule(ScaleDirection::kUp, WorkloadMetric::kUtilization, Comparison::kGreater, 0.85,
           absl::ZeroDuration()),
      Rule(ScaleDirection::kDown, WorkloadMetric::kUtilization, Comparison::kLess, 0.3,
           absl::ZeroDuration()),
  };
  policy.scale_up_cooldown = absl::Seconds(60);
  policy.scale_down_cooldown = absl::Seconds(60);
  policy.stability_threshold = 10;
  auto scaler = Make(policy, 4, /*initial=*/2);
  Feed(*scaler, 3600, kZero, [](int t) { return (t / 30) % 2 == 0 ? 0.95 : 0.1; });

  const std::vector<ScalingEvent> scales = Scales(*scaler);
  ASSERT_FALSE(scales.empty());
  EXPECT_LE(scales.size(), 3600u / 60u + 1u);
  for (size_t i = 1; i < scales.size(); ++i) {
    EXPECT_GE(At(scales[i]) - At(scales[i - 1]), 60) << i;
  }
}

// Verifies that a load whose deciding metric swings between evaluation
// intervals (CV of the interval means above the stability threshold) is
// held, while a load with only per-sample jitter scales.
TEST_F(DynamicScalerTest, NoisyLoadAboveStabilityThresholdHolds) {
  ScalingPolicy policy;
  policy.rules = {Rule(ScaleDirection::kUp, WorkloadMetric::kQueueLengthPerDevice,
                       Comparison::kGreater, 8, absl::Seconds(30))};
  policy.stability_threshold = 0.1;
  auto noisy = Make(policy, 4, /*initial=*/1);
  // Every interval mean is above 8 (16 or 34), but they swing: CV ~0.36.
  Feed(
      *noisy, 600, [](int t) { return (t / 10) % 2 == 0 ? 10.0 : 40.0; }, kZero);
  EXPECT_THAT(noisy->ActiveDevices(), ElementsAre(0));
  EXPECT_TRUE(Scales(*noisy).empty());
  const ScalingStats stats = noisy->GetStats();
  EXPECT_GT(stats.held_unstable, 0);
  ASSERT_TRUE(stats.last_decision.has_value());
  EXPECT_EQ(stats.last_decision->action, ScalingAction::kHeldUnstable);
  EXPECT_GT(stats.last_decision->cv, 0.1);
  // A streak of identical holds is recorded once per window length (5 min),
  // though it is counted at every evaluation.
  int held_events = 0;
  for (const ScalingEvent& e : noisy->GetEvents()) {
    held_events += e.action == ScalingAction::kHeldUnstable ? 1 : 0;
  }
  EXPECT_EQ(held_events, 2);
  EXPECT_GT(stats.held_unstable, 50);

  auto steady = Make(policy, 4, /*initial=*/1);
  // Per-second jitter of +-14 around 16 averages out within an interval.
  Feed(
      *steady, 120, [](int t) { return t % 2 == 0 ? 2.0 : 30.0; }, kZero);
  EXPECT_GT(steady->ActiveDevices().size(), 1u);
}

TEST_F(DynamicScalerTest, DrainTellsListenersAndDeviceLeavesActiveSet) {
  ScalingPolicy policy;
  policy.rules = {Rule(ScaleDirection::kDown, WorkloadMetric::kUtilization, Comparison::kLess, 0.3,
                       absl::ZeroDuration())};
  policy.scale_down_cooldown = absl::ZeroDuration();
  policy.stability_threshold = 1;
  auto scaler = Make(policy, 4);
  std::vector<DeviceChange> heard;
  std::vector<std::vector<int>> active_seen;
  scaler->RegisterListener([&](const DeviceChange& change) {
    heard.push_back(change);
    active_seen.push_back(scaler->ActiveDevices());  // getters are allowed
  });

  clock_.Advance(absl::Seconds(1));
  for (int d = 0; d < 4; ++d) {
    ASSERT_TRUE(scaler->RecordDeviceSample({d, d == 1 ? 0.05 : 0.2, 0}).ok());
  }
  const ScalingEvent outcome = scaler->EvaluateOnce();

  EXPECT_EQ(outcome.action, ScalingAction::kDeactivateDevice);
  EXPECT_EQ(outcome.device, 1);  // the least busy one
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].device, 1);
  EXPECT_FALSE(heard[0].active);
  EXPECT_EQ(heard[0].cause, DeviceChangeCause::kScaleDown);
  EXPECT_THAT(heard[0].reason, HasSubstr("utilization < 0.3"));
  EXPECT_THAT(active_seen[0], ElementsAre(0, 2, 3));
  EXPECT_FALSE(scaler->IsActive(1));
  EXPECT_THAT(scaler->GetStats().active_devices, ElementsAre(0, 2, 3));
  EXPECT_THAT(scaler->GetStats().inactive_devices, ElementsAre(1));
  // The exported replica figure drops below 1: a quarter of this machine idles.
  EXPECT_DOUBLE_EQ(scaler->GetStats().replica_demand, 0.75);
}

TEST_F(DynamicScalerTest, ActiveSetStaysWithinMinAndMax) {
  ScalingPolicy policy;
  policy.rules = {
      Rule(ScaleDirection::kUp, WorkloadMetric::kUtilization, Comparison::kGreater, 0.85,
           absl::ZeroDuration()),
      Rule(ScaleDirection::kDown, WorkloadMetric::kUtilization, Comparison::kLess, 0.3,
           absl::ZeroDuration()),
  };
  policy.scale_up_cooldown = absl::ZeroDuration();
  policy.scale_down_cooldown = absl::ZeroDuration();
  policy.stability_threshold = 10;
  policy.min_active_devices = 2;
  policy.max_active_devices = 3;
  policy.max_replicas = 1;
  auto scaler = Make(policy, 4);
  EXPECT_EQ(scaler->ActiveDevices().size(), 3u);  // initial "all" clamped

  Feed(*scaler, 200, kZero, [](int) { return 0.99; });
  EXPECT_EQ(scaler->ActiveDevices().size(), 3u);
  EXPECT_GT(scaler->GetStats().held_at_bound, 0);

  Feed(*scaler, 200, kZero, [](int) { return 0.01; });
  EXPECT_EQ(scaler->ActiveDevices().size(), 2u);

  // Lowering the bound applies at once and tells listeners.
  std::vector<DeviceChange> heard;
  scaler->RegisterListener([&](const DeviceChange& change) { heard.push_back(change); });
  policy.min_active_devices = 1;
  policy.max_active_devices = 1;
  ASSERT_TRUE(scaler->SetPolicy(policy).ok());
  EXPECT_EQ(scaler->ActiveDevices().size(), 1u);
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].cause, DeviceChangeCause::kPolicy);
}

TEST_F(DynamicScalerTest, DisabledKeepsAllHealthyDevicesActiveAndReports) {
  ScalingPolicy policy;
  policy.enabled = false;
  auto scaler = Make(policy, 4, /*initial=*/1);
  EXPECT_THAT(scaler->ActiveDevices(), ElementsAre(0, 1, 2, 3));

  Feed(*scaler, 600, kZero, [](int) { return 0.0; });
  EXPECT_THAT(scaler->ActiveDevices(), ElementsAre(0, 1, 2, 3));
  ScalingStats stats = scaler->GetStats();
  EXPECT_FALSE(stats.enabled);
  EXPECT_EQ(stats.evaluations, 60);
  EXPECT_GT(stats.window[static_cast<int>(WorkloadMetric::kQueueLength)].count, 0);
  EXPECT_EQ(stats.last_decision->reason, "dynamic scaling disabled");

  ASSERT_TRUE(scaler->MarkUnhealthy(2, "ECC error").ok());
  EXPECT_THAT(scaler->ActiveDevices(), ElementsAre(0, 1, 3));
  ASSERT_TRUE(scaler->MarkHealthy(2).ok());
  EXPECT_THAT(scaler->ActiveDevices(), ElementsAre(0, 1, 2, 3));

  // Enabling it lets the idle fleet shrink.
  policy.enabled = true;
  ASSERT_TRUE(scaler->SetPolicy(policy).ok());
  Feed(*scaler, 1200, kZero, [](int) { return 0.0; });
  EXPECT_THAT(scaler->ActiveDevices(), ElementsAre(0));
}

// Verifies that replicas are asked for only once every local device is
// active, and that scale-down lowers replicas before draining devices.
TEST_F(DynamicScalerTest, DesiredReplicasRiseOnlyWhenAllLocalDevicesActive) {
  ScalingPolicy policy;
  policy.rules = {
      Rule(ScaleDirection::kUp, WorkloadMetric::kUtilization, Comparison::kGreater, 0.85,
           absl::ZeroDuration()),
      Rule(ScaleDirection::kDown, WorkloadMetric::kUtilization, Comparison::kLess, 0.3,
           absl::ZeroDuration()),
  };
  policy.scale_up_cooldown = absl::ZeroDuration();
  policy.scale_down_cooldown = absl::ZeroDuration();
  policy.stability_threshold = 10;
  policy.max_replicas = 3;
  auto scaler = Make(policy, 2, /*initial=*/1);
  Feed(*scaler, 100, kZero, [](int) { return 0.99; });
  Feed(*scaler, 100, kZero, [](int) { return 0.01; });

  std::vector<ScalingAction> actions;
  for (const ScalingEvent& e : Scales(*scaler)) {
    actions.push_back(e.action);
    if (e.action == ScalingAction::kRaiseReplicas) {
      EXPECT_EQ(e.active_devices, 2);
    }
  }
  EXPECT_THAT(actions,
              ElementsAre(ScalingAction::kActivateDevice, ScalingAction::kRaiseReplicas,
                          ScalingAction::kRaiseReplicas, ScalingAction::kLowerReplicas,
                          ScalingAction::kLowerReplicas, ScalingAction::kDeactivateDevice));
  EXPECT_EQ(scaler->desired_replicas(), 1);
}

TEST_F(DynamicScalerTest, UnhealthyDeviceLeavesAndIsReplacedBelowMin) {
  ScalingPolicy policy;
  policy.min_active_devices = 2;
  auto scaler = Make(policy, 4, /*initial=*/2);
  std::vector<DeviceChange> heard;
  scaler->RegisterListener([&](const DeviceChange& change) { heard.push_back(change); });

  ASSERT_TRUE(scaler->MarkUnhealthy(0, "Xid 79").ok());
  EXPECT_THAT(scaler->ActiveDevices(), ElementsAre(1, 2));
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[0].device, 0);
  EXPECT_FALSE(heard[0].active);
  EXPECT_EQ(heard[0].cause, DeviceChangeCause::kUnhealthy);
  EXPECT_EQ(heard[1].device, 2);
  EXPECT_TRUE(heard[1].active);

  const ScalingStats stats = scaler->GetStats();
  EXPECT_THAT(stats.unhealthy_devices, ElementsAre(0));
  EXPECT_EQ(stats.device_faults, 1);
  const std::vector<ScalingEvent> events = scaler->GetEvents();
  ASSERT_GE(events.size(), 1u);
  EXPECT_EQ(events[0].action, ScalingAction::kDeviceUnhealthy);
  EXPECT_THAT(events[0].reason, HasSubstr("Xid 79"));

  EXPECT_TRUE(scaler->MarkUnhealthy(0, "again").ok());  // idempotent
  EXPECT_EQ(scaler->GetStats().device_faults, 1);
  EXPECT_EQ(scaler->MarkUnhealthy(9, "x").code(), absl::StatusCode::kNotFound);
}

TEST_F(DynamicScalerTest, SetPolicyRejectsInvalidPolicyNamingTheField) {
  auto scaler = Make(ScalingPolicy(), 2);
  ScalingPolicy bad;
  bad.rules[1].threshold = -1;
  const absl::Status status = scaler->SetPolicy(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("rules[1].threshold"));
  EXPECT_EQ(scaler->GetPolicy(), ScalingPolicy());
}

TEST_F(DynamicScalerTest, EventHistoryIsBounded) {
  auto scaler = Make(ScalingPolicy(), 2, 0, /*history=*/8);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(scaler->MarkUnhealthy(1, "flaky").ok());
    ASSERT_TRUE(scaler->MarkHealthy(1).ok());
  }
  const std::vector<ScalingEvent> events = scaler->GetEvents();
  ASSERT_EQ(events.size(), 8u);
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence, events[i - 1].sequence + 1);
  }
  EXPECT_EQ(events.back().sequence, 40u);
  const std::vector<ScalingEvent> last3 = scaler->GetEvents(3);
  ASSERT_EQ(last3.size(), 3u);
  EXPECT_EQ(last3.back().sequence, 40u);
}

TEST_F(DynamicScalerTest, RejectsBadSamplesNamingTheField) {
  auto scaler = Make(ScalingPolicy(), 2);
  absl::Status s = scaler->RecordSchedulerSample({-1, 0, 0});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "queue_length: -1 is negative");
  s = scaler->CollectWorkloadMetrics(1, std::nan(""), 0);
  EXPECT_EQ(s.message(), "processing_time: nan must be finite");
  s = scaler->RecordDeviceSample({0, 1.5, 0});
  EXPECT_EQ(s.message(), "utilization: 1.5 must be in [0, 1]");
  s = scaler->RecordDeviceSample({7, 0.5, 0});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(scaler->CollectWorkloadMetrics(3, 0.1, 10).ok());
  EXPECT_EQ(scaler->GetStats().client_samples, 1);
}

TEST_F(DynamicScalerTest, CreateRejectsBadOptions) {
  ScalerOptions options;
  EXPECT_EQ(DynamicScaler::Create(options, &clock_, registry_).status().message(),
            "devices: must list at least one device");
  options.devices = {0, 1, 1};
  EXPECT_EQ(DynamicScaler::Create(options, &clock_, registry_).status().message(),
            "devices[2]: 1 is listed twice");
  options.devices = {0, 1};
  options.initial_active_devices = 3;
  EXPECT_EQ(DynamicScaler::Create(options, &clock_, registry_).status().message(),
            "initial_active_devices: 3 must be in [0, 2]");
}

double Value(const prometheus::Registry& registry, const std::string& name,
             const std::string& direction = "") {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      bool match = direction.empty();
      for (const auto& label : metric.label) {
        if (label.name == "direction" && label.value == direction && !direction.empty()) {
          match = true;
        }
      }
      if (!match) continue;
      return family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                            : metric.gauge.value;
    }
  }
  return -1;
}

TEST_F(DynamicScalerTest, ExportsMetrics) {
  ScalingPolicy policy;
  policy.rules = {Rule(ScaleDirection::kUp, WorkloadMetric::kUtilization, Comparison::kGreater,
                       0.85, absl::ZeroDuration())};
  policy.scale_up_cooldown = absl::ZeroDuration();
  policy.stability_threshold = 10;
  policy.max_replicas = 2;
  auto scaler = Make(policy, 2, /*initial=*/1);
  Feed(
      *scaler, 30, [](int) { return 6.0; }, [](int) { return 0.9; });

  EXPECT_EQ(Value(registry_, "inferd_scaler_active_devices"), 2);
  EXPECT_EQ(Value(registry_, "inferd_scaler_desired_replicas"), 2);
  EXPECT_EQ(Value(registry_, "inferd_scaler_healthy_devices"), 2);
  EXPECT_DOUBLE_EQ(Value(registry_, "inferd_scaler_queue_length"), 6);
  EXPECT_DOUBLE_EQ(Value(registry_, "inferd_scaler_utilization_ratio"), 0.9);
  EXPECT_DOUBLE_EQ(Value(registry_, "inferd_scaler_throughput_tasks_per_second"), 20);
  EXPECT_DOUBLE_EQ(Value(registry_, "inferd_scaler_processing_time_seconds"), 0.05);
  EXPECT_EQ(Value(registry_, "inferd_scaler_evaluations_total"), 3);
  EXPECT_EQ(Value(registry_, "inferd_scaler_decisions_total", "up"), 1);
  EXPECT_EQ(Value(registry_, "inferd_scaler_decisions_total", "down"), 0);
}

// Verifies that Stop() wakes the background thread at once (it waits on a
// condition, not a sleep), even with a long evaluation interval.
TEST_F(DynamicScalerTest, BackgroundThreadStartsAndStops) {
  ScalingPolicy policy;
  policy.evaluation_interval = absl::Hours(1);
  policy.window_length = absl::Hours(2);
  auto scaler = Make(policy, 2);
  scaler->Start();
  scaler->Start();  // idempotent
  ASSERT_TRUE(scaler->SetPolicy(policy).ok());
  scaler->Stop();
  scaler->Stop();
  scaler->Start();
}  // the destructor stops it again

}  // namespace
}  // namespace inferd
