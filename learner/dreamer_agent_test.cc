// DreamerAgent: gradient routing (stop-gradients), NaN batches, checkpoint round trip and
// bit-for-bit resume.
#include "learner/dreamer_agent.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "dreamer/models/rssm.h"
#include "dreamer/test_util.h"

namespace dreamfleet::learner {
namespace {

using dreamer::testing::DebugConfig;
using dreamer::testing::Snapshot;

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

bool HasGrad(const torch::Tensor& p) {
  return p.grad().defined() && p.grad().abs().sum().item<double>() > 0;
}

double GradSum(torch::nn::Module& m) {
  double total = 0;
  for (auto& p : m.parameters()) {
    if (p.grad().defined()) total += p.grad().abs().sum().item<double>();
  }
  return total;
}

void ClearGrads(torch::nn::Module& m) {
  for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
}

TEST(DreamerAgentTest, TrainStepRunsAndReportsLosses) {
  auto c = DebugConfig(true, true, true);
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok()) << agent.status();
  auto m = (*agent)->Train(dreamer::RandomBatch(c, 3, 6, 1));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->skipped);
  for (const char* k :
       {"image", "vector", "rew", "con", "dyn", "rep", "policy", "value", "repval"}) {
    ASSERT_TRUE(m->losses.count(k)) << k;
    EXPECT_TRUE(std::isfinite(m->losses[k])) << k;
  }
  EXPECT_EQ((*agent)->updates(), 1);
}

TEST(DreamerAgentTest, ImaginingFromASubsetOfStatesTrainsActorAndCritic) {
  auto c = DebugConfig(true, true, false);
  c.imag_starts = 5;  // of 3 x 6 posterior states
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok()) << agent.status();
  auto before = Snapshot(*(*agent)->actor_critic());
  // Two updates: the critic's output layer starts at zero, so the layers below it get their first
  // gradient in the second.
  ASSERT_TRUE((*agent)->Train(dreamer::RandomBatch(c, 3, 6, 1)).ok());
  auto m = (*agent)->Train(dreamer::RandomBatch(c, 3, 6, 2));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->skipped);
  for (const char* k : {"policy", "value", "repval"}) {
    ASSERT_TRUE(m->losses.count(k)) << k;
    EXPECT_TRUE(std::isfinite(m->losses[k])) << k;
  }
  for (const auto& item : (*agent)->actor_critic()->named_parameters()) {
    if (item.key().find("slow") != std::string::npos) continue;  // the EMA copy, not trained
    EXPECT_FALSE(torch::equal(item.value(), before.at(item.key()))) << item.key() << " unchanged";
  }

  // The rows: 5 distinct posterior states, each starting from its own latent and continue flag.
  auto batch = dreamer::RandomBatch(c, 3, 6, 3);
  batch.is_terminal = torch::arange(18).reshape({3, 6}).remainder(3) == 2;
  auto wm = (*agent)->world_model()->Loss(batch, std::nullopt);
  auto traj = (*agent)->ImagineFrom(wm, batch);
  ASSERT_EQ(traj.feat.size(0), 5);
  ASSERT_TRUE(traj.start_index.defined());
  ASSERT_EQ(traj.start_index.numel(), 5);
  EXPECT_EQ(std::get<0>(torch::_unique(traj.start_index)).numel(), 5) << traj.start_index;
  EXPECT_GE(traj.start_index.min().item<int64_t>(), 0);
  EXPECT_LT(traj.start_index.max().item<int64_t>(), 18);
  auto posterior = dreamer::RssmImpl::Feat(wm.seq.deter.reshape({18, -1}),
                                           wm.seq.stoch.reshape({18, c.stoch, c.classes}));
  EXPECT_TRUE(torch::allclose(traj.feat.select(1, 0), posterior.index_select(0, traj.start_index)));
  auto want_cont =
      (~batch.is_terminal).to(torch::kFloat32).reshape({18}).index_select(0, traj.start_index) *
      (c.contdisc ? 1.0 - 1.0 / c.horizon : 1.0);
  EXPECT_TRUE(torch::allclose(traj.cont.select(1, 0), want_cont)) << traj.cont.select(1, 0);
}

