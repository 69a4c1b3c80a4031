// LocalTrainer on a real gridworld with the debug-sized model: it trains, checkpoints and resumes.
#include "learner/local_trainer.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "envs/gridworld.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "learner/foresight.h"
#include "learner/openloop.h"
#include "learner/play.h"
#include "learner/replay_log.h"
#include "tests/test_process.h"

namespace dreamfleet::learner {
namespace {

LocalTrainerOptions SmallRun() {
  LocalTrainerOptions o;
  o.env = "grid_empty_5x5";
  o.view = "symbolic";  // vector observations: no CNN, fast
  o.preset = "debug";
  o.envs = 2;
  o.batch = 2;
  o.length = 8;
  o.train_ratio = 8;  // one 2 x 8 update per tick once 1024 steps are in replay
  o.steps = 1200;
  o.threads = 1;
  o.warmup = 10;
  return o;
}

// The embedded default config shrunk to a debug-sized run, with `extra` overrides on top.
services::Config SmallConfig(const std::vector<std::string>& extra) {
  absl::StatusOr<services::Config> config =
      services::ParseConfig(services::DefaultConfigYaml(), "default");
  EXPECT_TRUE(config.ok()) << config.status();
  std::vector<std::string> assignments = {"learner.preset=debug",        "learner.batch_size=2",
                                          "learner.batch_length=8",      "replay.sequence_length=8",
                                          "replay.samples_per_insert=8", "actor.count=1",
                                          "actor.envs_per_actor=2",      "learner.threads=1"};
  assignments.insert(assignments.end(), extra.begin(), extra.end());
  for (const std::string& assignment : assignments) {
    EXPECT_TRUE(services::ApplyOverride(assignment, &*config).ok()) << assignment;
  }
  return *config;
}

absl::Status RunToEnd(LocalTrainer& trainer) {
  while (!trainer.done()) {
    if (absl::Status status = trainer.Tick(); !status.ok()) return status;
  }
  return absl::OkStatus();
}

TEST(LocalTrainerTest, StepsTheEnvsAndSpendsTheTrainRatioOnUpdates) {
  absl::StatusOr<std::unique_ptr<LocalTrainer>> trainer = LocalTrainer::Create(SmallRun());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ASSERT_TRUE(RunToEnd(**trainer).ok());
  const LocalProgress p = (*trainer)->Progress();
  EXPECT_EQ(p.env_steps, 1200);
  // Training starts once 1024 steps are stored (512 ticks), then 16 replayed steps per tick buy
  // one update of 2 x 8: 600 - 512 = 88 ticks, give or take the tick that crosses the fill.
  EXPECT_GE(p.updates + p.skipped_updates, 85);
  EXPECT_LE(p.updates + p.skipped_updates, 90);
  EXPECT_GT(p.episodes, 0);  // a random policy on Empty-5x5 ends episodes (100-step limit)
  EXPECT_TRUE(p.losses.count("dyn")) << "no update reported its losses";
  EXPECT_FALSE((*trainer)->reached_success());
  EXPECT_EQ(p.replay_log_seconds, 0);  // no replay log
}

TEST(LocalTrainerTest, EvaluatesOnEnvsOfItsOwnWithoutChangingTraining) {
  LocalTrainerOptions o = SmallRun();
  absl::StatusOr<std::unique_ptr<LocalTrainer>> plain = LocalTrainer::Create(o);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(absl::IsFailedPrecondition((*plain)->Evaluate().status()));
  ASSERT_TRUE(RunToEnd(**plain).ok());
  EXPECT_EQ((*plain)->Progress().eval.env_steps, -1);
  EXPECT_TRUE(CurveRowOf((*plain)->Progress()).eval.empty());

  o.eval_every = 500;
  o.eval_episodes = 3;
  absl::StatusOr<std::unique_ptr<LocalTrainer>> evaluated = LocalTrainer::Create(o);
  ASSERT_TRUE(evaluated.ok()) << evaluated.status();
  std::vector<int64_t> eval_steps;
  while (!(*evaluated)->done()) {
    ASSERT_TRUE((*evaluated)->Tick().ok());
    const EvalResult& eval = (*evaluated)->Progress().eval;
    if (eval.env_steps >= 0 && (eval_steps.empty() || eval_steps.back() != eval.env_steps)) {
      eval_steps.push_back(eval.env_steps);
    }
  }
  // Due at 500 and 1000: the first tick at or past each (2 envs: even steps).
  EXPECT_EQ(eval_steps, (std::vector<int64_t>{500, 1000}));
  const LocalProgress p = (*evaluated)->Progress();
  EXPECT_EQ(p.eval.episodes, 3);
  // Empty-5x5 pays at most 1 per episode; the first episodes of 3 envs, each mode.
  for (double r : {p.eval.greedy_return, p.eval.sampled_return}) {
    EXPECT_GE(r, 0);
    EXPECT_LE(r, 1);
  }
  for (double s : {p.eval.greedy_success, p.eval.sampled_success}) {
    EXPECT_TRUE(s == 0 || s == 1.0 / 3 || s == 2.0 / 3 || s == 1) << s;
  }
  // Training saw exactly what it saw without evaluation: evaluation has its own envs and RNG.
  const LocalProgress q = (*plain)->Progress();
  EXPECT_EQ(p.episodes, q.episodes);
  EXPECT_EQ(p.updates, q.updates);
  EXPECT_EQ(p.losses, q.losses);
  const services::CurveRow row = CurveRowOf(p);
  EXPECT_EQ(row.eval.at("env_steps"), 1000);
  EXPECT_EQ(row.eval.at("greedy_return"), p.eval.greedy_return);

  // The best greedy evaluation's agent, kept beside the run: a checkpoint that restores.
  dreamfleet::testing::ScopedTempDir temp("local_trainer_best_");
  o.best_dir = temp.path() + "/best";
  o.eval_max_steps = 10000;
  absl::StatusOr<std::unique_ptr<LocalTrainer>> best = LocalTrainer::Create(o);
  ASSERT_TRUE(best.ok()) << best.status();
  ASSERT_TRUE(RunToEnd(**best).ok());
  const double best_return = (*best)->best_eval_return();
  EXPECT_GE(best_return, (*best)->Progress().eval.greedy_return);
  std::ifstream score(o.best_dir + "/score.txt");
  double saved = -1;
  int64_t at = -1;
  ASSERT_TRUE(score >> saved >> at) << "no score.txt in " << o.best_dir;
  EXPECT_DOUBLE_EQ(saved, best_return);
  EXPECT_TRUE(at == 500 || at == 1000) << at;
  absl::StatusOr<std::unique_ptr<DreamerAgent>> restored =
      DreamerAgent::Create((*best)->agent().config());
  ASSERT_TRUE(restored.ok());
  EXPECT_TRUE((*restored)->Restore(o.best_dir).ok());
  // A fresh run on the same directory starts a fresh best agent; its first evaluation saves.
  // Files it did not write stay.
  std::ofstream(o.best_dir + "/notes.txt") << "mine\n";
  absl::StatusOr<std::unique_ptr<LocalTrainer>> again = LocalTrainer::Create(o);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(std::filesystem::exists(o.best_dir + "/score.txt"));
  EXPECT_FALSE(std::filesystem::exists(o.best_dir + "/latest"));
  EXPECT_TRUE(std::filesystem::exists(o.best_dir + "/notes.txt"));
  EXPECT_EQ((*again)->best_eval_return(), -std::numeric_limits<double>::infinity());
  o.best_dir.clear();

  // Episodes still running at the step limit are cut and counted.
  o.eval_max_steps = 2;  // no episode of Empty-5x5 ends in 2 steps
  absl::StatusOr<std::unique_ptr<LocalTrainer>> cut = LocalTrainer::Create(o);
  ASSERT_TRUE(cut.ok()) << cut.status();
  absl::StatusOr<EvalResult> now = (*cut)->Evaluate();
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->cut, 6);
  EXPECT_EQ(now->env_steps, 0);
}

TEST(LocalTrainerTest, ResumesUpdatesAndEnvStepsFromItsCheckpoint) {
  dreamfleet::testing::ScopedTempDir temp("local_trainer_test_");
  const std::string& dir = temp.path();
  LocalTrainerOptions o = SmallRun();
  o.checkpoint_dir = dir;
  o.save_every = 1000;  // no periodic checkpoint: the explicit Save below is the one resumed
  o.episode_log = dir + "/episodes.csv";
  o.replay_log = dir + "/replay";
  o.episode_window = 5;
  int64_t updates = 0, logged_episodes = 0;
  LocalProgress before;
  {
    absl::StatusOr<std::unique_ptr<LocalTrainer>> first = LocalTrainer::Create(o);
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_FALSE((*first)->resumed());
    ASSERT_TRUE(RunToEnd(**first).ok());
    ASSERT_TRUE((*first)->Save().ok());
    updates = (*first)->agent().updates();
    ASSERT_GT(updates, 0);
    before = (*first)->Progress();
    EXPECT_EQ((*first)->replay_size(), 1200);
    // Writing the log took some of the wall time, and not more than all of it.
    EXPECT_GT(before.replay_log_seconds, 0);
    EXPECT_LT(before.replay_log_seconds, before.wall_seconds);
    // Steps after the checkpoint (the run was killed before its next one) are played again by
    // the resumed run: the log's copy of them is cut.
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*first)->Tick().ok());
    logged_episodes = (*first)->Progress().episodes;
  }
  // Every finished episode is a line of the log (and a header line).
  int64_t lines = 0;
  {
    std::ifstream in(o.episode_log);
    for (std::string line; std::getline(in, line);) ++lines;
  }
  ASSERT_GT(before.episodes, 0);
  EXPECT_EQ(lines, logged_episodes + 1);
  // An episode that ended after the checkpoint (the run was killed before its next one) is
  // dropped: the resumed run plays those steps again.
  std::ofstream(o.episode_log, std::ios::app) << "1204,0,99,4,1,1\n";
  o.steps = 1300;
  absl::StatusOr<std::unique_ptr<LocalTrainer>> second = LocalTrainer::Create(o);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE((*second)->resumed());
  EXPECT_EQ((*second)->agent().updates(), updates);
  const LocalProgress after = (*second)->Progress();
  EXPECT_EQ(after.env_steps, 1200);
  EXPECT_FALSE((*second)->done());
  // The episode window and count carry on from the log.
  EXPECT_TRUE((*second)->episodes_from_log());
  EXPECT_EQ(after.episodes, before.episodes);
  EXPECT_EQ(after.window_episodes, before.window_episodes);
  EXPECT_DOUBLE_EQ(after.mean_return, before.mean_return);
  EXPECT_DOUBLE_EQ(after.success, before.success);
  // Replay comes back with the 1200 steps logged before the checkpoint, so the next tick trains
  // at once instead of waiting for 1024 new steps.
  EXPECT_EQ((*second)->restored_replay_steps(), 1200);
  EXPECT_EQ((*second)->replay_size(), 1200);
  ASSERT_TRUE((*second)->Tick().ok());
  EXPECT_EQ((*second)->replay_size(), 1202);
  EXPECT_GT((*second)->agent().updates(), updates);
  second->reset();
  o.checkpoint_dir = dir + "/fresh";
  o.episode_log = dir + "/fresh_episodes.csv";
  absl::StatusOr<std::unique_ptr<LocalTrainer>> fresh = LocalTrainer::Create(o);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_FALSE((*fresh)->resumed());
  EXPECT_EQ((*fresh)->restored_replay_steps(), 0);
  EXPECT_EQ((*fresh)->replay_size(), 0);
  // A fresh run in the same place empties the log: one new segment, header only.
  absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> segments =
      ReplayLog::Segments(o.replay_log);
  ASSERT_TRUE(segments.ok()) << segments.status();
  ASSERT_EQ(segments->size(), 1u);
  EXPECT_EQ(segments->at(0).first, 0);
}

