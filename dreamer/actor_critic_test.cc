// ActorCritic: the REINFORCE loss moves the policy toward the rewarded action and the critic
// toward the lambda-returns; the replay lambda-return stops at episode ends.
#include "dreamer/actor_critic.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

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

TEST(ActorCriticTest, TheDynamicsObjectiveTeachesTheActorThroughTheRollout) {
  // The reward of entering state h+1 is the straight-through one-hot of action 2 in state h: only
  // the gradient through the rollout (no REINFORCE term at rho 1, no entropy bonus) can teach it.
  auto c = testing::DebugConfig();
  c.actor_dynamics = 1.0f;
  c.actent = 0.0f;
  torch::manual_seed(0);
  ActorCritic ac(c);
  ReturnNormalizer retnorm;
  torch::optim::Adam opt(ac->actor()->parameters(), torch::optim::AdamOptions(3e-3));
  const int64_t n = 64, h1 = c.imag_horizon + 1;
  auto feat = torch::randn({n, h1, c.feat_size()});
  auto probe = feat.select(1, 0);
  const double before = ac->PolicyLogits(probe).exp().select(-1, 2).mean().item<double>();
  ReplayContext replay{torch::randn({8, 8, c.feat_size()}), torch::zeros({8, 8}),
                       torch::zeros({8, 8}, torch::kBool), torch::zeros({8, 8}, torch::kBool)};
  for (int step = 0; step < 150; ++step) {
    ImaginedTrajectory traj;
    traj.feat = feat;
    auto onehot = ac->SampleOneHot(feat, std::nullopt);  // [n, h1, A]
    traj.action = onehot.detach().argmax(-1);
    traj.reward = torch::cat({torch::zeros({n, 1}), onehot.narrow(1, 0, h1 - 1).select(-1, 2)}, 1);
    traj.cont = torch::full({n, h1}, 0.997f);
    auto out = ac->Loss(traj, replay, retnorm);
    ASSERT_TRUE(out.finite);
    ASSERT_TRUE(out.dynamics.defined());
    // At rho 1 without the entropy bonus the REINFORCE policy loss is exactly zero.
    ASSERT_EQ(out.losses["policy"].item<double>(), 0.0);
    opt.zero_grad();
    out.dynamics.backward();
    opt.step();
  }
  const double after = ac->PolicyLogits(probe).exp().select(-1, 2).mean().item<double>();
  EXPECT_GT(after, before + 0.2) << "p(rewarded action) " << before << " -> " << after;

  // Without gradient in the rollout, or at rho 0, there is no dynamics objective, and REINFORCE
  // keeps its whole weight; with both, rho 0.5 halves it.
  ImaginedTrajectory plain;
  plain.feat = feat;
  plain.action = torch::randint(0, c.num_actions, {n, h1});
  plain.reward = (torch::rand({n, h1}) < 0.3).to(torch::kFloat);
  plain.cont = torch::full({n, h1}, 0.997f);
  ImaginedTrajectory with_grad = plain;
  with_grad.reward = plain.reward.clone().requires_grad_();
  auto policy_loss = [&](double rho, const ImaginedTrajectory& traj, bool* has_dynamics) {
    auto cfg = c;
    cfg.actor_dynamics = static_cast<float>(rho);
    torch::manual_seed(3);
    ActorCritic fresh(cfg);
    ReturnNormalizer norm;
    auto out = fresh->Loss(traj, replay, norm);
    *has_dynamics = out.dynamics.defined();
    return out.losses["policy"].item<double>();
  };
  bool has = true;
  const double official = policy_loss(0.0, with_grad, &has);
  EXPECT_FALSE(has);
  ASSERT_NE(official, 0.0);
  EXPECT_DOUBLE_EQ(policy_loss(0.5, plain, &has), official);
  EXPECT_FALSE(has);
  EXPECT_NEAR(policy_loss(0.5, with_grad, &has), 0.5 * official, 1e-6 * std::abs(official));
  EXPECT_TRUE(has);
}

// The losses of `ac` on a random imagined rollout of 8 rows and a 2 x 4 replay window (the same
// ones on every call: seeded).
ActorCriticOutput LossOnARandomRollout(ActorCritic& ac, const AgentConfig& c) {
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
  return ac->Loss(traj, replay, retnorm);
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
    auto out = LossOnARandomRollout(ac, c);
    EXPECT_TRUE(out.finite) << twohot;
    return std::make_pair(out.losses["value"].item<double>(), out.losses["repval"].item<double>());
  };
  const auto symlog = losses_with("symlog");
  const auto raw = losses_with("raw");
  EXPECT_GT(std::abs(symlog.first - raw.first), 1e-4 * std::abs(symlog.first));
  EXPECT_GT(std::abs(symlog.second - raw.second), 1e-4 * std::abs(symlog.second));
}

