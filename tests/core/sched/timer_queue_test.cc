#include "core/sched/timer_queue.h"

#include <vector>

#include "gtest/gtest.h"

namespace inferd {
namespace {

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1);

TEST(TimerQueueTest, RunsDueTimersInTimeOrderAndSkipsCancelled) {
  TimerQueue timers;
  std::vector<int> ran;
  timers.Schedule(kT0 + absl::Seconds(3), [&] { ran.push_back(3); });
  timers.Schedule(kT0 + absl::Seconds(1), [&] { ran.push_back(1); });
  const uint64_t two = timers.Schedule(kT0 + absl::Seconds(2), [&] { ran.push_back(2); });
  EXPECT_EQ(timers.NextDue(), kT0 + absl::Seconds(1));
  EXPECT_TRUE(timers.Cancel(two));
  EXPECT_FALSE(timers.Cancel(two));
  EXPECT_EQ(timers.RunDue(kT0 + absl::Milliseconds(2500)), 1);
  EXPECT_EQ(ran, (std::vector<int>{1}));
  EXPECT_EQ(timers.RunDue(kT0 + absl::Seconds(3)), 1);
  EXPECT_EQ(ran, (std::vector<int>{1, 3}));
  EXPECT_EQ(timers.size(), 0u);
}

TEST(TimerQueueTest, CallbacksMayScheduleMoreTimers) {
  TimerQueue timers;
  int count = 0;
  timers.Schedule(kT0, [&] {
    ++count;
    timers.Schedule(kT0, [&] { ++count; });
  });
  EXPECT_EQ(timers.RunDue(kT0), 2);
  EXPECT_EQ(count, 2);
}

}  // namespace
}  // namespace inferd