// --init-from: a new run starts from another run's agent (updates and env steps included) while
// its own checkpoint directory is empty, then carries on from its own checkpoints.
TEST(LocalTrainerTest, StartsFromAnotherRunsAgentUntilItHasItsOwnCheckpoint) {
  dreamfleet::testing::ScopedTempDir temp("local_trainer_init_");
  LocalTrainerOptions o = SmallRun();
  o.checkpoint_dir = temp.path() + "/first";
  int64_t updates = 0;
  {
    absl::StatusOr<std::unique_ptr<LocalTrainer>> first = LocalTrainer::Create(o);
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE(RunToEnd(**first).ok());
    ASSERT_TRUE((*first)->Save().ok());
    updates = (*first)->agent().updates();
  }
  o.init_from = o.checkpoint_dir;
  o.checkpoint_dir = temp.path() + "/second";
  o.steps = 2400;  // its replay starts empty: enough steps to fill it and train again
  // Another run's episode log is never emptied by a run that only starts from its agent.
  const std::string other_log = temp.path() + "/first_episodes.csv";
  std::ofstream(other_log) << "env_steps,env,return,length,success,terminal\n100,0,1,25,1,1\n";
  o.episode_log = other_log;
  absl::StatusOr<std::unique_ptr<LocalTrainer>> refused = LocalTrainer::Create(o);
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_EQ(std::filesystem::file_size(other_log), 60u);
  o.episode_log = temp.path() + "/second_episodes.csv";
  // Nor is its replay log.
  const std::string other_replay = temp.path() + "/first_replay";
  {
    LocalTrainerOptions other = SmallRun();
    other.steps = 4;
    other.checkpoint_dir = temp.path() + "/other";
    other.replay_log = other_replay;
    absl::StatusOr<std::unique_ptr<LocalTrainer>> writer = LocalTrainer::Create(other);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE(RunToEnd(**writer).ok());
  }
  ASSERT_EQ(ReplayLog::Segments(other_replay)->size(), 1u);
  o.replay_log = other_replay;
  refused = LocalTrainer::Create(o);
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("first_replay"));
  EXPECT_EQ(ReplayLog::Segments(other_replay)->size(), 1u);
  o.replay_log = "";
  {
    absl::StatusOr<std::unique_ptr<LocalTrainer>> second = LocalTrainer::Create(o);
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ((*second)->started_from(), StartedFrom::kInitFrom);
    EXPECT_TRUE((*second)->resumed());
    EXPECT_EQ((*second)->agent().updates(), updates);
    EXPECT_EQ((*second)->Progress().env_steps, 1200);
    ASSERT_TRUE(RunToEnd(**second).ok());
    ASSERT_TRUE((*second)->Save().ok());
    ASSERT_GT((*second)->agent().updates(), updates);
    updates = (*second)->agent().updates();
  }
  absl::StatusOr<std::unique_ptr<LocalTrainer>> third = LocalTrainer::Create(o);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)->started_from(), StartedFrom::kCheckpoint);
  EXPECT_EQ((*third)->agent().updates(), updates);

  o.checkpoint_dir = temp.path() + "/third";
  o.init_from = temp.path() + "/nothing_here";
  absl::StatusOr<std::unique_ptr<LocalTrainer>> missing = LocalTrainer::Create(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_THAT(std::string(missing.status().message()), ::testing::HasSubstr("nothing_here"));
}

