// SequenceReplay: windows are consecutive steps of one stream, and the ring evicts the oldest.
#include "learner/sequence_replay.h"

#include <gtest/gtest.h>

#include <cmath>
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

// Prioritised: windows come back in proportion to priority^exponent of their first step; new
// steps start at the moving average of the priorities set; uniform replay refuses priorities.
TEST(SequenceReplayTest, PrioritisedWindowsComeBackInProportionToTheirLoss) {
  auto c = dreamer::testing::DebugConfig(/*image=*/false, /*vector=*/true);
  const int64_t cap = 40, length = 4;
  SequenceReplay uniform(c, /*streams=*/1, cap, /*seed=*/5);
  SequenceReplay replay(c, /*streams=*/2, cap, /*seed=*/5, /*priority_exponent=*/1.0);
  ASSERT_TRUE(replay.prioritized());
  ASSERT_FALSE(uniform.prioritized());
  std::vector<float> vec(c.vector_size);
  // Stream s, step k: reward = 1000 s + k. 50 steps: the ring holds steps 10..49.
  auto add = [&](SequenceReplay& r, int s, int k) {
    services::StepRecord step;
    step.vector = vec.data();
    step.action = 0;
    step.reward = 1000.0f * s + k;
    r.Add(s, step);
  };
  for (int k = 0; k < 50; ++k) {
    for (int s = 0; s < 2; ++s) add(replay, s, k);
    add(uniform, 0, k);
  }
  EXPECT_DOUBLE_EQ(replay.weight(0, 0), 1.0);  // before any priority: 1
  auto b = uniform.Sample(4, length);
  EXPECT_FALSE(uniform.SetPriorities({1, 1, 1, 1}));

  // Every window sampled once gets priority 1e-3, except those starting at stream 1's step 30,
  // which get 100: then almost every draw is that window.
  std::set<std::pair<int, int>> seen;
  for (int round = 0; round < 400 && seen.size() < 2 * (40 - length + 1); ++round) {
    b = replay.Sample(8, length);
    std::vector<double> losses;
    for (int64_t row = 0; row < 8; ++row) {
      const int first = static_cast<int>(b.reward[row][0].item<float>());
      ASSERT_LE(first % 1000 + length, 50) << "a window runs past the newest step";
      ASSERT_GE(first % 1000, 10) << "an evicted step was sampled";
      seen.insert({first / 1000, first % 1000});
      losses.push_back(first == 1030 ? 100.0 : 1e-3);
    }
    ASSERT_TRUE(replay.SetPriorities(losses));
  }
  ASSERT_TRUE(seen.count({1, 30}));
  int hot = 0;
  for (int round = 0; round < 50; ++round) {
    b = replay.Sample(8, length);
    std::vector<double> losses;
    for (int64_t row = 0; row < 8; ++row) {
      const int first = static_cast<int>(b.reward[row][0].item<float>());
      hot += first == 1030;
      losses.push_back(first == 1030 ? 100.0 : 1e-3);
    }
    ASSERT_TRUE(replay.SetPriorities(losses));
  }
  // Its weight is 100 against at most ~80 windows x 1e-3 plus the never-sampled ones at the
  // moving average; the uniform rate would be 1 in 74.
  EXPECT_GT(hot, 300);
  EXPECT_DOUBLE_EQ(replay.weight(1, 30 % cap), 100.0);

  // A loss that is not finite keeps the window's priority; a count that does not match the last
  // sample, or steps added since, sets nothing.
  b = replay.Sample(2, length);
  const int first = static_cast<int>(b.reward[0][0].item<float>());
  const double before = replay.weight(first / 1000, (first % 1000) % cap);
  EXPECT_TRUE(replay.SetPriorities({std::nan(""), std::nan("")}));
  EXPECT_DOUBLE_EQ(replay.weight(first / 1000, (first % 1000) % cap), before);
  EXPECT_FALSE(replay.SetPriorities({1.0}));
  b = replay.Sample(2, length);
  add(replay, 0, 50);
  EXPECT_FALSE(replay.SetPriorities({1.0, 1.0}));
  // The new step starts at the moving average of the priorities set, which is below 100.
  const double fresh = replay.weight(0, 50 % cap);
  EXPECT_GT(fresh, 0.0);
  EXPECT_LT(fresh, 100.0);
}