TEST(DreamerAgentTest, ExploredImaginationHoldsARandomActionAndStillTrains) {
  auto c = DebugConfig(true, true, false);
  c.imag_explore = 0.5f;
  c.imag_starts = 12;  // with a subset of the 3 x 6 states too
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok()) << agent.status();
  double explored = 0;
  for (int i = 0; i < 4; ++i) {
    auto m = (*agent)->Train(dreamer::RandomBatch(c, 3, 6, 20 + i));
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_FALSE(m->skipped);
    for (const char* k : {"policy", "value", "repval"}) EXPECT_TRUE(std::isfinite(m->losses[k]));
    ASSERT_TRUE(m->metrics.count("explored_rows"));
    explored += m->metrics["explored_rows"];
  }
  // 4 updates x 12 rows, each explored with probability 0.5.
  EXPECT_GT(explored / 4, 0.15);
  EXPECT_LT(explored / 4, 0.85);

  // Every row explored: the first action is held for 1..4 steps, so the first two agree in
  // about 3/4 + 1/4 x 1/3 of the rows; the near-uniform policy alone agrees in about 1/3.
  auto agreeing = [&](float share) {
    auto cfg = DebugConfig(true, true, false);
    cfg.imag_explore = share;
    auto fresh = DreamerAgent::Create(cfg);
    EXPECT_TRUE(fresh.ok()) << fresh.status();
    auto batch = dreamer::RandomBatch(cfg, 3, 6, 30);
    int64_t same = 0, rows = 0;
    for (int i = 0; i < 10; ++i) {
      auto wm = (*fresh)->world_model()->Loss(batch, std::nullopt);
      auto traj = (*fresh)->ImagineFrom(wm, batch);
      same += (traj.action.select(1, 0) == traj.action.select(1, 1)).sum().item<int64_t>();
      rows += traj.action.size(0);
    }
    return static_cast<double>(same) / rows;
  };
  EXPECT_GT(agreeing(1.0f), 0.7);
  EXPECT_LT(agreeing(0.0f), 0.5);

  // traj.held says how long each row held its first action: 1..H steps, every one of them the
  // same action.
  {
    auto cfg = DebugConfig(true, true, false);
    cfg.imag_explore = 1.0f;
    auto fresh = DreamerAgent::Create(cfg);
    ASSERT_TRUE(fresh.ok()) << fresh.status();
    auto batch = dreamer::RandomBatch(cfg, 3, 6, 31);
    auto wm = (*fresh)->world_model()->Loss(batch, std::nullopt);
    auto traj = (*fresh)->ImagineFrom(wm, batch);
    ASSERT_TRUE(traj.held.defined());
    ASSERT_EQ(traj.held.scalar_type(), torch::kLong);
    ASSERT_EQ(traj.held.numel(), traj.action.size(0));
    EXPECT_GE(traj.held.min().item<int64_t>(), 1);
    EXPECT_LE(traj.held.max().item<int64_t>(), cfg.imag_horizon);
    for (int64_t i = 0; i < traj.action.size(0); ++i) {
      const int64_t k = traj.held[i].item<int64_t>();
      for (int64_t t = 1; t < k; ++t) {
        EXPECT_EQ(traj.action[i][t].item<int64_t>(), traj.action[i][0].item<int64_t>())
            << "row " << i << " step " << t << " of a " << k << "-step hold";
      }
    }
  }

  c.imag_explore = 1.5f;
  auto refused = DreamerAgent::Create(c);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("explore share 1.5"), std::string::npos)
      << refused.status();
}