TEST(LocalTrainerTest, TrainsADreamfleetConfigAsTheClusterWould) {
  std::optional<services::Config> config = SmallConfig(
      {"learner.kl_dyn_scale=1.0", "learner.kl_rep_scale=0.2", "learner.twohot=raw",
       "learner.actor_critic_lr=3e-5", "learner.imagination_starts=10",
       "learner.actor_grad_dynamics=0.5", "actor.explore_prob=0.2", "actor.explore_hold=3",
       "learner.vector_encoder=grid", "learner.replay_value_scale=2.5"});
  LocalTrainerOptions run;
  run.steps = 1200;
  absl::StatusOr<std::unique_ptr<LocalTrainer>> trainer = LocalTrainer::Create(*config, run);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  const dreamer::AgentConfig& agent = (*trainer)->agent().config();
  EXPECT_EQ(agent.preset, "debug");
  EXPECT_EQ(agent.batch_length, 8);
  EXPECT_FLOAT_EQ(agent.scale_dyn, 1.0f);
  EXPECT_FLOAT_EQ(agent.scale_rep, 0.2f);
  EXPECT_EQ(agent.twohot, "raw");
  EXPECT_FLOAT_EQ(agent.ac_lr, 3e-5f);
  EXPECT_EQ(agent.imag_starts, 10);  // of the 2 x 8 posterior states
  EXPECT_FLOAT_EQ(agent.actor_dynamics, 0.5f);
  EXPECT_FLOAT_EQ(agent.scale_repval, 2.5f);
  EXPECT_EQ(agent.vector_encoder, "grid");  // the 5x5 grid of 11-channel cells
  EXPECT_EQ(agent.vector_grid_side(), 5);
  bool grid_encoder = false;
  for (const auto& item : (*trainer)->agent().world_model()->named_parameters()) {
    grid_encoder = grid_encoder || item.key().find("encoder.vector_grid.") != std::string::npos;
  }
  EXPECT_TRUE(grid_encoder);
  EXPECT_FLOAT_EQ(agent.lr, static_cast<float>(config->learner.lr));
  EXPECT_EQ((*trainer)->spec().vector_size, 5 * 5 * 11);  // the config's symbolic view
  ASSERT_TRUE(RunToEnd(**trainer).ok());
  const LocalProgress p = (*trainer)->Progress();
  EXPECT_EQ(p.env_steps, 1200);
  // Holds of 1-3 steps (mean 2) started at p = 0.2: 2 / (2 + 4) = 1/3 of the steps explore.
  EXPECT_GT(p.explored_steps, 1200 / 6);
  EXPECT_LT(p.explored_steps, 1200 / 2);
  // 2 envs, 8 replayed steps per env step, 16 per update: one update per tick after the fill.
  EXPECT_GE(p.updates + p.skipped_updates, 85);
  EXPECT_LE(p.updates + p.skipped_updates, 90);
  const services::CurveRow row = CurveRowOf(p);
  EXPECT_EQ(row.env_steps, 1200);
  EXPECT_TRUE(row.losses.count("rec"));  // the vector decoder's loss
  EXPECT_TRUE(row.losses.count("dyn"));
  // The policy's entropy on imagined states: positive and at most log(actions) nats.
  ASSERT_TRUE(row.stats.count("entropy"));
  EXPECT_GT(row.stats.at("entropy"), 0);
  EXPECT_LE(row.stats.at("entropy"),
            std::log(static_cast<double>((*trainer)->spec().num_actions)) + 1e-6);
  EXPECT_TRUE(row.stats.count("retnorm_scale"));

  EXPECT_EQ(row.window_episodes, std::min<int64_t>(p.episodes, 100));

  config->actor.explore_prob = 1.5;
  absl::Status bad_explore = LocalTrainer::Create(*config, run).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad_explore)) << bad_explore;
  EXPECT_NE(bad_explore.message().find("actor.explore_prob"), std::string::npos) << bad_explore;
  config->actor.explore_prob = 0.2;
  config->learner.twohot = "linear";
  EXPECT_TRUE(absl::IsInvalidArgument(LocalTrainer::Create(*config, run).status()));
  config->learner.twohot = "raw";
  config->replay.samples_per_insert = 0;
  absl::Status no_ratio = LocalTrainer::Create(*config, run).status();
  EXPECT_TRUE(absl::IsInvalidArgument(no_ratio)) << no_ratio;
  EXPECT_NE(no_ratio.message().find("replay.samples_per_insert"), std::string::npos);
  config->replay.samples_per_insert = 8;
  config->learner.imagination_starts = 17;
  absl::Status too_many = LocalTrainer::Create(*config, run).status();
  EXPECT_TRUE(absl::IsInvalidArgument(too_many)) << too_many;
  EXPECT_NE(too_many.message().find("learner.imagination_starts (17)"), std::string::npos)
      << too_many;
}

