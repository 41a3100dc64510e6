#include "core/sched/placement.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kGiB = 1ull << 30;

DeviceLoad Dev(int index, int queued, int running, uint64_t free_bytes = 8 * kGiB,
               double util = 0.0) {
  DeviceLoad d;
  d.index = index;
  d.queued = queued;
  d.running = running;
  d.max_running = 4;
  d.total_memory_bytes = 16 * kGiB;
  d.free_memory_bytes = free_bytes;
  d.utilization = util;
  return d;
}

int Place(PlacementStrategy s, const std::vector<DeviceLoad>& devices, PlacementRequest r = {}) {
  absl::StatusOr<int> pos = PlaceTask(s, devices, r);
  EXPECT_TRUE(pos.ok()) << pos.status();
  return pos.ok() ? devices[*pos].index : -1;
}

TEST(PlacementTest, ParsesEveryStrategyName) {
  for (auto s : {PlacementStrategy::kRoundRobin, PlacementStrategy::kLeastLoaded,
                 PlacementStrategy::kMemoryAware, PlacementStrategy::kBalanced}) {
    EXPECT_EQ(*ParsePlacementStrategy(PlacementStrategyName(s)), s);
  }
  absl::StatusOr<PlacementStrategy> bad = ParsePlacementStrategy("fastest");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("scheduling_strategy"));
}

TEST(PlacementTest, RoundRobinRotatesAndSkipsIneligible) {
  std::vector<DeviceLoad> d = {Dev(0, 9, 4), Dev(1, 0, 0), Dev(2, 0, 0)};
  d[1].eligible = false;
  std::vector<int> picked;
  for (uint64_t r = 0; r < 4; ++r) {
    PlacementRequest req;
    req.rotation = r;
    picked.push_back(Place(PlacementStrategy::kRoundRobin, d, req));
  }
  EXPECT_EQ(picked, (std::vector<int>{0, 2, 2, 0}));
}

TEST(PlacementTest, LeastLoadedCountsQueuedPlusRunning) {
  std::vector<DeviceLoad> d = {Dev(0, 0, 4), Dev(1, 3, 0), Dev(2, 1, 2)};
  EXPECT_EQ(Place(PlacementStrategy::kLeastLoaded, d), 1);
  d[1].queued = 5;
  EXPECT_EQ(Place(PlacementStrategy::kLeastLoaded, d), 2);
}

// Verifies priority-aware load: only queued work of the same or a more
// urgent priority counts, so urgent tasks spread by urgent backlog.
TEST(PlacementTest, LoadCountsOnlyWorkQueuedAhead) {
  std::vector<DeviceLoad> d = {Dev(0, 50, 1), Dev(1, 3, 1)};
  d[0].queued_ahead = 0;  // 50 queued, none as urgent as the new task
  d[1].queued_ahead = 3;
  EXPECT_EQ(Place(PlacementStrategy::kLeastLoaded, d), 0);
  EXPECT_EQ(Place(PlacementStrategy::kBalanced, d), 0);
  d[0].queued_ahead = -1;  // unknown: all queued work counts
  EXPECT_EQ(Place(PlacementStrategy::kLeastLoaded, d), 1);
}

TEST(PlacementTest, MemoryAwarePrefersDevicesWhereTheRequirementFits) {
  std::vector<DeviceLoad> d = {Dev(0, 0, 0, 1 * kGiB), Dev(1, 5, 3, 6 * kGiB),
                               Dev(2, 0, 0, 4 * kGiB)};
  PlacementRequest req;
  req.memory_requirement_bytes = 3 * kGiB;
  EXPECT_EQ(Place(PlacementStrategy::kMemoryAware, d, req), 1);  // most available
  d[1].reserved_bytes = 4 * kGiB;  // tasks already placed there take 4 of its 6
  EXPECT_EQ(Place(PlacementStrategy::kMemoryAware, d, req), 2);
  req.memory_requirement_bytes = 10 * kGiB;  // fits nowhere now: most available
  EXPECT_EQ(Place(PlacementStrategy::kMemoryAware, d, req), 2);
}

