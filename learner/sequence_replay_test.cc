// SequenceReplay: windows are consecutive steps of one stream, and the ring evicts the oldest.
#include "learner/sequence_replay.h"

#include <gtest/gtest.h>

#include "dreamer/test_util.h"

namespace dreamfleet::learner {
namespace {

TEST(SequenceReplayTest, SamplesConsecutiveStepsOfOneStreamAfterEviction) {
  auto c = dreamer::testing::DebugConfig(/*image=*/true, /*vector=*/true);
  const int64_t cap = 10;
  SequenceReplay replay(c, /*streams=*/2, cap, /*seed=*/1);
  std::vector<uint8_t> image(c.image_height * c.image_width * c.image_channels);
  std::vector<float> vec(c.vector_size);
  EXPECT_FALSE(replay.CanSample(4));
  // Stream s, step k: reward = 1000 s + k, image filled with k, vector[0] = k.
  for (int k = 0; k < 25; ++k) {
    for (int s = 0; s < 2; ++s) {
      std::fill(image.begin(), image.end(), static_cast<uint8_t>(k));
      vec[0] = k;
      services::StepRecord step;
      step.image = image.data();
      step.vector = vec.data();
      step.action = k % c.num_actions;
      step.reward = 1000.0f * s + k;
      step.is_first = k % 7 == 0;
      replay.Add(s, step);
    }
  }
  EXPECT_EQ(replay.size(), 2 * cap);
  ASSERT_TRUE(replay.CanSample(4));
  auto b = replay.Sample(/*batch=*/32, /*length=*/4);
  ASSERT_TRUE(dreamer::ValidateBatch(b, c).ok()) << dreamer::ValidateBatch(b, c);
  for (int64_t row = 0; row < 32; ++row) {
    auto r = b.reward[row];
    const float first = r[0].item<float>();
    const int k0 = static_cast<int>(first) % 1000;
    EXPECT_GE(k0, 25 - cap) << "evicted steps must not be sampled";
    for (int t = 0; t < 4; ++t) {
      EXPECT_EQ(r[t].item<float>(), first + t);
      EXPECT_EQ(b.image[row][t].max().item<int>(), k0 + t);
      EXPECT_EQ(b.vector[row][t][0].item<float>(), k0 + t);
      EXPECT_EQ(b.is_first[row][t].item<bool>(), (k0 + t) % 7 == 0);
      EXPECT_EQ(b.action[row][t].item<int64_t>(), (k0 + t) % c.num_actions);
    }
  }
}

}  // namespace
}  // namespace dreamfleet::learner