TEST(LocalTrainerTest, TrainsWithReplayContextWhichTheClusterRefuses) {
  std::optional<services::Config> config = SmallConfig({"learner.replay_context=1"});
  absl::Status cluster = services::ValidateCluster(*config);
  EXPECT_TRUE(absl::IsInvalidArgument(cluster)) << cluster;
  EXPECT_NE(cluster.message().find("learner.replay_context"), std::string::npos);

  LocalTrainerOptions run;
  run.steps = 1200;
  absl::StatusOr<std::unique_ptr<LocalTrainer>> trainer = LocalTrainer::Create(*config, run);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  EXPECT_EQ((*trainer)->agent().config().replay_context, 1);
  ASSERT_TRUE(RunToEnd(**trainer).ok());
  const LocalProgress p = (*trainer)->Progress();
  EXPECT_GE(p.updates, 80) << "every update's batch carried its context and wrote latents back";
  EXPECT_TRUE(p.losses.count("dyn"));
}

TEST(LocalTrainerTest, TrainsWithPrioritisedReplayAndRefusesRecency) {
  // With half the windows drawn around rewards (the goal's), which set priorities too.
  std::optional<services::Config> config =
      SmallConfig({"replay.selector=prioritized", "replay.priority_exponent=0.8",
                   "learner.continue_scale=3", "replay.rewarded_share=0.5"});
  LocalTrainerOptions run;
  run.steps = 1200;
  absl::StatusOr<std::unique_ptr<LocalTrainer>> trainer = LocalTrainer::Create(*config, run);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  EXPECT_FLOAT_EQ((*trainer)->agent().config().scale_con, 3.0f);
  ASSERT_TRUE(RunToEnd(**trainer).ok());
  const LocalProgress p = (*trainer)->Progress();
  EXPECT_GE(p.updates, 80) << "every update set its windows' priorities";
  // Random play on Empty-5x5 reaches the goal within the first few hundred steps, so
  // the replay holds rewards before the first update (it waits for 1024 steps).
  const int64_t windows = p.updates * config->learner.batch_size;
  EXPECT_GT(p.rewarded_windows, windows / 4) << "about half of the windows";
  EXPECT_LT(p.rewarded_windows, windows * 3 / 4);
  EXPECT_TRUE(p.losses.count("dyn"));

  config->replay.selector = "recency";
  absl::Status recency = LocalTrainer::Create(*config, run).status();
  EXPECT_TRUE(absl::IsInvalidArgument(recency)) << recency;
  EXPECT_NE(recency.message().find("recency"), std::string::npos);
}

