#include "core/memory/staging_pool.h"

#include <cstring>
#include <thread>
#include <vector>

#include "core/device/host_device.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

class StagingPoolTest : public ::testing::Test {
 protected:
  StagingPoolTest() : device_(HostDeviceOptions{}) {}
  HostDevice device_;
};

TEST_F(StagingPoolTest, ReusesAFreedBlockOfTheSameClass) {
  StagingPool pool(device_, {});
  void* a = pool.Allocate(5000);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(pool.held_bytes(), 8192u);  // rounded up to the class
  std::memset(a, 1, 5000);
  pool.Free(a, 5000);
  EXPECT_EQ(pool.Allocate(8000), a);
  EXPECT_EQ(pool.held_bytes(), 8192u);
  pool.Free(a, 8000);
}

TEST_F(StagingPoolTest, SmallRequestsShareTheSmallestClass) {
  StagingPool pool(device_, {});
  void* a = pool.Allocate(1);
  ASSERT_NE(a, nullptr);
  pool.Free(a, 1);
  EXPECT_EQ(pool.Allocate(4096), a);
  EXPECT_EQ(pool.held_bytes(), 4096u);
  pool.Free(a, 4096);
}

TEST_F(StagingPoolTest, AnswersNullAboveTheBlockLimit) {
  StagingPoolOptions o;
  o.max_block_bytes = 64 << 10;
  StagingPool pool(device_, o);
  EXPECT_EQ(pool.Allocate((64 << 10) + 1), nullptr);
  EXPECT_EQ(pool.Allocate(0), nullptr);
  EXPECT_EQ(pool.held_bytes(), 0u);
}

TEST_F(StagingPoolTest, NeverHoldsMoreThanItsBound) {
  StagingPoolOptions o;
  o.max_total_bytes = 3 * 4096;
  StagingPool pool(device_, o);
  void* a = pool.Allocate(4096);
  void* b = pool.Allocate(8192);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(pool.Allocate(4096), nullptr);  // 16 KiB would pass the bound
  pool.Free(a, 4096);
  EXPECT_EQ(pool.Allocate(100), a);  // a cached block still serves
  pool.Free(a, 100);
  pool.Free(b, 8192);
  EXPECT_EQ(pool.held_bytes(), 3u * 4096);
}

TEST_F(StagingPoolTest, ConcurrentUsersNeverShareABlock) {
  StagingPool pool(device_, {});
  std::vector<std::thread> threads;
  std::atomic<int> clashes{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        auto* p = static_cast<unsigned char*>(pool.Allocate(4096 << (i % 3)));
        ASSERT_NE(p, nullptr);
        std::memset(p, t + 1, 64);
        for (int k = 0; k < 64; ++k) clashes += p[k] != t + 1;
        pool.Free(p, 4096 << (i % 3));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(clashes.load(), 0);
  EXPECT_LE(pool.held_bytes(), 4u * (4096 + 8192 + 16384));
}

}  // namespace
}  // namespace inferd
