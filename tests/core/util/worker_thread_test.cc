#include "core/util/worker_thread.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(WorkerThreadTest, EveryCallRunsOnTheSameThreadAndReturnsItsResult) {
  WorkerThread worker("test-worker");
  std::thread::id first;
  ASSERT_TRUE(worker.Call([&] {
                      first = std::this_thread::get_id();
                      return absl::OkStatus();
                    })
                  .ok());
  EXPECT_NE(first, std::this_thread::get_id());
  EXPECT_EQ(first, worker.id());
  for (int i = 0; i < 50; ++i) {
    absl::Status st = worker.Call([&] {
      return std::this_thread::get_id() == first ? absl::InvalidArgumentError("same")
                                                 : absl::InternalError("other thread");
    });
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  }
}

TEST(WorkerThreadTest, ConcurrentCallersTakeTurnsAndEachGetsItsOwnResult) {
  WorkerThread worker("test-worker");
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  std::vector<std::thread> callers;
  std::vector<int> wrong(8, 0);
  for (int c = 0; c < 8; ++c) {
    callers.emplace_back([&, c] {
      for (int i = 0; i < 100; ++i) {
        absl::Status st = worker.Call([&] {
          if (inside.fetch_add(1) != 0) overlapped = true;
          inside.fetch_sub(1);
          return absl::Status(absl::StatusCode::kUnknown, std::to_string(c * 1000 + i));
        });
        if (st.message() != std::to_string(c * 1000 + i)) ++wrong[static_cast<size_t>(c)];
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_FALSE(overlapped.load());
  EXPECT_EQ(wrong, std::vector<int>(8, 0));
}

}  // namespace
}  // namespace inferd