TEST(PlayTest, PlaysACheckpointsEpisodesFrameByFrame) {
  dreamfleet::testing::ScopedTempDir temp("play_test_");
  const std::string dir = temp.path() + "/checkpoint";
  std::optional<services::Config> config = SmallConfig({});
  LocalTrainerOptions run;
  run.steps = 400;
  run.checkpoint_dir = dir;
  {
    absl::StatusOr<std::unique_ptr<LocalTrainer>> trainer = LocalTrainer::Create(*config, run);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    ASSERT_TRUE(RunToEnd(**trainer).ok());
    ASSERT_TRUE((*trainer)->Save().ok());
  }
  PlayOptions o;
  o.checkpoint_dir = dir;
  o.episodes = 2;
  o.max_steps = 12;  // Empty-5x5 needs at least 5 steps: a short cut episode or two
  absl::StatusOr<PlayResult> played = Play(*config, o);
  ASSERT_TRUE(played.ok()) << played.status();
  ASSERT_EQ(played->episodes.size(), 2u);
  EXPECT_EQ(played->action_names, (std::vector<std::string>{"left", "right", "forward"}));
  int64_t steps = 0;
  for (const PlayedEpisode& e : played->episodes) {
    EXPECT_GE(e.length, 1);
    EXPECT_LE(e.length, 12);
    EXPECT_EQ(e.cut, e.length == 12 && !e.success);
    ASSERT_EQ(e.action_counts.size(), 3u) << "Empty-5x5: left, right, forward";
    int64_t counted = 0;
    for (int64_t c : e.action_counts) counted += c;
    EXPECT_EQ(counted, e.length) << "every step played one action";
    steps += e.length;
  }
  // The symbolic env has no image: its pictures come from RenderRgb, one per step plus the first.
  EXPECT_EQ(played->height, 64);
  EXPECT_EQ(played->width, 64);
  EXPECT_EQ(played->frame_count(), steps + 2);

  o.checkpoint_dir = temp.path() + "/nothing_here";
  EXPECT_TRUE(absl::IsNotFound(Play(*config, o).status()));
  o.checkpoint_dir = dir;
  o.episodes = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(Play(*config, o).status()));
  o.episodes = 1;
  config->learner.preset = "12m";  // not the model the checkpoint holds
  absl::Status mismatch = Play(*config, o).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(mismatch)) << mismatch;
}

