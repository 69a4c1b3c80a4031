// ActorCritic: the REINFORCE loss moves the policy toward the rewarded action and the critic
// toward the lambda-returns; the replay lambda-return stops at episode ends.
#include "dreamer/actor_critic.h"

#include <gtest/gtest.h>

#include "dreamer/distributions.h"
#include "dreamer/test_util.h"

namespace dreamfleet::dreamer {
namespace {

TEST(ActorCriticTest, PolicyLearnsTheRewardedActionAndCriticLearnsItsValue) {
  auto c = testing::DebugConfig();
  torch::manual_seed(0);
  ActorCritic ac(c);
  ReturnNormalizer retnorm;
  torch::optim::Adam opt(ac->TrainableParameters(), torch::optim::AdamOptions(3e-3));
  const int64_t n = 64, h1 = c.imag_horizon + 1;
  auto feat = torch::randn({n, h1, c.feat_size()});
  auto probe = feat.select(1, 0);
  const double before = ac->PolicyLogits(probe).exp().select(-1, 2).mean().item<double>();
  for (int step = 0; step < 150; ++step) {
    ImaginedTrajectory traj;
    traj.feat = feat;
    traj.action = torch::randint(0, c.num_actions, {n, h1});
    // Entering state h+1 pays 1 when action 2 was taken in state h.
    traj.reward = torch::zeros({n, h1});
    traj.reward.narrow(1, 1, h1 - 1)
        .copy_((traj.action.narrow(1, 0, h1 - 1) == 2).to(torch::kFloat));
    traj.cont = torch::full({n, h1}, 0.997f);
    // The replay windows hold the n start states (boot values come from their imagined returns).
    ReplayContext replay{torch::randn({8, 8, c.feat_size()}), torch::zeros({8, 8}),
                         torch::zeros({8, 8}, torch::kBool), torch::zeros({8, 8}, torch::kBool)};
    auto out = ac->Loss(traj, replay, retnorm);
    ASSERT_TRUE(out.finite);
    opt.zero_grad();
    out.loss.backward();
    opt.step();
  }
  const double after = ac->PolicyLogits(probe).exp().select(-1, 2).mean().item<double>();
  EXPECT_GT(after, before + 0.2) << "p(rewarded action) " << before << " -> " << after;
  // Random actions earn ~1/3 per step: the critic (zero at init, held back here by the slow-critic
  // regulariser and the zero-reward replay windows) moves clearly upward.
  EXPECT_GT(TwoHotMean(ac->value()->forward(probe)).mean().item<double>(), 0.2);
}

TEST(ActorCriticTest, TheCriticUsesTheConfiguredTwohotSpace) {
  // Same weights, same trajectory: with a critic that predicts a spread of values, the raw-space
  // mean and targets differ from the symlog-space ones, so both critic losses move.
  auto losses_with = [](const std::string& twohot) {
    auto c = testing::DebugConfig();
    c.twohot = twohot;
    torch::manual_seed(0);
    ActorCritic ac(c);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : ac->named_parameters()) {
        if (p.key().find("value") != std::string::npos) p.value().normal_(0, 0.5);
      }
    }
    ReturnNormalizer retnorm;
    const int64_t n = 8, h1 = c.imag_horizon + 1;
    torch::manual_seed(1);
    ImaginedTrajectory traj;
    traj.feat = torch::randn({n, h1, c.feat_size()});
    traj.action = torch::randint(0, c.num_actions, {n, h1});
    traj.reward = (torch::rand({n, h1}) < 0.2).to(torch::kFloat) * 3.0;
    traj.cont = torch::full({n, h1}, 0.997f);
    ReplayContext replay{torch::randn({2, 4, c.feat_size()}), torch::ones({2, 4}),
                         torch::zeros({2, 4}, torch::kBool), torch::zeros({2, 4}, torch::kBool)};
    auto out = ac->Loss(traj, replay, retnorm);
    EXPECT_TRUE(out.finite) << twohot;
    return std::make_pair(out.losses["value"].item<double>(), out.losses["repval"].item<double>());
  };
  const auto symlog = losses_with("symlog");
  const auto raw = losses_with("raw");
  EXPECT_GT(std::abs(symlog.first - raw.first), 1e-4 * std::abs(symlog.first));
  EXPECT_GT(std::abs(symlog.second - raw.second), 1e-4 * std::abs(symlog.second));
}

TEST(ActorCriticTest, ReplayLambdaReturnStopsAtEpisodeEnds) {
  // One row of 4 steps; step 1 is the last of its episode, step 2 starts a new one.
  auto reward = torch::tensor({{0.0f, 1.0f, 0.0f, 2.0f}});
  auto boot = torch::tensor({{10.0f, 20.0f, 30.0f, 40.0f}});
  auto last = torch::tensor({{false, true, false, false}});
  auto term = torch::tensor({{false, true, false, false}});
  auto ret = ReplayLambdaReturn(reward, boot, last, term, /*gamma=*/0.5, /*lambda=*/1.0);
  ASSERT_EQ(ret.sizes().vec(), (std::vector<int64_t>{1, 3}));
  // R_2 = r_3 + 0.5 * boot_3 = 2 + 20 = 22 (lambda = 1 continues into R_3 = boot_3).
  EXPECT_FLOAT_EQ(ret[0][2].item<float>(), 22.0f);
  // R_1 = r_2 + 0.5 * R_2 = 11: the new episode's return, as in the official code (the loss
  // weight (1 - last) masks this entry).
  EXPECT_FLOAT_EQ(ret[0][1].item<float>(), 11.0f);
  // R_0 = r_1 + gamma * (1 - term_1) * ... = 1: nothing flows across the terminal step.
  EXPECT_FLOAT_EQ(ret[0][0].item<float>(), 1.0f);
}