TEST(DreamerAgentTest, DynamicsGradientTrainsTheActorOnly) {
  // Same seed, same batch: the imagined rollouts draw the same actions whether or not they keep
  // their graph, so in the first update the world model and the critic must get the same
  // gradients with the actor learning all through the dynamics (rho 1, and no entropy bonus, so
  // nothing else moves it) or by REINFORCE (rho 0); the actor not.
  auto c = DebugConfig(true, true, false);
  auto reinforce = DreamerAgent::Create(c);
  c.actor_dynamics = 1.0f;
  c.actent = 0.0f;
  auto dynamics = DreamerAgent::Create(c);
  ASSERT_TRUE(reinforce.ok()) << reinforce.status();
  ASSERT_TRUE(dynamics.ok()) << dynamics.status();
  // The critic's output layer starts at zero (so does the reward head's), and a constant return
  // has no gradient: give both agents the same spread-out critic.
  auto spread_critic = [](DreamerAgent& agent) {
    torch::NoGradGuard no_grad;
    torch::manual_seed(7);
    for (auto& p : agent.actor_critic()->value()->parameters()) p.normal_(0, 0.3);
  };
  spread_critic(**reinforce);
  spread_critic(**dynamics);
  auto batch = dreamer::RandomBatch(c, 3, 6, 40);
  auto actor_before = Snapshot(*(*dynamics)->actor_critic()->actor());
  auto mr = (*reinforce)->Train(batch);
  auto md = (*dynamics)->Train(batch);
  ASSERT_TRUE(mr.ok()) << mr.status();
  ASSERT_TRUE(md.ok()) << md.status();
  ASSERT_FALSE(md->skipped) << md->skip_reason;
  EXPECT_FALSE(mr->metrics.count("dynamics_grad_norm"));
  ASSERT_TRUE(md->metrics.count("dynamics_grad_norm"));
  EXPECT_GT(md->metrics["dynamics_grad_norm"], 0);
  EXPECT_TRUE(std::isfinite(md->metrics["dynamics_grad_norm"]));
  EXPECT_DOUBLE_EQ(md->losses["value"], mr->losses["value"]);
  // The REINFORCE term is exactly zero at rho 1 without the entropy bonus: the actor's whole
  // gradient (left in .grad after the step) is the dynamics one, and it moved the actor.
  EXPECT_EQ(md->metrics["reinforce_grad_norm"], 0.0);
  double actor_sq = 0;
  for (auto& p : (*dynamics)->actor_critic()->actor()->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    actor_sq += p.grad().pow(2).sum().item<double>();
  }
  EXPECT_NEAR(std::sqrt(actor_sq), md->metrics["dynamics_grad_norm"],
              1e-5 * md->metrics["dynamics_grad_norm"]);
  for (const auto& item : (*dynamics)->actor_critic()->actor()->named_parameters()) {
    EXPECT_FALSE(torch::equal(item.value(), actor_before.at(item.key()))) << item.key();
  }

  // The gradients the world model and the critic stepped with (LaProp's first step moves every
  // parameter by lr whatever the gradient's size, so the parameters would hide a leak).
  auto same_grads = [](torch::nn::Module& a, torch::nn::Module& b, const std::string& what) {
    auto pa = a.named_parameters(), pb = b.named_parameters();
    for (const auto& item : pa) {
      const torch::Tensor& ga = item.value().grad();
      const torch::Tensor& gb = pb[item.key()].grad();
      ASSERT_EQ(ga.defined(), gb.defined()) << what << " " << item.key();
      if (!ga.defined()) continue;
      EXPECT_TRUE(torch::allclose(ga, gb, 1e-5, 1e-8))
          << what << " " << item.key() << " learned from the dynamics gradient";
    }
  };
  same_grads(*(*reinforce)->world_model(), *(*dynamics)->world_model(), "world model");
  same_grads(*(*reinforce)->actor_critic()->value(), *(*dynamics)->actor_critic()->value(),
             "critic");

  // The rollout keeps its graph only when the dynamics gradient is on; the actions it stores are
  // indices either way, and a half share trains beside explored and subset imagination.
  auto wm = (*dynamics)->world_model()->Loss(batch, std::nullopt);
  auto traj = (*dynamics)->ImagineFrom(wm, batch);
  EXPECT_TRUE(traj.feat.requires_grad());
  EXPECT_TRUE(traj.reward.requires_grad());
  EXPECT_EQ(traj.action.scalar_type(), torch::kLong);
  auto plain_wm = (*reinforce)->world_model()->Loss(batch, std::nullopt);
  EXPECT_FALSE((*reinforce)->ImagineFrom(plain_wm, batch).feat.requires_grad());
  c.actor_dynamics = 0.5f;
  c.actent = 3e-4f;
  c.imag_explore = 0.5f;
  c.imag_starts = 12;
  auto mixed = DreamerAgent::Create(c);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  spread_critic(**mixed);
  for (int i = 0; i < 2; ++i) {
    auto m = (*mixed)->Train(dreamer::RandomBatch(c, 3, 6, 41 + i));
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_FALSE(m->skipped) << m->skip_reason;
    for (const char* k : {"policy", "value", "repval"}) EXPECT_TRUE(std::isfinite(m->losses[k]));
    EXPECT_GT(m->metrics["dynamics_grad_norm"], 0);
  }

  c.actor_dynamics = 1.5f;
  auto refused = DreamerAgent::Create(c);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("dynamics gradient share 1.5"),
            std::string::npos)
      << refused.status();
}

TEST(DreamerAgentTest, MoreImaginationStartsThanPosteriorStatesIsRefused) {
  auto c = DebugConfig(true, true, false);
  c.imag_starts = 3 * 6 + 1;
  auto agent = DreamerAgent::Create(c);
  ASSERT_FALSE(agent.ok());
  EXPECT_NE(std::string(agent.status().message()).find("imagination starts 19"), std::string::npos)
      << agent.status();
  c.imag_starts = 3 * 6;  // all of them: allowed
  EXPECT_TRUE(DreamerAgent::Create(c).ok());
}

// Largest absolute change of any parameter of `module` since `before`.
double MaxChange(const torch::nn::Module& module,
                 const std::map<std::string, torch::Tensor>& before) {
  double change = 0;
  for (const auto& item : module.named_parameters()) {
    change = std::max(change, (item.value() - before.at(item.key())).abs().max().item<double>());
  }
  return change;
}