TEST(PlacementTest, BalancedWeighsLoadMemoryAndUtilization) {
  // Scores: 0.5*load/4 + 0.3*(1-avail/16G) + 0.2*util.
  std::vector<DeviceLoad> d = {Dev(0, 0, 2, 15 * kGiB, 0.9),   // .25+.019+.18 = .449
                               Dev(1, 0, 1, 2 * kGiB, 0.1),    // .125+.2625+.02 = .4075
                               Dev(2, 0, 3, 16 * kGiB, 0.0)};  // .375+0+0 = .375
  EXPECT_NEAR(BalancedScore(d[0], 0, {}), 0.25 + 0.3 / 16 + 0.18, 1e-9);
  EXPECT_EQ(Place(PlacementStrategy::kBalanced, d), 2);
  BalancedWeights memory_heavy{0.1, 0.8, 0.1};
  absl::StatusOr<int> pos = PlaceTask(PlacementStrategy::kBalanced, d, {}, memory_heavy);
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ(d[*pos].index, 2);
  d[2].utilization = 1.0;
  d[2].running = 4;  // .5 + 0 + .2 = .7
  EXPECT_EQ(Place(PlacementStrategy::kBalanced, d), 1);
}

TEST(PlacementTest, BalancedPenalizesDevicesWhereTheRequirementDoesNotFit) {
  std::vector<DeviceLoad> d = {Dev(0, 0, 0, 1 * kGiB), Dev(1, 0, 4, 12 * kGiB, 1.0)};
  PlacementRequest req;
  req.memory_requirement_bytes = 2 * kGiB;
  EXPECT_EQ(Place(PlacementStrategy::kBalanced, d, req), 1);
}

TEST(PlacementTest, ConstraintPicksThatDeviceOrFails) {
  std::vector<DeviceLoad> d = {Dev(0, 0, 0), Dev(3, 50, 4)};
  PlacementRequest req;
  req.device = 3;
  EXPECT_EQ(Place(PlacementStrategy::kLeastLoaded, d, req), 3);
  req.device = 7;
  absl::StatusOr<int> unknown = PlaceTask(PlacementStrategy::kLeastLoaded, d, req);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("device: 7"));
  req.device = 3;
  d[1].eligible = false;
  EXPECT_EQ(PlaceTask(PlacementStrategy::kLeastLoaded, d, req).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(PlacementTest, ExcludedDevicesAreAvoidedWhileAnotherExists) {
  std::vector<DeviceLoad> d = {Dev(0, 0, 0), Dev(1, 9, 4)};
  PlacementRequest req;
  req.excluded_mask = 1;  // failed on position 0
  EXPECT_EQ(Place(PlacementStrategy::kLeastLoaded, d, req), 1);
  d[1].eligible = false;
  EXPECT_EQ(Place(PlacementStrategy::kLeastLoaded, d, req), 0);
}

TEST(PlacementTest, PreferredDeviceWinsWhenItHasAFreeSlot) {
  std::vector<DeviceLoad> d = {Dev(0, 0, 0), Dev(1, 1, 2)};
  PlacementRequest req;
  req.preferred = 1;
  EXPECT_EQ(Place(PlacementStrategy::kLeastLoaded, d, req), 1);
  d[1].running = 4;
  EXPECT_EQ(Place(PlacementStrategy::kLeastLoaded, d, req), 0);
}

TEST(PlacementTest, NoEligibleDeviceIsUnavailableAndTooLargeIsExhausted) {
  std::vector<DeviceLoad> d = {Dev(0, 0, 0), Dev(1, 0, 0)};
  PlacementRequest req;
  req.memory_requirement_bytes = 17 * kGiB;
  absl::StatusOr<int> big = PlaceTask(PlacementStrategy::kMemoryAware, d, req);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(big.status().message(), HasSubstr("memory_requirement_bytes"));
  d[0].eligible = d[1].eligible = false;
  EXPECT_EQ(PlaceTask(PlacementStrategy::kRoundRobin, d, {}).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace inferd