TEST(ActorCriticTest, ReplayBootstrapTakesImaginedReturnsWhereRolloutsStartedAndValuesElsewhere) {
  // B = 2, T = 4: rollouts started at flat indices 5 (b 1, t 1) and 2 (b 0, t 2).
  auto value = torch::arange(8, torch::kFloat32).reshape({2, 4});
  auto ret = torch::tensor({100.0f, 200.0f});
  auto boot = ReplayBootstrap(ret, torch::tensor({5, 2}, torch::kLong), value, 2, 4);
  auto want = torch::tensor({{0.0f, 1.0f, 200.0f, 3.0f}, {4.0f, 100.0f, 6.0f, 7.0f}});
  EXPECT_TRUE(torch::equal(boot, want)) << boot;
  EXPECT_TRUE(torch::equal(value, torch::arange(8, torch::kFloat32).reshape({2, 4})))
      << "the critic's values are not written over";
  // Without start indices every state started one rollout, in order.
  auto all = torch::arange(8, torch::kFloat32) * 10;
  EXPECT_TRUE(torch::equal(ReplayBootstrap(all, torch::Tensor(), torch::Tensor(), 2, 4),
                           all.reshape({2, 4})));
}

TEST(ActorCriticTest, LossesDoNotDependOnTheOrderOfTheRollouts) {
  // Rollouts from every state of a 2 x 4 batch, given once in order and once shuffled with their
  // start indices: the policy, value and replay value losses must agree (the replay value loss
  // finds each rollout's return by its start index).
  auto c = testing::DebugConfig();
  torch::manual_seed(0);
  ActorCritic ac(c);
  {
    // The critic's output layer starts at zero, where its twohot loss is the same for every
    // target: give it a spread so that a wrong target shows.
    torch::NoGradGuard no_grad;
    for (auto& p : ac->named_parameters()) {
      if (p.key().find("value") != std::string::npos) p.value().normal_(0, 0.5);
    }
  }
  const int64_t bs = 2, t_len = 4, n = bs * t_len, h1 = c.imag_horizon + 1;
  ImaginedTrajectory traj;
  traj.feat = torch::randn({n, h1, c.feat_size()});
  traj.action = torch::randint(0, c.num_actions, {n, h1});
  traj.reward = torch::rand({n, h1}) * 2.0;
  traj.cont = torch::full({n, h1}, 0.997f);
  ReplayContext replay{torch::randn({bs, t_len, c.feat_size()}), torch::rand({bs, t_len}),
                       torch::zeros({bs, t_len}, torch::kBool),
                       torch::zeros({bs, t_len}, torch::kBool)};
  ReturnNormalizer norm_in_order;
  auto in_order = ac->Loss(traj, replay, norm_in_order);

  auto perm = torch::tensor({5, 2, 7, 0, 3, 6, 1, 4}, torch::kLong);
  ImaginedTrajectory shuffled;
  shuffled.feat = traj.feat.index_select(0, perm);
  shuffled.action = traj.action.index_select(0, perm);
  shuffled.reward = traj.reward.index_select(0, perm);
  shuffled.cont = traj.cont.index_select(0, perm);
  shuffled.start_index = perm;
  ReturnNormalizer norm_shuffled;
  auto out = ac->Loss(shuffled, replay, norm_shuffled);
  ASSERT_TRUE(in_order.finite && out.finite);
  for (const char* k : {"policy", "value", "repval"}) {
    EXPECT_NEAR(out.losses[k].item<double>(), in_order.losses[k].item<double>(),
                1e-5 * (1 + std::abs(in_order.losses[k].item<double>())))
        << k;
  }
  // A wrong mapping would bootstrap state (b, t) from another state's return.
  ImaginedTrajectory misplaced = shuffled;
  misplaced.start_index = torch::arange(n, torch::kLong);
  ReturnNormalizer norm_misplaced;
  auto wrong = ac->Loss(misplaced, replay, norm_misplaced);
  EXPECT_GT(
      std::abs(wrong.losses["repval"].item<double>() - in_order.losses["repval"].item<double>()),
      1e-4);
}