TEST(DreamerAgentTest, ActorCriticLearningRateAppliesOnlyToActorAndCritic) {
  // LaProp steps are ~lr per parameter whatever the gradient's size, so the largest change after
  // one update shows which rate each part got.
  auto c = DebugConfig(true, true, true);
  c.lr = 1e-3f;
  c.ac_lr = 1e-6f;
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok()) << agent.status();
  auto wm_before = Snapshot(*(*agent)->world_model());
  auto ac_before = Snapshot(*(*agent)->actor_critic());
  ASSERT_TRUE((*agent)->Train(dreamer::RandomBatch(c, 3, 6, 1)).ok());
  const double wm_change = MaxChange(*(*agent)->world_model(), wm_before);
  const double ac_change = MaxChange(*(*agent)->actor_critic(), ac_before);
  EXPECT_GT(wm_change, 1e-4);
  EXPECT_GT(ac_change, 0.0);
  EXPECT_LT(ac_change, 1e-5);

  c.ac_lr = 0;  // 0 = the world model's rate (the official single rate)
  agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok()) << agent.status();
  ac_before = Snapshot(*(*agent)->actor_critic());
  ASSERT_TRUE((*agent)->Train(dreamer::RandomBatch(c, 3, 6, 1)).ok());
  EXPECT_GT(MaxChange(*(*agent)->actor_critic(), ac_before), 1e-4);
}

TEST(DreamerAgentTest, MalformedBatchIsAnErrorNamingTheField) {
  auto c = DebugConfig();
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok());
  auto batch = dreamer::RandomBatch(c, 2, 4, 1);
  batch.image = batch.image.narrow(2, 0, 8);
  auto m = (*agent)->Train(batch);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("image"), std::string::npos) << m.status();
}

TEST(DreamerAgentTest, GradientsFollowTheStopGradients) {
  auto c = DebugConfig(true, true);
  auto agent_or = DreamerAgent::Create(c);
  ASSERT_TRUE(agent_or.ok());
  auto& agent = **agent_or;
  // One real update so that zero-initialised output layers (reward, value) pass gradients on.
  auto batch = dreamer::RandomBatch(c, 3, 6, 2);
  ASSERT_TRUE(agent.Train(batch).ok());

  auto wm = agent.world_model();
  auto ac = agent.actor_critic();
  auto run = [&](const std::string& which) {
    ClearGrads(*wm);
    ClearGrads(*ac);
    auto w = wm->Loss(batch, std::nullopt);
    if (which == "world_model") {
      w.loss.backward();
      return;
    }
    auto traj = agent.ImagineFrom(w, batch);
    dreamer::ReturnNormalizer retnorm;
    auto out = ac->Loss(traj, {w.feat, batch.reward, batch.is_last, batch.is_terminal}, retnorm);
    out.losses[which].backward();
  };

  run("world_model");
  for (const auto& p : wm->named_parameters()) EXPECT_TRUE(HasGrad(p.value())) << p.key();
  EXPECT_EQ(GradSum(*ac), 0.0);

  run("policy");
  EXPECT_EQ(GradSum(*wm), 0.0) << "the actor loss must not train the world model";
  EXPECT_EQ(GradSum(*ac->value()), 0.0);
  for (const auto& p : ac->actor()->named_parameters()) EXPECT_TRUE(HasGrad(p.value())) << p.key();

  run("value");
  EXPECT_EQ(GradSum(*wm), 0.0) << "the imagined critic loss must not train the world model";
  EXPECT_EQ(GradSum(*ac->actor()), 0.0);
  for (const auto& p : ac->value()->named_parameters()) EXPECT_TRUE(HasGrad(p.value())) << p.key();

  run("repval");  // official repval_grad: the replay value loss reaches the world model
  EXPECT_GT(GradSum(*wm->rssm()), 0.0);
  EXPECT_GT(GradSum(*ac->value()), 0.0);
  EXPECT_EQ(GradSum(*ac->actor()), 0.0);

  // The slow critic is never trained by gradients.
  for (const auto& p : ac->slow_value()->parameters()) {
    EXPECT_FALSE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());
  }
}

// Every weight of the world model, actor-critic and (if any) disagreement ensemble is equal bit
// for bit.
void ExpectSameWeights(DreamerAgent& a, DreamerAgent& b) {
  std::vector<std::pair<torch::nn::Module*, torch::nn::Module*>> modules{
      {a.world_model().get(), b.world_model().get()},
      {a.actor_critic().get(), b.actor_critic().get()}};
  if (a.disagreement()) modules.emplace_back(a.disagreement().get(), b.disagreement().get());
  for (auto [ma, mb] : modules) {
    ASSERT_NE(mb, nullptr);
    auto sa = Snapshot(*ma);
    auto sb = Snapshot(*mb);
    ASSERT_EQ(sa.size(), sb.size());
    for (const auto& [k, v] : sa) {
      EXPECT_TRUE(torch::equal(v, sb[k]))
          << k << ": largest difference " << (v - sb[k]).abs().max().item<double>();
    }
  }
}

