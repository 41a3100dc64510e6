// Unit tests of the device-time estimate rule 5d of the batching stage
// predicts a running batch's end from.
#include "core/sched/execution_estimate.h"

#include "gtest/gtest.h"

namespace inferd {
namespace {

using absl::Microseconds;

TEST(ExecutionEstimateTest, KnowsNothingBeforeAnExecutionOfAPreferredSize) {
  ExecutionEstimate e({64, 128});
  EXPECT_FALSE(e.For(64).has_value());
  e.Learn(63, Microseconds(900));  // not a preferred size: teaches nothing
  e.Learn(100, Microseconds(2000));
  EXPECT_FALSE(e.For(63).has_value());
  EXPECT_FALSE(e.For(100).has_value());
  EXPECT_FALSE(ExecutionEstimate().For(1).has_value());
}

// A batch between two preferred sizes takes at most what the larger one
// takes (the staircase's step ends there); above the largest, unknown.
TEST(ExecutionEstimateTest, RowsTakeTheTimeOfTheSmallestPreferredSizeAtOrAboveThem) {
  ExecutionEstimate e({64, 128});
  e.Learn(64, Microseconds(1150));
  e.Learn(128, Microseconds(2100));
  EXPECT_EQ(e.For(1), Microseconds(1150));
  EXPECT_EQ(e.For(64), Microseconds(1150));
  EXPECT_EQ(e.For(65), Microseconds(2100));
  EXPECT_EQ(e.For(128), Microseconds(2100));
  EXPECT_FALSE(e.For(129).has_value());
  EXPECT_FALSE(e.For(0).has_value());
}

// A running average: one slow execution moves it by an eighth of the
// difference, and a lasting change is followed within a few dozen.
TEST(ExecutionEstimateTest, FollowsAChangeOfTimeGradually) {
  ExecutionEstimate e({64});
  e.Learn(64, Microseconds(1000));
  e.Learn(64, Microseconds(1800));
  EXPECT_EQ(e.For(64), Microseconds(1100));
  for (int i = 0; i < 60; ++i) e.Learn(64, Microseconds(500));
  EXPECT_NEAR(absl::ToDoubleMicroseconds(*e.For(64)), 500, 5);
  e.Learn(64, absl::ZeroDuration());  // no time measured: ignored
  EXPECT_NEAR(absl::ToDoubleMicroseconds(*e.For(64)), 500, 5);
}

}  // namespace
}  // namespace inferd