TEST(ActorCriticTest, ExploredRolloutsTrainTheActorButNotTheCritic) {
  // Rollouts from every state of a 2 x 4 batch, rows 1 and 6 opened with a held random action.
  // Against the same rollouts without them: the critic's losses are those of the 6 policy rows
  // alone (the replay value loss bootstrapping from the critic at states 1 and 6), and the policy
  // loss is that of all 8 rows.
  auto c = testing::DebugConfig();
  torch::manual_seed(0);
  ActorCritic ac(c);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : ac->named_parameters()) {
      if (p.key().find("value") != std::string::npos) p.value().normal_(0, 0.5);
    }
  }
  const int64_t bs = 2, t_len = 4, n = bs * t_len, h1 = c.imag_horizon + 1;
  ImaginedTrajectory traj;
  traj.feat = torch::randn({n, h1, c.feat_size()});
  traj.action = torch::randint(0, c.num_actions, {n, h1});
  traj.reward = torch::rand({n, h1}) * 2.0;
  traj.cont = torch::full({n, h1}, 0.997f);
  ReplayContext replay{torch::randn({bs, t_len, c.feat_size()}), torch::rand({bs, t_len}),
                       torch::zeros({bs, t_len}, torch::kBool),
                       torch::zeros({bs, t_len}, torch::kBool)};
  ImaginedTrajectory explored = traj;
  explored.explore = torch::tensor({false, true, false, false, false, false, true, false});
  ReturnNormalizer norm_explored;
  auto out = ac->Loss(explored, replay, norm_explored);

  auto policy_rows = torch::tensor({0, 2, 3, 4, 5, 7}, torch::kLong);
  ImaginedTrajectory on_policy;
  on_policy.feat = traj.feat.index_select(0, policy_rows);
  on_policy.action = traj.action.index_select(0, policy_rows);
  on_policy.reward = traj.reward.index_select(0, policy_rows);
  on_policy.cont = traj.cont.index_select(0, policy_rows);
  on_policy.start_index = policy_rows;
  ReturnNormalizer norm_on_policy;
  auto critic_ref = ac->Loss(on_policy, replay, norm_on_policy);
  ReturnNormalizer norm_all;
  auto all_rows = ac->Loss(traj, replay, norm_all);
  ASSERT_TRUE(out.finite && critic_ref.finite && all_rows.finite);
  for (const char* k : {"value", "repval"}) {
    EXPECT_NEAR(out.losses[k].item<double>(), critic_ref.losses[k].item<double>(),
                1e-5 * (1 + std::abs(critic_ref.losses[k].item<double>())))
        << k;
  }
  EXPECT_NEAR(out.losses["policy"].item<double>(), all_rows.losses["policy"].item<double>(),
              1e-6 * (1 + std::abs(all_rows.losses["policy"].item<double>())));
  EXPECT_GT(std::abs(all_rows.losses["value"].item<double>() - out.losses["value"].item<double>()),
            1e-5)
      << "the explored rows would have changed the critic's loss";
  EXPECT_NEAR(out.metrics["explored_rows"].item<double>(), 0.25, 1e-6);

  // From a shuffled subset of the states (5, 2, 7, 0), the second explored: the critic's losses
  // are those of rows 5, 7 and 0 alone.
  auto subset = torch::tensor({5, 2, 7, 0}, torch::kLong);
  ImaginedTrajectory sub;
  sub.feat = traj.feat.index_select(0, subset);
  sub.action = traj.action.index_select(0, subset);
  sub.reward = traj.reward.index_select(0, subset);
  sub.cont = traj.cont.index_select(0, subset);
  sub.start_index = subset;
  sub.explore = torch::tensor({false, true, false, false});
  ReturnNormalizer norm_sub;
  auto sub_out = ac->Loss(sub, replay, norm_sub);
  auto kept = torch::tensor({0, 2, 3}, torch::kLong);
  ImaginedTrajectory sub_ref;
  sub_ref.feat = sub.feat.index_select(0, kept);
  sub_ref.action = sub.action.index_select(0, kept);
  sub_ref.reward = sub.reward.index_select(0, kept);
  sub_ref.cont = sub.cont.index_select(0, kept);
  sub_ref.start_index = subset.index_select(0, kept);
  ReturnNormalizer norm_sub_ref;
  auto sub_want = ac->Loss(sub_ref, replay, norm_sub_ref);
  ASSERT_TRUE(sub_out.finite && sub_want.finite);
  for (const char* k : {"value", "repval"}) {
    EXPECT_NEAR(sub_out.losses[k].item<double>(), sub_want.losses[k].item<double>(),
                1e-5 * (1 + std::abs(sub_want.losses[k].item<double>())))
        << "subset " << k;
  }

  // Every row explored: no imagined value loss, the replay value loss bootstraps from the critic
  // alone, and the actor still trains on all rows.
  ImaginedTrajectory all_explored = traj;
  all_explored.explore = torch::ones({n}, torch::kBool);
  ReturnNormalizer norm_all_explored;
  auto none = ac->Loss(all_explored, replay, norm_all_explored);
  ASSERT_TRUE(none.finite);
  EXPECT_EQ(none.losses["value"].item<double>(), 0.0);
  EXPECT_TRUE(std::isfinite(none.losses["repval"].item<double>()));
  EXPECT_NEAR(none.losses["policy"].item<double>(), all_rows.losses["policy"].item<double>(),
              1e-6 * (1 + std::abs(all_rows.losses["policy"].item<double>())));
}

}  // namespace
}  // namespace dreamfleet::dreamer
