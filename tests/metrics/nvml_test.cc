// Nvml against a fake libnvidia-ml: utilization, power and energy from the
// library; a library without the power and energy entry points answers
// UNAVAILABLE for those alone; a missing library or GPU names what is missing.
#include "core/device/cuda/nvml.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;

constexpr char kBusId[] = "00000000:01:00.0";

TEST(NvmlTest, ReadsUtilizationPowerAndEnergy) {
  Nvml nvml(FAKE_NVML);
  absl::StatusOr<double> busy = nvml.GetUtilization(kBusId);
  ASSERT_TRUE(busy.ok()) << busy.status();
  EXPECT_DOUBLE_EQ(*busy, 0.42);
  absl::StatusOr<double> watts = nvml.GetPowerWatts(kBusId);
  ASSERT_TRUE(watts.ok()) << watts.status();
  EXPECT_DOUBLE_EQ(*watts, 123.456);
  absl::StatusOr<double> joules = nvml.GetEnergyJoules(kBusId);
  ASSERT_TRUE(joules.ok()) << joules.status();
  EXPECT_DOUBLE_EQ(*joules, 7000000.5);
}

TEST(NvmlTest, ALibraryWithoutPowerAndEnergyStillGivesUtilization) {
  Nvml nvml(FAKE_NVML_OLD);
  EXPECT_TRUE(nvml.GetUtilization(kBusId).ok());
  absl::StatusOr<double> watts = nvml.GetPowerWatts(kBusId);
  EXPECT_EQ(watts.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(watts.status().message(), HasSubstr("lacks nvmlDeviceGetPowerUsage"));
  absl::StatusOr<double> joules = nvml.GetEnergyJoules(kBusId);
  EXPECT_EQ(joules.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(joules.status().message(), HasSubstr("lacks nvmlDeviceGetTotalEnergyConsumption"));
}

TEST(NvmlTest, AnUnknownGpuOrAMissingLibraryIsUnavailable) {
  Nvml nvml(FAKE_NVML);
  absl::StatusOr<double> watts = nvml.GetPowerWatts("00000000:99:00.0");
  EXPECT_EQ(watts.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(watts.status().message(), HasSubstr("00000000:99:00.0"));
  Nvml missing("libinferd-no-such-nvml.so.1");
  absl::StatusOr<double> joules = missing.GetEnergyJoules(kBusId);
  EXPECT_EQ(joules.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(joules.status().message(), HasSubstr("libinferd-no-such-nvml.so.1"));
}

}  // namespace
}  // namespace inferd
