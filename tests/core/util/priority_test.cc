#include "core/util/priority.h"

#include <string>

#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(PriorityTest, NamesAndLabelsFollowTheLevels) {
  EXPECT_EQ(PriorityName(Priority::kCritical), "CRITICAL");
  EXPECT_EQ(PriorityName(Priority::kBackground), "BACKGROUND");
  EXPECT_EQ(PriorityLabel(Priority::kNormal), "normal");
  EXPECT_EQ(PriorityLabel(Priority::kLow), "low");
}

TEST(PriorityTest, ParsesEveryNameInAnyCase) {
  for (int p = 0; p < kNumPriorities; ++p) {
    const Priority priority = static_cast<Priority>(p);
    EXPECT_EQ(ParsePriorityName(PriorityName(priority)), priority);
    EXPECT_EQ(ParsePriorityName(PriorityLabel(priority)), priority);
  }
  EXPECT_EQ(ParsePriorityName("High"), Priority::kHigh);
  EXPECT_EQ(ParsePriorityName("urgent"), std::nullopt);
  EXPECT_EQ(ParsePriorityName(""), std::nullopt);
}

TEST(PriorityTest, OutOfRangeValuesReadAsNormal) {
  EXPECT_EQ(PriorityName(static_cast<Priority>(9)), "NORMAL");
}

}  // namespace
}  // namespace inferd
