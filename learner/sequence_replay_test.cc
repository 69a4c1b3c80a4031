// SequenceReplay: windows are consecutive steps of one stream, and the ring evicts the oldest.
#include "learner/sequence_replay.h"

#include <gtest/gtest.h>

#include <set>

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

// Replay context: a window starts from the latent stored with the step before it, and written-back
// latents are what later windows start from.
TEST(SequenceReplayTest, ContextIsTheStoredLatentOfTheStepBeforeAndWriteBackReplacesIt) {
  auto c = dreamer::testing::DebugConfig(/*image=*/false, /*vector=*/true);
  c.replay_context = 1;
  const int64_t cap = 12;
  SequenceReplay replay(c, /*streams=*/1, cap, /*seed=*/3);
  ASSERT_TRUE(replay.context());
  std::vector<float> vec(c.vector_size);
  std::vector<float> deter(c.deter), stoch(c.stoch * c.classes);
  // Step k: reward k, deter filled with k, stoch class k % classes in every group.
  auto add = [&](int k) {
    vec[0] = k;
    std::fill(deter.begin(), deter.end(), static_cast<float>(k));
    std::fill(stoch.begin(), stoch.end(), 0.0f);
    for (int i = 0; i < c.stoch; ++i) stoch[i * c.classes + k % c.classes] = 1.0f;
    services::StepRecord step;
    step.vector = vec.data();
    step.action = k % c.num_actions;
    step.reward = static_cast<float>(k);
    step.is_first = k == 0;
    replay.Add(0, step, deter.data(), stoch.data());
  };
  for (int k = 0; k < 4; ++k) add(k);
  EXPECT_FALSE(replay.CanSample(4)) << "a window of 4 needs 5 steps with its context";
  for (int k = 4; k < 20; ++k) add(k);  // the ring keeps steps 8..19
  ASSERT_TRUE(replay.CanSample(4));
  dreamer::Batch b = replay.Sample(/*batch=*/16, /*length=*/4);
  ASSERT_TRUE(dreamer::ValidateBatch(b, c).ok()) << dreamer::ValidateBatch(b, c);
  ASSERT_EQ(b.reward.sizes(), (std::vector<int64_t>{16, 4}));
  for (int64_t row = 0; row < 16; ++row) {
    const int k = static_cast<int>(b.reward[row][0].item<float>());
    EXPECT_GE(k - 1, 8) << "the context step is stored too";
    EXPECT_EQ(b.context_deter[row].min().item<float>(), k - 1);
    EXPECT_EQ(b.context_deter[row].max().item<float>(), k - 1);
    EXPECT_EQ(b.context_stoch[row].argmax(-1).min().item<int64_t>(), (k - 1) % c.classes);
    EXPECT_EQ(b.context_stoch[row].sum().item<float>(), c.stoch) << "one-hot per group";
    EXPECT_EQ(b.context_action[row].item<int64_t>(), (k - 1) % c.num_actions);
    EXPECT_EQ(b.action[row][0].item<int64_t>(), k % c.num_actions);
  }

  // Write back latent -(step) for every trained step; windows that start right after a trained
  // step then carry it as their context.
  torch::Tensor new_deter = -b.reward.unsqueeze(-1).expand({16, 4, c.deter}).contiguous();
  torch::Tensor new_stoch = torch::zeros({16, 4, c.stoch, c.classes});
  new_stoch.select(-1, c.classes - 1).fill_(1.0f);
  EXPECT_FALSE(replay.WriteBack(new_deter.narrow(1, 0, 3), new_stoch.narrow(1, 0, 3)));
  ASSERT_TRUE(replay.WriteBack(new_deter, new_stoch));
  std::set<int> written;
  for (int64_t row = 0; row < 16; ++row) {
    for (int t = 0; t < 4; ++t) written.insert(static_cast<int>(b.reward[row][t].item<float>()));
  }
  dreamer::Batch again = replay.Sample(/*batch=*/64, /*length=*/4);
  int checked = 0;
  for (int64_t row = 0; row < 64; ++row) {
    const int before = static_cast<int>(again.reward[row][0].item<float>()) - 1;
    const float context = again.context_deter[row][0].item<float>();
    if (written.count(before)) {
      EXPECT_EQ(context, -before);
      EXPECT_EQ(again.context_stoch[row].argmax(-1).min().item<int64_t>(), c.classes - 1);
      ++checked;
    } else {
      EXPECT_EQ(context, before);
    }
  }
  EXPECT_GT(checked, 0);
  // Steps added after a sample may have replaced the sampled ones: that write-back is refused.
  add(20);
  EXPECT_FALSE(replay.WriteBack(again.reward.unsqueeze(-1).expand({64, 4, c.deter}),
                                torch::zeros({64, 4, c.stoch, c.classes})));
}

}  // namespace
}  // namespace dreamfleet::learner