// overlap_wm runs the world model's backward pass beside the actor-critic: the same update as
// the sequential one, bit for bit (each backward pass adds its whole gradient to a parameter once,
// and a sum of two is the same in either order).
void ExpectOverlapMatchesSequential(dreamer::AgentConfig c) {
  c.overlap_wm = false;
  auto sequential = DreamerAgent::Create(c);
  c.overlap_wm = true;
  auto overlapped = DreamerAgent::Create(c);
  ASSERT_TRUE(sequential.ok() && overlapped.ok());
  for (uint64_t seed : {20, 21, 22}) {
    auto a = (*sequential)->Train(dreamer::RandomBatch(c, 3, 6, seed));
    auto b = (*overlapped)->Train(dreamer::RandomBatch(c, 3, 6, seed));
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
    ASSERT_FALSE(a->skipped || b->skipped);
    EXPECT_FALSE(a->world_model_overlapped);
    EXPECT_TRUE(b->world_model_overlapped) << "the backward pass ran on the calling thread";
    EXPECT_GT(b->world_model_seconds, 0);
    for (const auto& [k, v] : a->losses) {
      ASSERT_TRUE(b->losses.count(k)) << k;
      EXPECT_EQ(b->losses[k], v) << k << " at update " << seed - 19;
    }
  }
  ExpectSameWeights(**sequential, **overlapped);
}

TEST(DreamerAgentTest, OverlappedWorldModelBackwardIsTheSameUpdate) {
  ExpectOverlapMatchesSequential(DebugConfig(true, true, true));
}

TEST(DreamerAgentTest, OverlappedWorldModelBackwardWithoutReplayValueGradient) {
  auto c = DebugConfig(true, true);
  c.repval_grad = false;  // the two backward passes share no graph
  ExpectOverlapMatchesSequential(c);
}

TEST(DreamerAgentTest, OverlappedWorldModelBackwardWithTheDisagreementEnsemble) {
  auto c = DebugConfig(false, true);
  c.disag_scale = 0.5f;
  c.imag_starts = 7;
  ExpectOverlapMatchesSequential(c);
}

TEST(DreamerAgentTest, SlowCriticFollowsTheCriticByEma) {
  auto c = DebugConfig();
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok());
  auto ac = (*agent)->actor_critic();
  auto before_slow = Snapshot(*ac->slow_value());
  ASSERT_TRUE((*agent)->Train(dreamer::RandomBatch(c, 3, 6, 3)).ok());
  auto fast = Snapshot(*ac->value());
  auto slow = Snapshot(*ac->slow_value());
  for (const auto& [k, v] : slow) {
    auto expect = before_slow[k] * (1 - c.slow_rate) + fast[k] * c.slow_rate;
    EXPECT_TRUE(torch::allclose(v, expect, 1e-5, 1e-7)) << k;
  }
}

TEST(DreamerAgentTest, NonFiniteBatchIsSkippedAndCounted) {
  auto c = DebugConfig();
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok());
  auto before_wm = Snapshot(*(*agent)->world_model());
  auto before_ac = Snapshot(*(*agent)->actor_critic());
  auto batch = dreamer::RandomBatch(c, 3, 6, 4);
  batch.reward[1][2] = std::numeric_limits<float>::quiet_NaN();
  auto m = (*agent)->Train(batch);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->skipped);
  EXPECT_NE(m->skip_reason.find("non-finite"), std::string::npos) << m->skip_reason;
  EXPECT_EQ((*agent)->skipped_updates(), 1);
  EXPECT_EQ((*agent)->updates(), 0);
  auto vec_batch = dreamer::RandomBatch(c, 3, 6, 5);
  vec_batch.vector[0][0][0] = std::numeric_limits<float>::infinity();
  ASSERT_TRUE((*agent)->Train(vec_batch).ok());
  EXPECT_EQ((*agent)->skipped_updates(), 2);
  for (const auto& [k, v] : Snapshot(*(*agent)->world_model())) {
    EXPECT_TRUE(torch::equal(v, before_wm[k])) << k;
  }
  for (const auto& [k, v] : Snapshot(*(*agent)->actor_critic())) {
    EXPECT_TRUE(torch::equal(v, before_ac[k])) << k;
  }
  // A good batch afterwards trains normally.
  auto ok = (*agent)->Train(dreamer::RandomBatch(c, 3, 6, 6));
  ASSERT_TRUE(ok.ok());
  EXPECT_FALSE(ok->skipped);
  EXPECT_EQ((*agent)->updates(), 1);
}

