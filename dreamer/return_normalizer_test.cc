// Tests of the percentile return normaliser: percentiles of a known
// distribution, the floor of 1, the EMA and checkpoint state round trips.
#include "dreamer/return_normalizer.h"

#include <gtest/gtest.h>

#include <cmath>

namespace dreamfleet::dreamer {
namespace {

float Value(const torch::Tensor& t) { return t.item<float>(); }

TEST(ReturnNormalizerTest, StartsWithUnitScale) {
  ReturnNormalizer norm;
  EXPECT_EQ(Value(norm.Scale()), 1.0f);
  EXPECT_EQ(Value(norm.Offset()), 0.0f);
  EXPECT_EQ(norm.updates(), 0);
}

TEST(ReturnNormalizerTest, KnownDistributionGivesPercentileRange) {
  // 0, 1, ..., 100: the 5th percentile is 5 and the 95th is 95 exactly.
  ReturnNormalizerOptions options;
  options.decay = 0.0;  // No memory: the stats are this batch's percentiles.
  ReturnNormalizer norm(options);
  norm.Update(torch::arange(101, torch::kFloat).reshape({1, 101}).flip({1}));
  EXPECT_FLOAT_EQ(Value(norm.Offset()), 5.0f);
  EXPECT_FLOAT_EQ(Value(norm.Scale()), 90.0f);
  EXPECT_TRUE(
      torch::allclose(norm.Normalize(torch::tensor({5.0f, 95.0f})), torch::tensor({0.0f, 1.0f})));
  // Linear interpolation between samples as numpy.percentile: 0..10 -> 0.5 / 9.5.
  norm.Update(torch::arange(11, torch::kDouble));
  EXPECT_FLOAT_EQ(Value(norm.Offset()), 0.5f);
  EXPECT_FLOAT_EQ(Value(norm.Scale()), 9.0f);
}

TEST(ReturnNormalizerTest, ScaleIsFlooredAtOne) {
  ReturnNormalizerOptions options;
  options.decay = 0.0;
  ReturnNormalizer norm(options);
  norm.Update(torch::linspace(-0.2, 0.3, 1000));
  EXPECT_EQ(Value(norm.Scale()), 1.0f);
  // Small returns are therefore only shifted, never scaled up.
  EXPECT_TRUE(torch::allclose(norm.Normalize(torch::tensor({0.1f})),
                              torch::tensor({0.1f}) - norm.Offset()));
}

TEST(ReturnNormalizerTest, FollowsAnEmaWithDecay099) {
  ReturnNormalizer norm;  // decay 0.99, no debiasing (official retnorm).
  torch::Tensor batch = torch::arange(101, torch::kFloat);
  for (int n = 1; n <= 300; ++n) {
    norm.Update(batch);
    // From 0, each update moves 1% of the way: stat_n = p * (1 - 0.99^n).
    const double k = 1.0 - std::pow(0.99, n);
    ASSERT_NEAR(Value(norm.Offset()), 5.0 * k, 1e-4 * 5.0) << "n=" << n;
    ASSERT_NEAR(Value(norm.Scale()), std::max(1.0, 90.0 * k), 1e-4 * 90.0) << "n=" << n;
  }
  EXPECT_EQ(norm.updates(), 300);
  // A shift in the distribution is followed slowly.
  torch::Tensor before = norm.Scale();
  norm.Update(batch * 10);
  const double expected = 0.99 * Value(before) + 0.01 * 900.0;
  EXPECT_NEAR(Value(norm.Scale()), expected, 1e-3);
}

TEST(ReturnNormalizerTest, DebiasingRemovesTheStartupBias) {
  ReturnNormalizerOptions options;
  options.debias = true;
  ReturnNormalizer norm(options);
  norm.Update(torch::arange(101, torch::kFloat));
  EXPECT_NEAR(Value(norm.Offset()), 5.0f, 1e-4f);
  EXPECT_NEAR(Value(norm.Scale()), 90.0f, 1e-3f);
  norm.Update(torch::arange(101, torch::kFloat) * 2);
  // (0.99 * 0.01 * 90 + 0.01 * 180) / (1 - 0.99^2)
  EXPECT_NEAR(Value(norm.Scale()), (0.99 * 0.01 * 90 + 0.01 * 180) / (1 - 0.99 * 0.99), 1e-3);
}

TEST(ReturnNormalizerTest, SaveAndLoadRoundTripExactly) {
  ReturnNormalizer norm;
  torch::manual_seed(0);
  for (int i = 0; i < 7; ++i) norm.Update(torch::randn({16, 15}) * 30);
  std::map<std::string, torch::Tensor> state = norm.Save();
  ReturnNormalizer restored;
  ASSERT_TRUE(restored.Load(state).ok());
  EXPECT_EQ(restored.updates(), 7);
  EXPECT_TRUE(torch::equal(restored.Offset(), norm.Offset()));
  EXPECT_TRUE(torch::equal(restored.Scale(), norm.Scale()));
  torch::Tensor next = torch::randn({16, 15}) * 30;
  norm.Update(next);
  restored.Update(next);
  EXPECT_TRUE(torch::equal(restored.Scale(), norm.Scale()));
  // Save() hands out copies: updating does not change a saved state.
  EXPECT_FALSE(torch::equal(state.at("high"), norm.Save().at("high")));
}

TEST(ReturnNormalizerTest, LoadRejectsMissingOrMalformedState) {
  ReturnNormalizer norm;
  std::map<std::string, torch::Tensor> state = norm.Save();
  state.erase("high");
  absl::Status status = norm.Load(state);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("high"), std::string::npos) << status;
  state = norm.Save();
  state["low"] = torch::zeros({3});
  status = norm.Load(state);
  EXPECT_NE(status.message().find("low"), std::string::npos) << status;
}

}  // namespace
}  // namespace dreamfleet::dreamer