TEST(LocalTrainerTest, RejectsBadOptionsNamingThem) {
  // SmallRun() with `change` applied is refused as INVALID_ARGUMENT with `named` in the message.
  auto expect_refused = [](const std::function<void(LocalTrainerOptions&)>& change,
                           const std::string& named) {
    LocalTrainerOptions o = SmallRun();
    change(o);
    const absl::Status status = LocalTrainer::Create(o).status();
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
    EXPECT_NE(status.message().find(named), std::string::npos) << status;
  };
  expect_refused([](LocalTrainerOptions& o) { o.length = 1; }, "length 1");
  expect_refused([](LocalTrainerOptions& o) { o.rewarded_share = 1.5; }, "rewarded share");
  expect_refused([](LocalTrainerOptions& o) { o.agent_sets = {"scale_rec"}; }, "KEY=VALUE");
  expect_refused(
      [](LocalTrainerOptions& o) {
        o.eval_every = 1000;
        o.eval_episodes = 0;
      },
      "eval episodes 0");
  expect_refused(
      [](LocalTrainerOptions& o) {
        o.eval_every = 100;
        o.checkpoint_dir = "/tmp/run/ckpt";
        o.best_dir = "/tmp/run/./ckpt";
      },
      "must differ");
  expect_refused([](LocalTrainerOptions& o) { o.best_dir = "/tmp/best"; }, "needs evaluations");
  expect_refused([](LocalTrainerOptions& o) { o.explore_prob = -0.1; }, "got -0.1");
  expect_refused([](LocalTrainerOptions& o) { o.explore_prob = std::nan(""); }, "got nan");
  expect_refused([](LocalTrainerOptions& o) { o.explore_hold = 0; }, "longest hold of 0");
  expect_refused([](LocalTrainerOptions& o) { o.replay_log = "/tmp/replay"; },
                 "needs a checkpoint directory");

  expect_refused([](LocalTrainerOptions& o) { o.action_set = "minimal"; }, "minimal");

  LocalTrainerOptions minatar = SmallRun();
  minatar.env = "minatar_breakout";
  minatar.action_set = "minimal";
  absl::StatusOr<std::unique_ptr<LocalTrainer>> breakout = LocalTrainer::Create(minatar);
  ASSERT_TRUE(breakout.ok()) << breakout.status();
  EXPECT_EQ((*breakout)->spec().num_actions, 3);  // noop, left, right
  EXPECT_EQ((*breakout)->agent().config().num_actions, 3);

  LocalTrainerOptions o = SmallRun();
  o.env = "grid_nowhere";
  absl::StatusOr<std::unique_ptr<LocalTrainer>> trainer = LocalTrainer::Create(o);
  EXPECT_TRUE(absl::IsNotFound(trainer.status())) << trainer.status();
}

// A checkpoint of the untrained agent of `config` in `dir`, for the reports' tests.
void SaveUntrainedAgent(const services::Config& config, const std::string& dir) {
  LocalTrainerOptions run;
  run.checkpoint_dir = dir;
  absl::StatusOr<std::unique_ptr<LocalTrainer>> trainer = LocalTrainer::Create(config, run);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ASSERT_TRUE((*trainer)->Save().ok());
}

