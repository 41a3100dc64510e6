// The scaler's device sampling hook, the device sampler over the Device
// interface, and what the Scaling service reads off events and stats.
#include <atomic>
#include <memory>
#include <vector>

#include "core/device/host_device.h"
#include "core/scaling/device_sampler.h"
#include "core/scaling/dynamic_scaler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace inferd {
namespace {

using ::testing::ElementsAre;

class DeviceSamplingTest : public ::testing::Test {
 protected:
  std::unique_ptr<DynamicScaler> Make(ScalingPolicy policy, DeviceSampler sampler,
                                      int devices = 2) {
    ScalerOptions options;
    for (int i = 0; i < devices; ++i) options.devices.push_back(i);
    options.policy = std::move(policy);
    options.device_sampler = std::move(sampler);
    auto scaler = DynamicScaler::Create(std::move(options), &clock_, registry_);
    EXPECT_TRUE(scaler.ok()) << scaler.status();
    return std::move(scaler).value();
  }

  static ScalingPolicy UtilizationDownPolicy() {
    ScalingPolicy policy;
    policy.evaluation_interval = absl::Seconds(1);
    policy.scale_down_cooldown = absl::ZeroDuration();
    policy.rules = {{ScaleDirection::kDown, WorkloadMetric::kUtilization, Comparison::kLess, 0.3,
                     absl::ZeroDuration()}};
    return policy;
  }

  FakeClock clock_;
  prometheus::Registry registry_;
};

// Verifies that the hook runs before every evaluation and that the rules see
// what it returned, with no samples recorded by anyone else.
TEST_F(DeviceSamplingTest, HookFeedsEveryEvaluation) {
  std::atomic<int> calls{0};
  auto scaler = Make(UtilizationDownPolicy(), [&] {
    ++calls;
    return std::vector<DeviceSample>{{0, 0.1, 0.5}, {1, 0.05, 0.5}};
  });
  clock_.Advance(absl::Seconds(1));
  const ScalingEvent outcome = scaler->EvaluateOnce();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(outcome.action, ScalingAction::kDeactivateDevice);
  EXPECT_EQ(outcome.direction, ScaleDirection::kDown);
  const ScalingStats stats = scaler->GetStats();
  EXPECT_EQ(stats.device_samples, 2);
  EXPECT_DOUBLE_EQ(stats.window[static_cast<int>(WorkloadMetric::kMemoryUsed)].mean, 0.5);

  clock_.Advance(absl::Milliseconds(500));
  EXPECT_FALSE(scaler->EvaluateIfDue());
  EXPECT_EQ(calls.load(), 1) << "not due: no sampling";
  clock_.Advance(absl::Milliseconds(500));
  EXPECT_TRUE(scaler->EvaluateIfDue());
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(DeviceSamplingTest, BadSamplesFromTheHookAreDroppedAndTheRestKept) {
  auto scaler = Make(UtilizationDownPolicy(), [] {
    return std::vector<DeviceSample>{{0, 1.5, 0.5}, {7, 0.1, 0.1}, {1, 0.9, 0.2}};
  });
  clock_.Advance(absl::Seconds(1));
  const ScalingEvent outcome = scaler->EvaluateOnce();
  EXPECT_EQ(scaler->GetStats().device_samples, 1);
  EXPECT_EQ(outcome.action, ScalingAction::kNone) << "only device 1 (0.9) was recorded";
}

TEST_F(DeviceSamplingTest, HeldEventsCarryTheRuleDirection) {
  ScalingPolicy policy = UtilizationDownPolicy();
  policy.min_active_devices = 2;
  auto scaler = Make(policy, [] {
    return std::vector<DeviceSample>{{0, 0.1, 0.5}, {1, 0.1, 0.5}};
  });
  clock_.Advance(absl::Seconds(1));
  const ScalingEvent outcome = scaler->EvaluateOnce();
  EXPECT_EQ(outcome.action, ScalingAction::kHeldAtBound);
  EXPECT_EQ(outcome.direction, ScaleDirection::kDown);
  // Health events have no direction.
  ASSERT_TRUE(scaler->MarkUnhealthy(1, "test").ok());
  const std::vector<ScalingEvent> events = scaler->GetEvents();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().action, ScalingAction::kDeviceUnhealthy);
  EXPECT_FALSE(events.back().direction.has_value());
}

TEST_F(DeviceSamplingTest, StatsCarryThePolicyInForce) {
  auto scaler = Make(UtilizationDownPolicy(), nullptr);
  EXPECT_EQ(scaler->GetStats().policy, UtilizationDownPolicy());
  ScalingPolicy changed = UtilizationDownPolicy();
  changed.max_replicas = 3;
  ASSERT_TRUE(scaler->SetPolicy(changed).ok());
  EXPECT_EQ(scaler->GetStats().policy, changed);
}

TEST(SampleDeviceLoadTest, ReportsUsedMemoryFractionOfEachDevice) {
  HostDeviceOptions a;
  a.index = 0;
  a.capacity_bytes = 4 << 20;
  HostDeviceOptions b;
  b.index = 3;
  b.ordinal = 1;
  b.capacity_bytes = 8 << 20;
  HostDevice d0(a);
  HostDevice d3(b);
  absl::StatusOr<void*> block = d0.AllocateRaw(1 << 20);
  ASSERT_TRUE(block.ok()) << block.status();

  const std::vector<DeviceSample> samples = SampleDeviceLoad({&d0, &d3});
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].device, 0);
  EXPECT_DOUBLE_EQ(samples[0].memory_used, 0.25);
  EXPECT_EQ(samples[1].device, 3);
  EXPECT_DOUBLE_EQ(samples[1].memory_used, 0.0);
  for (const DeviceSample& s : samples) {
    EXPECT_GE(s.utilization, 0.0);
    EXPECT_LE(s.utilization, 1.0);
  }
  EXPECT_THAT(DeviceLoadSampler({&d3})().size(), 1u);
  d0.FreeRaw(*block);
}

}  // namespace
}  // namespace inferd
