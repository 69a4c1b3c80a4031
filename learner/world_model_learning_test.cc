// WorldModel learns (label slow, ~20 s of CPU training): on a stream of one-hot observations whose
// reward depends only on the current observation, the posterior must come to encode the
// observation and the reward head to predict the reward from it. This guards the whole information
// path (encoder -> posterior -> straight-through sample -> decoder and heads) end to end; the unit
// tests only check that gradients reach each part.
#include <gtest/gtest.h>

#include <iostream>

#include "dreamer/agent_config.h"
#include "dreamer/batch.h"
#include "dreamer/world_model.h"
#include "learner/laprop.h"

namespace dreamfleet::learner {
namespace {

using dreamer::AgentConfig;
using dreamer::ApplyPreset;
using dreamer::Batch;
using dreamer::WorldModel;

constexpr int kKinds = 16;     // observation i is the one-hot vector e_i
constexpr int kRewarded = 3;   // observing e_3 gives reward 1, everything else 0

Batch OneHotBatch(int64_t b, int64_t t) {
  Batch batch;
  auto index = torch::randint(0, kKinds, {b, t}, torch::kLong);
  batch.vector = torch::one_hot(index, kKinds).to(torch::kFloat);
  batch.action = torch::randint(0, 3, {b, t}, torch::kLong);
  batch.reward = (index == kRewarded).to(torch::kFloat);
  batch.is_first = torch::zeros({b, t}, torch::kBool);
  batch.is_first.select(1, 0).fill_(true);
  batch.is_last = torch::zeros({b, t}, torch::kBool);
  batch.is_terminal = torch::zeros({b, t}, torch::kBool);
  return batch;
}

TEST(WorldModelLearningTest, EncodesOneHotObservationsAndPredictsTheirReward) {
  AgentConfig c;
  ASSERT_TRUE(ApplyPreset("1m", &c).ok());
  c.image_channels = 0;
  c.vector_size = kKinds;
  c.num_actions = 3;
  c.scale_rec = 30;  // as configs/default.yaml: a small observation needs it (BENCHMARKS.md)
  torch::manual_seed(0);
  WorldModel wm(c);
  LaProp opt(wm->parameters(), LaPropOptions(1e-3).agc(c.agc).eps(c.eps));
  double first_vector_loss = 0;
  for (int update = 0; update < 400; ++update) {
    opt.zero_grad();
    auto out = wm->Loss(OneHotBatch(16, 16), std::nullopt);
    if (update == 0) first_vector_loss = out.losses["vector"].item<double>();
    out.loss.backward();
    opt.step();
  }

  torch::NoGradGuard no_grad;
  Batch eval = OneHotBatch(32, 16);
  auto out = wm->Loss(eval, std::nullopt);
  // Predicting the mean one-hot costs ~0.45 (symlog(1)^2 * 15/16); knowing the observation ~0.
  const double vector_loss = out.losses["vector"].item<double>();
  EXPECT_LT(vector_loss, 0.15) << "first update: " << first_vector_loss;
  auto predicted = wm->RewardMean(out.feat);
  auto rewarded = eval.reward > 0;
  ASSERT_GT(rewarded.sum().item<int64_t>(), 0);
  const double on_rewarded = predicted.masked_select(rewarded).mean().item<double>();
  const double elsewhere = predicted.masked_select(~rewarded).mean().item<double>();
  std::cout << "after 400 updates: vector loss " << vector_loss << " (first " << first_vector_loss
            << "), predicted reward " << on_rewarded << " on rewarded steps, " << elsewhere
            << " elsewhere\n";
  EXPECT_GT(on_rewarded, 0.5);
  EXPECT_LT(elsewhere, 0.15);
}

}  // namespace
}  // namespace dreamfleet::learner