TEST(DreamerAgentTest, DisagreementLearnsAndRewardsWhatTheModelDoesNotKnow) {
  auto c = DebugConfig(false, true);
  c.disag_scale = 1.0f;
  c.disag_models = 4;
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_TRUE((*agent)->disagreement());
  auto before = Snapshot(*(*agent)->disagreement());
  auto batch = dreamer::RandomBatch(c, 3, 6, 40);
  std::vector<double> losses;
  for (int i = 0; i < 30; ++i) {
    auto m = (*agent)->Train(batch);
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_FALSE(m->skipped) << m->skip_reason;
    ASSERT_TRUE(m->losses.count("disag"));
    ASSERT_TRUE(m->metrics.count("disag"));
    EXPECT_GT(m->metrics["disag"], 0.0);
    EXPECT_TRUE(std::isfinite(m->metrics["disag_replay"]));
    for (const char* k : {"policy", "value", "repval"}) EXPECT_TRUE(std::isfinite(m->losses[k]));
    losses.push_back(m->losses["disag"]);
  }
  // The ensemble learns the replayed transitions (the world model moves under it, so not to 0).
  EXPECT_LT(losses.back(), 0.7 * losses.front()) << losses.front() << " -> " << losses.back();
  for (const auto& item : (*agent)->disagreement()->named_parameters()) {
    EXPECT_FALSE(torch::equal(item.value(), before.at(item.key()))) << item.key() << " unchanged";
  }

  // The intrinsic reward reaches the imagined rewards: with it, each imagined step's reward is the
  // reward head's plus scale x (d - mean d) / mean d, zero on average over the update's steps.
  batch.is_first.index_put_({0, 2}, true);
  batch.is_first.index_put_({0, 3}, false);
  auto wm = (*agent)->world_model()->Loss(batch, std::nullopt);
  auto traj = (*agent)->ImagineFrom(wm, batch);
  const auto task_reward = traj.reward.clone();
  torch::Tensor replay_reward;
  TrainMetrics m;
  auto fit = (*agent)->disagreement()->Fit(wm.feat, batch.action, wm.seq.stoch, batch.is_first);
  (*agent)->AddIntrinsicReward(fit, batch, traj, replay_reward, m);
  auto intrinsic = traj.reward - task_reward;  // [N, H+1]
  EXPECT_TRUE(torch::equal(intrinsic.select(1, 0), torch::zeros_like(intrinsic.select(1, 0))));
  auto rest = intrinsic.narrow(1, 1, intrinsic.size(1) - 1);
  EXPECT_NEAR(rest.mean().item<double>(), 0.0, 1e-4);
  EXPECT_GT(rest.std().item<double>(), 1e-3);  // some transitions are newer than others
  // Entering state k+1 pays for the transition out of state k under the action taken in k.
  auto ensemble = (*agent)->disagreement();
  torch::NoGradGuard no_grad;
  const int64_t h = rest.size(1);
  auto d = ensemble->Disagree(traj.feat.narrow(1, 0, h), traj.action.narrow(1, 0, h));
  EXPECT_TRUE(
      torch::allclose(rest, dreamer::IntrinsicReward(d, d.mean(), c.disag_scale), 1e-4, 1e-5));
  EXPECT_NEAR(m.metrics["disag"], d.mean().item<double>(), 1e-5);
  auto replay_intrinsic = replay_reward - batch.reward;  // [B, T]
  EXPECT_EQ(replay_intrinsic.select(1, 0).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(replay_intrinsic.index({0, 2}).item<double>(), 0.0);  // into an episode's start
  // Step 3 of sequence 0 pays for step 2's transition (an episode's first step, but the
  // transition out of it is a real one).
  auto rd = ensemble->Disagree(wm.feat.narrow(1, 0, 5), batch.action.narrow(1, 0, 5));  // [3, 5]
  auto keep = (~batch.is_first.narrow(1, 1, 5)).to(torch::kFloat32);
  auto rmean = (rd * keep).sum() / keep.sum();
  EXPECT_NEAR(replay_intrinsic.index({0, 3}).item<double>(),
              dreamer::IntrinsicReward(rd.index({0, 2}), rmean, c.disag_scale).item<double>(),
              1e-5);
  EXPECT_NEAR((replay_intrinsic.narrow(1, 1, 5) * keep).sum().item<double>(), 0.0, 1e-4);
  EXPECT_GT(replay_intrinsic.abs().sum().item<double>(), 0.0);

  auto off = c;
  off.disag_scale = 0;
  EXPECT_FALSE((*DreamerAgent::Create(off))->disagreement());
}

TEST(DreamerAgentTest, DisagreementChangesTheActorCriticButNeverTheWorldModel) {
  auto c = DebugConfig(false, true);
  c.repval_grad = false;  // otherwise the replay value loss's targets reach the world model
  auto on = c;
  on.disag_scale = 1.0f;
  on.disag_models = 3;
  auto plain = DreamerAgent::Create(c);
  auto exploring = DreamerAgent::Create(on);
  ASSERT_TRUE(plain.ok() && exploring.ok());
  // Two updates: the critic's output layer starts at zero.
  for (uint64_t seed : {50, 51}) {
    ASSERT_TRUE((*plain)->Train(dreamer::RandomBatch(c, 3, 6, seed)).ok());
    ASSERT_TRUE((*exploring)->Train(dreamer::RandomBatch(c, 3, 6, seed)).ok());
  }
  auto wa = Snapshot(*(*plain)->world_model()), wb = Snapshot(*(*exploring)->world_model());
  for (const auto& [k, v] : wa) EXPECT_TRUE(torch::equal(v, wb.at(k))) << k;
  auto aa = Snapshot(*(*plain)->actor_critic()), ab = Snapshot(*(*exploring)->actor_critic());
  bool differs = false;
  for (const auto& [k, v] : aa) differs = differs || !torch::equal(v, ab.at(k));
  EXPECT_TRUE(differs) << "the intrinsic reward never reached the actor-critic";
}

TEST(DreamerAgentTest, DisagreementKeepsTheDynamicsGradientThroughTheRewardHead) {
  auto c = DebugConfig(false, true);
  c.actor_dynamics = 0.5f;
  c.disag_scale = 1.0f;
  c.disag_models = 3;
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok()) << agent.status();
  auto batch = dreamer::RandomBatch(c, 3, 6, 60);
  auto wm = (*agent)->world_model()->Loss(batch, std::nullopt);
  auto traj = (*agent)->ImagineFrom(wm, batch);
  ASSERT_TRUE(traj.reward.requires_grad());
  torch::Tensor replay_reward;
  TrainMetrics m;
  auto fit = (*agent)->disagreement()->Fit(wm.feat, batch.action, wm.seq.stoch, batch.is_first);
  (*agent)->AddIntrinsicReward(fit, batch, traj, replay_reward, m);
  EXPECT_TRUE(traj.reward.requires_grad());
  auto trained = (*agent)->Train(batch);
  ASSERT_TRUE(trained.ok()) << trained.status();
  EXPECT_FALSE(trained->skipped);
  EXPECT_GT(trained->metrics["dynamics_grad_norm"], 0);
}