// Prioritised with replay context, a ring not yet full and a stream shorter than a window: every
// window holds consecutive stored steps of one stream, its context included, even when the only
// high-priority step sits where no window fits.
TEST(SequenceReplayTest, PrioritisedWindowsStayInsideShortAndPartlyFilledStreams) {
  auto c = dreamer::testing::DebugConfig(/*image=*/false, /*vector=*/true);
  c.replay_context = 1;
  const int64_t cap = 30, length = 4;
  SequenceReplay replay(c, /*streams=*/2, cap, /*seed=*/9, /*priority_exponent=*/1.0);
  std::vector<float> vec(c.vector_size);
  std::vector<float> deter(c.deter, 0.0f), stoch(c.stoch * c.classes, 0.0f);
  for (int64_t i = 0; i < c.stoch; ++i) stoch[i * c.classes] = 1.0f;
  auto add = [&](int s, int k) {
    services::StepRecord step;
    step.vector = vec.data();
    step.action = 0;
    step.reward = 1000.0f * s + k;
    replay.Add(s, step, deter.data(), stoch.data());
  };
  for (int k = 0; k < 12; ++k) add(0, k);  // stream 0: 12 of 30 steps
  for (int k = 0; k < 3; ++k) add(1, k);   // stream 1: 3 steps, no window of 4 + 1 fits
  for (int round = 0; round < 100; ++round) {
    dreamer::Batch b = replay.Sample(8, length);
    std::vector<double> losses;
    for (int64_t row = 0; row < 8; ++row) {
      const int first = static_cast<int>(b.reward[row][0].item<float>());
      ASSERT_EQ(first / 1000, 0) << "stream 1 is shorter than a window";
      ASSERT_GE(first % 1000, 1) << "the context step must be stored";
      ASSERT_LE(first % 1000 + length, 12) << "a window runs past the newest step";
      for (int t = 1; t < length; ++t) ASSERT_EQ(b.reward[row][t].item<float>(), first + t);
      // The newest steps, where no window starts, keep the moving average; the others fall.
      losses.push_back(1e-3);
    }
    ASSERT_TRUE(replay.SetPriorities(losses));
  }
}

