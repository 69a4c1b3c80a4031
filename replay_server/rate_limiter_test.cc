#include "replay_server/rate_limiter.h"

#include "gtest/gtest.h"

namespace dreamfleet::replay {
namespace {

TEST(RateLimiterTest, BlocksSamplesUntilMinSizeReached) {
  RateLimiter limiter({/*samples_per_insert=*/0, /*tolerance=*/0, /*min_size_to_sample=*/100});
  EXPECT_FALSE(limiter.CanSample(1));
  limiter.Inserted(99);
  EXPECT_FALSE(limiter.CanSample(1));
  limiter.Inserted(1);
  EXPECT_TRUE(limiter.CanSample(1000000));  // ratio 0: no limit beyond the minimum size
  EXPECT_TRUE(limiter.CanInsert(1000000));
}

TEST(RateLimiterTest, KeepsTheRatioWithinTheTolerance) {
  // 2 replayed steps per inserted step, 100 steps of slack, sampling from 50 steps.
  RateLimiter limiter({2.0, 100.0, 50});
  EXPECT_TRUE(limiter.CanInsert(50));  // below the minimum size inserts always go
  limiter.Inserted(50);                // error 100 = r*m
  EXPECT_TRUE(limiter.CanInsert(50));  // 200 <= 100 + 100
  EXPECT_FALSE(limiter.CanInsert(51));
  limiter.Inserted(50);                // error 200
  EXPECT_TRUE(limiter.CanSample(200)); // 200 - 200 = 0 >= 100 - 100
  EXPECT_FALSE(limiter.CanSample(201));
  limiter.Sampled(150);                // error 50
  EXPECT_TRUE(limiter.CanInsert(25));  // 250 - 150 = 100 <= 200
  EXPECT_TRUE(limiter.CanInsert(75));  // 300 - 150 = 150 <= 200
  EXPECT_FALSE(limiter.CanInsert(76));
}

TEST(RateLimiterTest, ReportsItsState) {
  RateLimiter limiter({1.0, 10.0, 5});
  v1::RateLimiterInfo info;
  limiter.FillInfo(1, 1, &info);
  EXPECT_TRUE(info.samples_blocked());
  EXPECT_FALSE(info.inserts_blocked());
  EXPECT_DOUBLE_EQ(info.samples_per_insert(), 1.0);
  EXPECT_EQ(info.min_size_to_sample(), 5u);
}

}  // namespace
}  // namespace dreamfleet::replay