TEST(ActorCriticTest, TheReplayValueLossEntersTheTotalAtItsScale) {
  // Same weights and inputs at two scales: the terms are unchanged and the total moves by the
  // difference of the scales times the replay value loss.
  auto loss_at = [](float scale) {
    auto c = testing::DebugConfig();
    c.scale_repval = scale;
    torch::manual_seed(0);
    ActorCritic ac(c);
    return LossOnARandomRollout(ac, c);
  };
  const auto official = loss_at(0.3f);
  const auto heavy = loss_at(3.0f);
  ASSERT_TRUE(official.finite && heavy.finite);
  const double repval = official.losses.at("repval").item<double>();
  ASSERT_GT(repval, 1e-3);
  for (const char* k : {"policy", "value", "repval"}) {
    const double want = official.losses.at(k).item<double>();
    EXPECT_NEAR(heavy.losses.at(k).item<double>(), want, 1e-6 * (1.0 + std::abs(want))) << k;
  }
  EXPECT_NEAR(heavy.loss.item<double>() - official.loss.item<double>(), 2.7 * repval,
              1e-5 * (1.0 + std::abs(official.loss.item<double>())));
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

// The critic's output layer starts at zero, where its twohot loss is the same for every target:
// give it a spread so that a wrong target shows.
void SpreadCritic(ActorCritic& ac) {
  torch::NoGradGuard no_grad;
  for (auto& p : ac->named_parameters()) {
    if (p.key().find("value") != std::string::npos) p.value().normal_(0, 0.5);
  }
}

// n random imagined rollouts of the config's horizon, rewards in [0, 2).
ImaginedTrajectory RandomRollouts(const AgentConfig& c, int64_t n) {
  const int64_t h1 = c.imag_horizon + 1;
  ImaginedTrajectory traj;
  traj.feat = torch::randn({n, h1, c.feat_size()});
  traj.action = torch::randint(0, c.num_actions, {n, h1});
  traj.reward = torch::rand({n, h1}) * 2.0;
  traj.cont = torch::full({n, h1}, 0.997f);
  return traj;
}

// The rollouts `index` of `from`, each marked as started from posterior state index[i].
ImaginedTrajectory Rows(const ImaginedTrajectory& from, const torch::Tensor& index) {
  ImaginedTrajectory t;
  t.feat = from.feat.index_select(0, index);
  t.action = from.action.index_select(0, index);
  t.reward = from.reward.index_select(0, index);
  t.cont = from.cont.index_select(0, index);
  t.start_index = index;
  return t;
}

// A random replayed batch without episode ends.
ReplayContext RandomReplay(const AgentConfig& c, int64_t bs, int64_t t_len) {
  return ReplayContext{torch::randn({bs, t_len, c.feat_size()}), torch::rand({bs, t_len}),
                       torch::zeros({bs, t_len}, torch::kBool),
                       torch::zeros({bs, t_len}, torch::kBool)};
}

TEST(ActorCriticTest, LossesDoNotDependOnTheOrderOfTheRollouts) {
  // Rollouts from every state of a 2 x 4 batch, given once in order and once shuffled with their
  // start indices: the policy, value and replay value losses must agree (the replay value loss
  // finds each rollout's return by its start index).
  auto c = testing::DebugConfig();
  torch::manual_seed(0);
  ActorCritic ac(c);
  SpreadCritic(ac);
  const int64_t bs = 2, t_len = 4, n = bs * t_len;
  ImaginedTrajectory traj = RandomRollouts(c, n);
  ReplayContext replay = RandomReplay(c, bs, t_len);
  ReturnNormalizer norm_in_order;
  auto in_order = ac->Loss(traj, replay, norm_in_order);

  auto perm = torch::tensor({5, 2, 7, 0, 3, 6, 1, 4}, torch::kLong);
  ImaginedTrajectory shuffled = Rows(traj, perm);
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
  // Rollouts from every state of a 2 x 4 batch, rows 1 and 6 holding a random action for the
  // whole horizon. Against the same rollouts without them: the critic's losses are those of the 6
  // policy rows alone (the replay value loss bootstrapping from the critic at states 1 and 6);
  // the actor imitates the held actions only where they beat the critic's value.
  auto c = testing::DebugConfig();
  c.actent = 0;  // so that a row with no positive advantage adds exactly nothing to the policy loss
  torch::manual_seed(0);
  ActorCritic ac(c);
  SpreadCritic(ac);
  const int64_t bs = 2, t_len = 4, n = bs * t_len, h1 = c.imag_horizon + 1, h = h1 - 1;
  ImaginedTrajectory traj = RandomRollouts(c, n);
  ReplayContext replay = RandomReplay(c, bs, t_len);
  auto loss = [&](const ImaginedTrajectory& t) {
    ReturnNormalizer fresh;
    auto out = ac->Loss(t, replay, fresh);
    EXPECT_TRUE(out.finite);
    return out;
  };
  auto near = [](double got, double want) { EXPECT_NEAR(got, want, 1e-5 * (1 + std::abs(want))); };
  auto holds = [](std::vector<int64_t> steps) { return torch::tensor(steps, torch::kLong); };
  ImaginedTrajectory explored = traj;
  explored.held = holds({0, h, 0, 0, 0, 0, h, 0});
  auto out = loss(explored);
  auto policy_rows = torch::tensor({0, 2, 3, 4, 5, 7}, torch::kLong);
  auto critic_ref = loss(Rows(traj, policy_rows));
  auto all_rows = loss(traj);
  for (const char* k : {"value", "repval"}) {
    SCOPED_TRACE(k);
    near(out.losses[k].item<double>(), critic_ref.losses[k].item<double>());
  }
  EXPECT_GT(std::abs(all_rows.losses["value"].item<double>() - out.losses["value"].item<double>()),
            1e-5)
      << "the explored rows would have changed the critic's loss";
  EXPECT_NEAR(out.metrics["explored_rows"].item<double>(), 0.25, 1e-6);
  ASSERT_TRUE(out.metrics.count("explored_beat_value"));

  // Held actions that lose everything (every advantage negative) add nothing to the policy loss:
  // it is the policy rows' loss, averaged over all 8 rows. Held actions that win add to it.
  ImaginedTrajectory losing = explored;
  losing.reward = traj.reward.clone();
  losing.reward.index_fill_(0, torch::tensor({1, 6}, torch::kLong), -1000.0f);
  auto lost = loss(losing);
  EXPECT_EQ(lost.metrics["explored_beat_value"].item<double>(), 0.0);
  near(lost.losses["policy"].item<double>(),
       critic_ref.losses["policy"].item<double>() * 6.0 / 8.0);
  ImaginedTrajectory winning = explored;
  winning.reward = traj.reward.clone();
  winning.reward.index_fill_(0, torch::tensor({1, 6}, torch::kLong), 1000.0f);
  auto won = loss(winning);
  EXPECT_EQ(won.metrics["explored_beat_value"].item<double>(), 1.0);
  EXPECT_GT(std::abs(won.losses["policy"].item<double>() -
                     critic_ref.losses["policy"].item<double>() * 6.0 / 8.0),
            1e-3);

  // A row that held its action for 2 of the 4 steps is the policy's again after them: those
  // steps train the critic. With row 1 ending after step 1 (weight 0 from step 2 on), its last
  // two steps add nothing but count: the value loss is the full hold's times 24 / 26. A mask at
  // the wrong end would count steps 0 and 1, whose weight is not 0.
  ImaginedTrajectory ends = traj;
  ends.cont = traj.cont.clone();
  ends.cont[1].narrow(0, 2, h1 - 2).fill_(0.0f);
  ImaginedTrajectory full_hold = ends;
  full_hold.held = holds({0, h, 0, 0, 0, 0, h, 0});
  ImaginedTrajectory partly = ends;
  partly.held = holds({0, 2, 0, 0, 0, 0, h, 0});
  auto full = loss(full_hold);
  auto part = loss(partly);
  near(part.losses["value"].item<double>(),
       full.losses["value"].item<double>() * (6.0 * h) / (6.0 * h + 2.0));
  near(part.losses["repval"].item<double>(), full.losses["repval"].item<double>());

  // From a shuffled subset of the states (5, 2, 7, 0), the second explored: the critic's losses
  // are those of rows 5, 7 and 0 alone.
  auto subset = torch::tensor({5, 2, 7, 0}, torch::kLong);
  ImaginedTrajectory sub = Rows(traj, subset);
  sub.held = holds({0, h, 0, 0});
  auto sub_out = loss(sub);
  auto sub_want = loss(Rows(traj, torch::tensor({5, 7, 0}, torch::kLong)));
  for (const char* k : {"value", "repval"}) {
    SCOPED_TRACE(std::string("subset ") + k);
    near(sub_out.losses[k].item<double>(), sub_want.losses[k].item<double>());
  }

  // Every step of every row held: no imagined value loss, the replay value loss bootstraps from
  // the critic alone, and the return normaliser keeps its state.
  ImaginedTrajectory all_held = traj;
  all_held.held = torch::full({n}, h, torch::kLong);
  ReturnNormalizer untouched;
  const double scale_before = untouched.Scale().item<double>();
  auto none = ac->Loss(all_held, replay, untouched);
  ASSERT_TRUE(none.finite);
  EXPECT_EQ(none.losses["value"].item<double>(), 0.0);
  EXPECT_TRUE(std::isfinite(none.losses["repval"].item<double>()));
  EXPECT_TRUE(std::isfinite(none.losses["policy"].item<double>()));
  EXPECT_EQ(untouched.Scale().item<double>(), scale_before);
}

}  // namespace
}  // namespace dreamfleet::dreamer
