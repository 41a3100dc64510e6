// The task graph's bookkeeping on its own: ordering within a call, cycle
// detection, and releasing long chains of records.
#include "core/sched/task_table.h"

#include <pthread.h>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

using ::testing::ElementsAre;
using Within = std::vector<std::vector<std::pair<int, int>>>;

// Runs `fn` on a thread with a 256 KiB stack, so that recursion per link of
// a chain overflows it at once.
void RunOnSmallStack(std::function<void()> fn) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 256 << 10), 0);
  pthread_t thread;
  auto trampoline = [](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, trampoline, &fn), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

TEST(OrderWithinCallTest, PutsDependenciesFirst) {
  // 0 depends on 2, 2 on 1.
  Within within = {{{0, 2}}, {}, {{0, 1}}};
  std::vector<int> cycle;
  EXPECT_THAT(OrderWithinCall(within, &cycle), ElementsAre(1, 2, 0));
  EXPECT_TRUE(cycle.empty());
}

TEST(OrderWithinCallTest, ReportsOneCycle) {
  // 0 -> 1 -> 2 -> 1, and 3 alone.
  Within within = {{{0, 1}}, {{0, 2}}, {{0, 1}}, {}};
  std::vector<int> cycle;
  EXPECT_TRUE(OrderWithinCall(within, &cycle).empty());
  EXPECT_THAT(cycle, ElementsAre(1, 2, 1));
}

// Verifies that a chain of 100,000 records, each holding the one before
// (and each earlier one holding the next as a dependent), is released
// without one nested destructor per link (that overflowed the stack).
TEST(TaskRecordTest, LongChainIsReleasedIteratively) {
  TaskTable table(16);
  constexpr int kLinks = 100'000;
  std::shared_ptr<TaskRecord> head = std::make_shared<TaskRecord>();
  table.Track(*head);
  for (int i = 1; i < kLinks; ++i) {
    auto next = std::make_shared<TaskRecord>();
    table.Track(*next);
    absl::MutexLock lock(&next->mu);
    next->deps.push_back(std::move(head));
    head = std::move(next);
  }
  EXPECT_EQ(table.live_records(), kLinks);
  RunOnSmallStack([&] { head.reset(); });
  EXPECT_EQ(table.live_records(), 0);
}

TEST(TaskRecordTest, ChainOfDependentsIsReleasedIteratively) {
  TaskTable table(16);
  constexpr int kLinks = 100'000;
  std::shared_ptr<TaskRecord> first = std::make_shared<TaskRecord>();
  table.Track(*first);
  TaskRecord* last = first.get();
  for (int i = 1; i < kLinks; ++i) {
    auto next = std::make_shared<TaskRecord>();
    table.Track(*next);
    TaskRecord* raw = next.get();
    absl::MutexLock lock(&last->mu);
    last->dependents.push_back(std::move(next));
    last = raw;
  }
  RunOnSmallStack([&] { first.reset(); });
  EXPECT_EQ(table.live_records(), 0);
}

}  // namespace
}  // namespace inferd