// Saves after two updates, restores into a fresh agent of another seed, and checks that the next
// update matches the original's bit for bit.
void ExpectResumeIsBitForBit(const dreamer::AgentConfig& c) {
  const auto dir = TempDir("dreamfleet_agent_ckpt");
  auto a = DreamerAgent::Create(c);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Train(dreamer::RandomBatch(c, 3, 6, 10)).ok());
  ASSERT_TRUE((*a)->Train(dreamer::RandomBatch(c, 3, 6, 11)).ok());
  (*a)->counters()["env_steps"] = 1234;
  ASSERT_TRUE((*a)->Save(dir).ok());
  ASSERT_TRUE((*a)->Train(dreamer::RandomBatch(c, 3, 6, 12)).ok());

  // A fresh agent with a different seed: every bit of state must come from the checkpoint.
  auto c2 = c;
  c2.seed = 99;
  auto b = DreamerAgent::Create(c2);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->Restore(dir).ok());
  EXPECT_EQ((*b)->updates(), 2);
  EXPECT_EQ((*b)->counters()["env_steps"], 1234);
  ASSERT_TRUE((*b)->Train(dreamer::RandomBatch(c, 3, 6, 12)).ok());

  ExpectSameWeights(**a, **b);
  std::filesystem::remove_all(dir);
}

TEST(DreamerAgentTest, CheckpointResumeReproducesTheNextUpdateBitForBit) {
  ExpectResumeIsBitForBit(DebugConfig(true, true));
}

TEST(DreamerAgentTest, CheckpointResumeWithTheOverlappedBackwardIsBitForBit) {
  auto c = DebugConfig(true, true);
  c.overlap_wm = true;
  ExpectResumeIsBitForBit(c);
}

TEST(DreamerAgentTest, CheckpointResumeWithTheDisagreementEnsembleIsBitForBit) {
  auto c = DebugConfig(true, true);
  c.disag_scale = 0.5f;
  c.disag_models = 3;
  ExpectResumeIsBitForBit(c);
}

// Saves a fresh agent of `saved` to a temporary directory and restores it into a fresh agent of
// `restoring`: the status of that Restore.
absl::Status RestoreAcross(const dreamer::AgentConfig& saved, const dreamer::AgentConfig& restoring,
                           const std::string& name) {
  const auto dir = TempDir(name);
  auto a = DreamerAgent::Create(saved);
  EXPECT_TRUE(a.ok()) << a.status();
  if (!a.ok()) return a.status();
  EXPECT_TRUE((*a)->Save(dir).ok());
  auto b = DreamerAgent::Create(restoring);
  EXPECT_TRUE(b.ok()) << b.status();
  absl::Status status = b.ok() ? (*b)->Restore(dir) : b.status();
  std::filesystem::remove_all(dir);
  return status;
}