// The open-loop report of an (untrained) agent: one panel per window, row and step, laid out
// frame by frame in the animation, deterministic in its seed, and bad options refused.
TEST(OpenLoopReportTest, PanelsFollowTheWindowsAndTheAnimationLaysThemOut) {
  dreamfleet::testing::ScopedTempDir temp("openloop_test_");
  const std::string dir = temp.path() + "/checkpoint";
  std::optional<services::Config> config = SmallConfig({});
  ASSERT_NO_FATAL_FAILURE(SaveUntrainedAgent(*config, dir));
  OpenLoopOptions o;
  o.checkpoint_dir = dir;
  o.sequences = 2;
  o.length = 6;
  o.context = 2;
  absl::StatusOr<OpenLoopReport> report = OpenLoop(*config, o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->observation, "vector");  // the default gridworld's symbolic view
  ASSERT_GT(report->height, 0);
  EXPECT_EQ(report->height, 5 * 16) << "the 5x5 grid of the env, 16 pixels a cell";
  const size_t panel = static_cast<size_t>(report->height) * report->width * 3;
  ASSERT_EQ(report->panels.size(), 2 * 3 * 6 * panel);
  ASSERT_EQ(report->step_mse.size(), 6u);
  for (double e : report->step_mse) EXPECT_TRUE(std::isfinite(e));
  EXPECT_TRUE(std::isfinite(report->observed_mse));
  EXPECT_TRUE(std::isfinite(report->imagined_mse));
  EXPECT_GE(report->hold_mse, 0.0);

  // Frame t of the animation shows window s's panels of step t in its row, and a white bar under
  // them only while the model observes.
  const std::vector<uint8_t> frames = report->Animation();
  const int fh = report->AnimationHeight(), fw = report->AnimationWidth();
  ASSERT_EQ(frames.size(), static_cast<size_t>(6) * fh * fw * 3);
  for (int64_t t = 0; t < 6; ++t) {
    const uint8_t* frame = frames.data() + t * static_cast<size_t>(fh) * fw * 3;
    for (int64_t s = 0; s < 2; ++s) {
      const int top = static_cast<int>(s) * (report->height + 3 + 2);
      for (int r = 0; r < 3; ++r) {
        const int left = r * (report->width + 2);
        const uint8_t* src = report->panel(s, r, t);
        for (int y = 0; y < report->height; ++y) {
          ASSERT_TRUE(std::equal(src + y * report->width * 3, src + (y + 1) * report->width * 3,
                                 frame + ((top + y) * fw + left) * 3))
              << "step " << t << " window " << s << " row " << r << " line " << y;
        }
      }
      const uint8_t bar = frame[((top + report->height) * fw) * 3];
      EXPECT_EQ(bar, t < 2 ? 255 : 0) << "step " << t << " window " << s;
    }
  }

  absl::StatusOr<OpenLoopReport> again = OpenLoop(*config, o);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->panels, report->panels) << "the same seed gives the same report";

  o.context = 6;
  EXPECT_TRUE(absl::IsInvalidArgument(OpenLoop(*config, o).status()));
  o.context = 2;
  o.checkpoint_dir = temp.path() + "/none";
  EXPECT_TRUE(absl::IsNotFound(OpenLoop(*config, o).status()));
}