// Rewarded share: that share of windows hold a rewarded step among their trained steps, drawn
// from the rewarded steps still held; without one that fits, windows are drawn as usual.
TEST(SequenceReplayTest, RewardedShareDrawsWindowsAroundHeldRewards) {
  auto c = dreamer::testing::DebugConfig(/*image=*/false, /*vector=*/true);
  const int64_t cap = 40, length = 4;
  SequenceReplay all(c, /*streams=*/2, cap, /*seed=*/11, /*priority_exponent=*/0.0,
                     /*rewarded_share=*/1.0);
  SequenceReplay half(c, /*streams=*/2, cap, /*seed=*/11, /*priority_exponent=*/0.0,
                      /*rewarded_share=*/0.5);
  SequenceReplay none(c, /*streams=*/2, cap, /*seed=*/11);
  std::vector<float> vec(c.vector_size);
  // Stream s, step k: vector[0] = 1000 s + k; rewards at stream 1's steps 10 (evicted by the
  // end: the ring keeps 20..59) and 30, and at stream 0's newest step 59.
  auto rewarded = [](int s, int k) {
    return (s == 1 && (k == 10 || k == 30)) || (s == 0 && k == 59);
  };
  for (int k = 0; k < 60; ++k) {
    for (int s = 0; s < 2; ++s) {
      vec[0] = 1000.0f * s + k;
      services::StepRecord step;
      step.vector = vec.data();
      step.reward = rewarded(s, k) ? 1.0f : 0.0f;
      for (SequenceReplay* r : {&all, &half, &none}) r->Add(s, step);
    }
    if (k == 35) EXPECT_EQ(all.rewarded_steps(), 2);
  }
  EXPECT_EQ(all.rewarded_steps(), 2) << "stream 1's step 10 was evicted";
  auto count_rewarded = [&](SequenceReplay& r, std::set<int>* seen) {
    const dreamer::Batch b = r.Sample(400, length);
    int with_reward = 0;
    for (int64_t row = 0; row < 400; ++row) {
      const int first = static_cast<int>(b.vector[row][0][0].item<float>());
      EXPECT_GE(first % 1000, 20) << "an evicted step was sampled";
      EXPECT_LE(first % 1000 + length, 60) << "a window runs past the newest step";
      bool any = false;
      for (int t = 0; t < length; ++t) {
        EXPECT_EQ(b.vector[row][t][0].item<float>(), first + t);
        const bool r_t = rewarded(first / 1000, first % 1000 + t);
        EXPECT_EQ(b.reward[row][t].item<float>(), r_t ? 1.0f : 0.0f);
        if (r_t && seen) seen->insert(first / 1000 * 1000 + first % 1000 + t);
        any |= r_t;
      }
      with_reward += any;
    }
    return with_reward;
  };
  std::set<int> seen;
  EXPECT_EQ(count_rewarded(all, &seen), 400);
  EXPECT_EQ(seen, (std::set<int>{59, 1030})) << "both held rewards, newest step included";
  // Uniformly 5 of the 74 windows hold a reward (~27 of 400).
  const int some = count_rewarded(half, nullptr), few = count_rewarded(none, nullptr);
  EXPECT_GT(some, 150);
  EXPECT_LT(some, 280);
  EXPECT_LT(few, 80);

  // With replay context the rewarded step is never a window's context step, and a reward on the
  // oldest held step (its context is gone) or in a stream shorter than a window has no window:
  // those draws go to the rewards that have one, or, after 8 misses, to a uniform window.
  c.replay_context = 1;
  SequenceReplay context(c, /*streams=*/2, /*capacity_per_stream=*/20, /*seed=*/3, 0.0, 1.0);
  std::vector<float> deter(c.deter), stoch(c.stoch * c.classes);
  for (int64_t i = 0; i < c.stoch; ++i) stoch[i * c.classes] = 1.0f;
  for (int k = 0; k < 23; ++k) {
    for (int s = 0; s < 2; ++s) {
      if (s == 1 && k >= 3) continue;  // stream 1: 3 steps, the middle one rewarded
      vec[0] = 1000.0f * s + k;
      services::StepRecord step;
      step.vector = vec.data();
      step.reward = (s == 0 && (k == 3 || k == 12)) || (s == 1 && k == 1) ? 1.0f : 0.0f;
      context.Add(s, step, deter.data(), stoch.data());
    }
  }
  EXPECT_EQ(context.rewarded_steps(), 3);  // stream 0 holds 3..22: its step 3 is the oldest
  const dreamer::Batch b = context.Sample(64, length);
  int around_twelve = 0;
  for (int64_t row = 0; row < 64; ++row) {
    const int first = static_cast<int>(b.vector[row][0][0].item<float>());
    EXPECT_EQ(first / 1000, 0) << "stream 1 is shorter than a window";
    EXPECT_GE(first, 4) << "the context step must be stored";
    around_twelve += b.reward[row].sum().item<float>() == 1.0f;
  }
  // Every draw lands on step 12 as a trained step (a uniform window after 8 misses, (2/3)^8 of
  // the draws, may too); a window starting at step 3 or 12 would lose its reward to the context.
  EXPECT_GE(around_twelve, 56);
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