TEST(DreamerAgentTest, RestoreRefusesACheckpointOfTheOtherTwoHotSpace) {
  auto c = DebugConfig();
  auto c2 = c;
  c2.twohot = c.twohot == "raw" ? "symlog" : "raw";
  absl::Status status = RestoreAcross(c, c2, "dreamfleet_agent_twohot");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("learner.twohot"), std::string::npos) << status;
  EXPECT_TRUE(RestoreAcross(c, c, "dreamfleet_agent_twohot_same").ok());
}

TEST(DreamerAgentTest, RestoreRefusesACheckpointOfAnotherWidthOrLatentNamingTheKey) {
  auto c = DebugConfig();
  auto wide = c;
  wide.units = c.units * 2;
  auto wide_hidden = c;
  wide_hidden.hidden = c.hidden * 2;
  auto more_latents = c;
  more_latents.stoch = c.stoch * 2;
  auto more_classes = c;
  more_classes.classes = c.classes * 4;
  // The same stoch x classes, so every weight has the same shape: only the sizes tell.
  auto regrouped = c;
  regrouped.stoch = c.stoch * 2;
  regrouped.classes = c.classes / 2;
  for (const auto& [other, key] :
       {std::pair{wide, "learner.units"}, std::pair{wide_hidden, "learner.hidden"},
        std::pair{more_latents, "learner.stoch"}, std::pair{more_classes, "learner.classes"},
        std::pair{regrouped, "learner.stoch"}}) {
    for (const auto& [saved, restoring] : {std::pair{c, other}, std::pair{other, c}}) {
      absl::Status status = RestoreAcross(saved, restoring, "dreamfleet_agent_width");
      EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << key << ": " << status;
      EXPECT_NE(status.message().find(key), std::string::npos) << status;
    }
    EXPECT_TRUE(RestoreAcross(other, other, "dreamfleet_agent_width_same").ok()) << key;
  }
}

TEST(DreamerAgentTest, RestoreRefusesACheckpointOfTheOtherVectorEncoder) {
  auto c = DebugConfig();
  c.vector_size = 3 * 3 * 2;  // a 3x3 grid of 2-channel cells, which either encoder reads
  c.vector_grid_channels = 2;
  auto c2 = c;
  c2.vector_encoder = c.vector_encoder == "grid" ? "mlp" : "grid";
  absl::Status status = RestoreAcross(c, c2, "dreamfleet_agent_vector_encoder");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("learner.vector_encoder"), std::string::npos) << status;
  // The same, both ways, for the decoder and for its loss (the same decoder reads logits under
  // one loss and symlog values under the other).
  auto grid = c;
  grid.vector_decoder = "grid";
  auto binary = c;
  binary.vector_loss = "binary";
  for (const auto& [other, key] :
       {std::pair{grid, "learner.vector_decoder"}, std::pair{binary, "learner.vector_loss"}}) {
    for (const auto& [saved, restoring] : {std::pair{c, other}, std::pair{other, c}}) {
      status = RestoreAcross(saved, restoring, "dreamfleet_agent_vector_setting");
      EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << key << ": " << status;
      EXPECT_NE(status.message().find(key), std::string::npos) << status;
    }
    EXPECT_TRUE(RestoreAcross(other, other, "dreamfleet_agent_vector_setting_same").ok()) << key;
  }
}

TEST(DreamerAgentTest, RestoreRefusesACheckpointOfAnotherDisagreementEnsemble) {
  auto c = DebugConfig(false, true);
  auto on = c;
  on.disag_scale = 0.1f;
  on.disag_models = 3;
  for (const auto& [saved, restoring] :
       {std::pair{c, on}, std::pair{on, c}, std::pair{on, [&] {
                                                        auto more = on;
                                                        more.disag_models = 4;
                                                        return more;
                                                      }()}}) {
    absl::Status status = RestoreAcross(saved, restoring, "dreamfleet_agent_disag");
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    EXPECT_NE(status.message().find("learner.disagreement_scale"), std::string::npos) << status;
  }
  // Another weight with the same ensemble resumes (the scale is not part of the weights).
  auto weaker = on;
  weaker.disag_scale = 0.01f;
  EXPECT_TRUE(RestoreAcross(on, weaker, "dreamfleet_agent_disag_scale").ok());
}

TEST(DreamerAgentTest, RestoreFromEmptyDirIsNotFound) {
  auto c = DebugConfig();
  auto a = DreamerAgent::Create(c);
  ASSERT_TRUE(a.ok());
  const auto dir = TempDir("dreamfleet_agent_empty");
  std::filesystem::create_directories(dir);
  EXPECT_EQ((*a)->Restore(dir).code(), absl::StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dreamfleet::learner
