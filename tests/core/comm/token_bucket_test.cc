#include "core/comm/token_bucket.h"

#include <thread>

#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(TokenBucketTest, FullBucketGrantsBurstWithoutWaiting) {
  FakeClock clock;
  TokenBucket bucket(&clock, /*rate=*/1000, /*burst=*/500);
  EXPECT_EQ(bucket.Reserve(300), absl::ZeroDuration());
  EXPECT_EQ(bucket.Reserve(200), absl::ZeroDuration());
  // Empty now: 100 more bytes take 100 ms of refill.
  EXPECT_EQ(bucket.Reserve(100), absl::Milliseconds(100));
}

// Verifies that callers queue behind each other's debt: a second reserve
// right after an over-draft waits for both.
TEST(TokenBucketTest, DebtAccumulatesAcrossCallers) {
  FakeClock clock;
  TokenBucket bucket(&clock, 1000, 100);
  EXPECT_EQ(bucket.Reserve(100), absl::ZeroDuration());
  EXPECT_EQ(bucket.Reserve(500), absl::Milliseconds(500));
  EXPECT_EQ(bucket.Reserve(500), absl::Seconds(1));
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(bucket.Reserve(0), absl::ZeroDuration());
}

// Verifies that TryTake only takes tokens the bucket holds, never debt, so
// a caller that falls back to Reserve on failure is still paced.
TEST(TokenBucketTest, TryTakeTakesOnlyTokensTheBucketHolds) {
  FakeClock clock;
  TokenBucket bucket(&clock, 1000, 500);
  EXPECT_TRUE(bucket.TryTake(400));
  EXPECT_FALSE(bucket.TryTake(200));  // 100 left: takes nothing
  EXPECT_TRUE(bucket.TryTake(100));
  EXPECT_FALSE(bucket.TryTake(1));
  EXPECT_EQ(bucket.Reserve(100), absl::Milliseconds(100));
  clock.Advance(absl::Milliseconds(300));  // pays the debt, refills 200
  EXPECT_FALSE(bucket.TryTake(300));
  EXPECT_TRUE(bucket.TryTake(200));
  EXPECT_FALSE(bucket.TryTake(501));  // more than a burst never fits
}

TEST(TokenBucketTest, RefillNeverExceedsBurst) {
  FakeClock clock;
  TokenBucket bucket(&clock, 1000, 100);
  clock.Advance(absl::Hours(1));
  EXPECT_EQ(bucket.Reserve(100), absl::ZeroDuration());
  EXPECT_GT(bucket.Reserve(1), absl::ZeroDuration());
}

// Verifies the limiter's contract: a stream of chunks paced by Reserve's
// delays moves at the cap, within 10%, for several chunk/rate ratios.
TEST(TokenBucketTest, PacedStreamHoldsWithinTenPercentOfCap) {
  struct Case {
    double rate;
    uint64_t chunk;
    int chunks;
  };
  for (const Case& c : {Case{100e6, 4 << 20, 64}, Case{1e9, 1 << 20, 200}, Case{25e9, 64 << 20, 32},
                        Case{10e3, 1000, 50}}) {
    FakeClock clock;
    const absl::Time start = clock.Now();
    TokenBucket bucket(&clock, c.rate, static_cast<double>(c.chunk));
    uint64_t moved = 0;
    for (int i = 0; i < c.chunks; ++i) {
      clock.Advance(bucket.Reserve(c.chunk));
      // The copy itself takes time at 4x the cap.
      clock.Advance(absl::Seconds(static_cast<double>(c.chunk) / (4 * c.rate)));
      moved += c.chunk;
    }
    const double achieved = static_cast<double>(moved) / absl::ToDoubleSeconds(clock.Now() - start);
    EXPECT_LE(achieved, c.rate * 1.10) << c.rate << " " << c.chunk;
    EXPECT_GE(achieved, c.rate * 0.90) << c.rate << " " << c.chunk;
  }
}

TEST(CondVarTokenWaiterTest, CancelReturnsWaitersAtOnce) {
  CondVarTokenWaiter waiter;
  std::thread t([&] { waiter.WaitFor(absl::Hours(1)); });
  waiter.Cancel();
  t.join();
  waiter.WaitFor(absl::Hours(1));  // returns: cancelled
  SUCCEED();
}

}  // namespace
}  // namespace inferd
