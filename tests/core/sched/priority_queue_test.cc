#include "core/sched/priority_queue.h"

#include <vector>

#include "gtest/gtest.h"

namespace inferd {
namespace {

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1);

struct Entry : QueueNode {
  int tag = 0;
};

Entry Make(Priority p, absl::Duration at, int tag) {
  Entry e;
  e.priority = p;
  e.enqueue_time = kT0 + at;
  e.tag = tag;
  return e;
}

std::vector<int> Drain(AgingPriorityQueue& q, absl::Time now) {
  std::vector<int> out;
  while (QueueNode* n = q.Pop(now)) out.push_back(static_cast<Entry*>(n)->tag);
  return out;
}

TEST(EffectiveLevelTest, ImprovesOneLevelPerIntervalDownToCritical) {
  const absl::Duration i = absl::Seconds(2);
  EXPECT_EQ(EffectiveLevel(Priority::kBackground, absl::ZeroDuration(), i), 4);
  EXPECT_EQ(EffectiveLevel(Priority::kBackground, absl::Milliseconds(1999), i), 4);
  EXPECT_EQ(EffectiveLevel(Priority::kBackground, absl::Seconds(2), i), 3);
  EXPECT_EQ(EffectiveLevel(Priority::kBackground, absl::Seconds(7), i), 1);
  EXPECT_EQ(EffectiveLevel(Priority::kBackground, absl::Seconds(8), i), 0);
  EXPECT_EQ(EffectiveLevel(Priority::kBackground, absl::Hours(8), i), 0);
  EXPECT_EQ(EffectiveLevel(Priority::kNormal, absl::Hours(1), absl::ZeroDuration()), 2);
}

TEST(AgingPriorityQueueTest, PopsByPriorityThenFifo) {
  AgingPriorityQueue q(AgingOptions{absl::ZeroDuration(), false});
  std::vector<Entry> e = {Make(Priority::kLow, absl::Seconds(0), 1),
                          Make(Priority::kCritical, absl::Seconds(1), 2),
                          Make(Priority::kNormal, absl::Seconds(2), 3),
                          Make(Priority::kCritical, absl::Seconds(3), 4),
                          Make(Priority::kBackground, absl::Seconds(4), 5),
                          Make(Priority::kHigh, absl::Seconds(5), 6),
                          Make(Priority::kNormal, absl::Seconds(6), 7)};
  for (auto& x : e) q.Push(&x);
  EXPECT_EQ(q.size(), 7u);
  EXPECT_EQ(q.size(Priority::kCritical), 2u);
  EXPECT_EQ(Drain(q, kT0 + absl::Hours(10)), (std::vector<int>{2, 4, 6, 3, 7, 1, 5}));
  EXPECT_TRUE(q.empty());
}

// Verifies the aging rule: a BACKGROUND entry that waited 4 intervals
// competes as CRITICAL and, having waited longer, runs before a fresh one.
TEST(AgingPriorityQueueTest, AgedBackgroundOvertakesFreshHigherPriorities) {
  AgingPriorityQueue q(AgingOptions{absl::Seconds(1), false});
  Entry old_bg = Make(Priority::kBackground, absl::Seconds(0), 1);
  Entry fresh_critical = Make(Priority::kCritical, absl::Seconds(10), 2);
  Entry fresh_normal = Make(Priority::kNormal, absl::Seconds(10), 3);
  q.Push(&fresh_normal);
  q.Push(&fresh_critical);
  q.Push(&old_bg);
  EXPECT_EQ(Drain(q, kT0 + absl::Seconds(10)), (std::vector<int>{1, 2, 3}));
}

TEST(AgingPriorityQueueTest, PartlyAgedEntryWaitsForBetterLevels) {
  AgingPriorityQueue q(AgingOptions{absl::Seconds(1), false});
  Entry bg = Make(Priority::kBackground, absl::Seconds(0), 1);  // level 4 - 2 = 2 at t=2
  Entry high = Make(Priority::kHigh, absl::Seconds(2), 2);      // level 1
  Entry normal = Make(Priority::kNormal, absl::Seconds(2), 3);  // level 2, younger
  q.Push(&bg);
  q.Push(&high);
  q.Push(&normal);
  EXPECT_EQ(Drain(q, kT0 + absl::Seconds(2)), (std::vector<int>{2, 1, 3}));
}

TEST(AgingPriorityQueueTest, CriticalFirstIgnoresAgingOfOthers) {
  AgingPriorityQueue q(AgingOptions{absl::Seconds(1), /*critical_first=*/true});
  Entry old_bg = Make(Priority::kBackground, absl::Seconds(0), 1);
  Entry fresh_critical = Make(Priority::kCritical, absl::Seconds(100), 2);
  q.Push(&old_bg);
  q.Push(&fresh_critical);
  EXPECT_EQ(Drain(q, kT0 + absl::Seconds(100)), (std::vector<int>{2, 1}));
}

TEST(AgingPriorityQueueTest, RemoveAndRemoveIfUnlink) {
  AgingPriorityQueue q;
  std::vector<Entry> e;
  for (int i = 0; i < 6; ++i) e.push_back(Make(static_cast<Priority>(i % 3), absl::Seconds(i), i));
  for (auto& x : e) q.Push(&x);
  q.Remove(&e[3]);
  EXPECT_FALSE(e[3].linked);
  std::vector<int> removed;
  q.RemoveIf([](const QueueNode* n) { return static_cast<const Entry*>(n)->tag % 2 == 0; },
             [&](QueueNode* n) { removed.push_back(static_cast<Entry*>(n)->tag); });
  EXPECT_EQ(removed, (std::vector<int>{0, 4, 2}));  // level by level
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(Drain(q, kT0), (std::vector<int>{1, 5}));
}

TEST(AgingPriorityQueueTest, PopIfSkipsIneligibleHeads) {
  AgingPriorityQueue q(AgingOptions{absl::ZeroDuration(), false});
  Entry a = Make(Priority::kCritical, absl::Seconds(0), 1);
  Entry b = Make(Priority::kCritical, absl::Seconds(1), 2);
  Entry c = Make(Priority::kLow, absl::Seconds(2), 3);
  q.Push(&a);
  q.Push(&b);
  q.Push(&c);
  QueueNode* n =
      q.PopIf(kT0, [](const QueueNode* x) { return static_cast<const Entry*>(x)->tag != 1; });
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(static_cast<Entry*>(n)->tag, 2);
  EXPECT_EQ(q.size(), 2u);
}

}  // namespace
}  // namespace inferd