// The foresight report of an (untrained) agent: every step of every episode is scored at each lead
// it reaches, the true ends at exactly the episodes' last steps, chances within [0, 1], the same
// seed the same report, the same episodes scored alike whether the model observes each episode
// once (context 0) or in windows, in one chunk or many, and bad options refused.
TEST(ForesightReportTest, ScoresEveryStepAtEveryLeadItReaches) {
  dreamfleet::testing::ScopedTempDir temp("foresight_test_");
  const std::string dir = temp.path() + "/checkpoint";
  std::optional<services::Config> config = SmallConfig({});
  ASSERT_NO_FATAL_FAILURE(SaveUntrainedAgent(*config, dir));
  ForesightOptions o;
  o.checkpoint_dir = dir;
  // Some episodes reach the goal (an end by the rules, with its reward), some the gridworld's
  // time limit (not an end).
  o.episodes = 8;
  o.max_steps = 200;
  o.horizon = 3;
  auto check = [&](const ForesightReport& report) {
    ASSERT_EQ(report.played.size(), 8u);
    ASSERT_GT(report.ends, 0);
    ASSERT_GT(report.steps, 300);
    ASSERT_EQ(report.leads.size(), 4u);  // 0 (observed) to 3
    int64_t steps = 0, ends = 0;
    for (const ForesightEpisode& e : report.played) {
      steps += e.length;
      ends += e.terminal ? 1 : 0;
      EXPECT_LE(e.length, 200);
    }
    EXPECT_EQ(report.steps, steps);
    EXPECT_EQ(report.ends, ends);
    for (const ForesightLead& l : report.leads) {
      // From every last observed step s (0 <= s <= length), lead k reaches step s + k when
      // s + k <= length; an end is scored there when that step is a terminal episode's last.
      int64_t scored = 0, true_ends = 0;
      for (const ForesightEpisode& e : report.played) {
        const int64_t reach = e.length - l.lead + 1;
        scored += std::max<int64_t>(0, reach);
        true_ends += e.terminal && reach > 0 ? 1 : 0;
      }
      EXPECT_EQ(l.ends + l.others, scored) << "lead " << l.lead;
      EXPECT_EQ(l.rewarded + l.unrewarded, scored) << "lead " << l.lead;
      EXPECT_EQ(l.ends, true_ends) << "lead " << l.lead;
      EXPECT_GT(l.ends, 0) << "lead " << l.lead;
      EXPECT_EQ(l.rewarded, l.ends) << "the goal's reward comes with its end";
      EXPECT_GE(l.end_chance_elsewhere, 0.0);
      EXPECT_LE(l.end_chance_elsewhere, 1.0);
      EXPECT_GE(l.end_chance_at_ends, 0.0);
      EXPECT_LE(l.end_chance_at_ends, 1.0);
      // The symbolic gridworld's cells, channel by channel: the agent is at one cell facing one
      // way (channels 6-9) at every scored step; at lead 0 nothing has arrived since the last
      // observed step, which is the same step.
      ASSERT_EQ(l.cells.size(), static_cast<size_t>(envs::GridWorld::kSymbolicChannels))
          << "lead " << l.lead;
      int64_t agent_cells = 0;
      for (int ch = 6; ch <= 9; ++ch) agent_cells += l.cells[ch].occupied;
      EXPECT_EQ(agent_cells, scored) << "lead " << l.lead;
      for (const ForesightCells& cell : l.cells) {
        EXPECT_GE(cell.kept, 0.0);
        EXPECT_LE(cell.kept, 1.0);
        EXPECT_LE(cell.arrived, cell.occupied);
        EXPECT_GE(cell.spurious_per_step, 0.0);
        if (l.lead == 0) EXPECT_EQ(cell.arrived, 0);
        // The decoded value at the occupied cells: at least 0.5 where every one was kept, below
        // it where none was.
        if (cell.occupied > 0 && cell.kept == 1.0) EXPECT_GE(cell.probability, 0.5);
        if (cell.occupied > 0 && cell.kept == 0.0) EXPECT_LT(cell.probability, 0.5);
        if (cell.occupied == 0) EXPECT_EQ(cell.probability, 0.0);
      }
    }
    int64_t arrived = 0;
    for (int ch = 6; ch <= 9; ++ch) arrived += report.leads[1].cells[ch].arrived;
    EXPECT_GT(arrived, 0) << "the agent moves or turns";
    EXPECT_NE(ForesightSummary(report).find("channel 10"), std::string::npos);
  };
  // What the played episodes say, which no way of imagining may change.
  auto truth = [](const ForesightReport& report) {
    std::vector<int64_t> counts;
    for (const ForesightLead& l : report.leads) {
      for (int64_t n : {l.ends, l.others, l.rewarded, l.unrewarded}) counts.push_back(n);
      for (const ForesightCells& cell : l.cells) {
        counts.push_back(cell.occupied);
        counts.push_back(cell.arrived);
      }
    }
    return counts;
  };

  o.context = 0;  // each episode observed once, start steps imagined 4096 at a time
  absl::StatusOr<ForesightReport> whole = Foresight(*config, o);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_NO_FATAL_FAILURE(check(*whole));
  absl::StatusOr<ForesightReport> again = Foresight(*config, o);
  ASSERT_TRUE(again.ok()) << again.status();
  for (size_t k = 0; k < whole->leads.size(); ++k) {
    EXPECT_EQ(again->leads[k].end_chance_elsewhere, whole->leads[k].end_chance_elsewhere);
    EXPECT_EQ(again->leads[k].reward_elsewhere, whole->leads[k].reward_elsewhere);
  }
  for (auto [context, chunk] : {std::pair<int64_t, int64_t>{0, 8}, {2, 16384}, {2, 40}}) {
    o.context = context;
    o.chunk_steps = chunk;
    absl::StatusOr<ForesightReport> other = Foresight(*config, o);
    ASSERT_TRUE(other.ok()) << other.status();
    ASSERT_NO_FATAL_FAILURE(check(*other)) << "context " << context << ", chunk " << chunk;
    EXPECT_EQ(truth(*other), truth(*whole)) << "context " << context << ", chunk " << chunk;
  }

  o.horizon = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(Foresight(*config, o).status()));
  o.horizon = 3;
  o.context = 1001;
  EXPECT_TRUE(absl::IsInvalidArgument(Foresight(*config, o).status()));
  o.context = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(Foresight(*config, o).status()));
  o.context = 0;
  o.chunk_steps = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(Foresight(*config, o).status()));
  o.chunk_steps = 16384;
  o.checkpoint_dir = temp.path() + "/none";
  EXPECT_TRUE(absl::IsNotFound(Foresight(*config, o).status()));
}

}  // namespace
}  // namespace dreamfleet::learner
