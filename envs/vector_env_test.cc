#include "envs/vector_env.h"

#include <cstring>
#include <vector>

#include "envs/gridworld.h"
#include "envs/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

std::unique_ptr<VectorEnv> MakeVector(const std::string& name, int k, uint64_t base_seed,
                                      int max_steps = 0, int env_index = 0, int threads = 1) {
  EnvOptions o;
  o.name = name;
  o.base_seed = base_seed;
  o.max_episode_steps = max_steps;
  o.env_index = env_index;
  auto v = VectorEnv::Create(o, k, threads);
  EXPECT_TRUE(v.ok()) << v.status();
  return *std::move(v);
}

// Everything a step leaves in the batch, for comparisons.
std::vector<uint8_t> Snapshot(const VectorEnv& v) {
  const int k = v.num_envs();
  std::vector<uint8_t> out(v.image(), v.image() + k * v.spec().image_bytes());
  const uint8_t* r = reinterpret_cast<const uint8_t*>(v.reward());
  out.insert(out.end(), r, r + k * sizeof(float));
  for (const uint8_t* flags : {v.is_first(), v.is_last(), v.is_terminal(), v.success()}) {
    out.insert(out.end(), flags, flags + k);
  }
  return out;
}

TEST(VectorEnvTest, FirstStepResetsAndAutoResetsAfterIsLast) {
  auto v = MakeVector("grid_empty_5x5", 2, 1, /*max_steps=*/2);
  const std::vector<int> left(2, GridWorld::kLeft);
  ASSERT_TRUE(v->Step(left).ok());  // never reset: this is the reset
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(v->is_first()[i], 1);
    EXPECT_EQ(v->reward()[i], 0.0f);
  }
  EXPECT_EQ(v->total_steps(), 0);
  ASSERT_TRUE(v->Step(left).ok());
  EXPECT_EQ(v->is_first()[0], 0);
  EXPECT_EQ(v->is_last()[0], 0);
  ASSERT_TRUE(v->Step(left).ok());
  EXPECT_EQ(v->is_last()[0], 1);
  EXPECT_EQ(v->is_terminal()[0], 0);
  ASSERT_EQ(v->finished_episodes().size(), 2u);
  const EpisodeStats& e = v->finished_episodes()[1];
  EXPECT_EQ(e.env, 1);
  EXPECT_EQ(e.episode, 0);
  EXPECT_EQ(e.length, 2);
  EXPECT_EQ(e.episode_return, 0.0);
  EXPECT_FALSE(e.terminal);
  EXPECT_FALSE(e.success);
  // The next step ignores the (invalid) actions and resets.
  ASSERT_TRUE(v->Step(std::vector<int>{99, -5}).ok());
  EXPECT_EQ(v->is_first()[0], 1);
  EXPECT_EQ(v->is_last()[0], 0);
  EXPECT_EQ(v->reward()[1], 0.0f);
  EXPECT_TRUE(v->finished_episodes().empty());
  EXPECT_EQ(v->total_episodes(), 2);
  EXPECT_EQ(v->total_steps(), 4);
  // Invalid actions outside a reset are errors.
  EXPECT_EQ(v->Step(std::vector<int>{99, 0}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(VectorEnvTest, ReportsReturnLengthAndSuccessOfFinishedEpisodes) {
  auto v = MakeVector("grid_empty_5x5", 1, 3);
  ASSERT_TRUE(v->Reset().ok());
  EXPECT_EQ(v->is_first()[0], 1);
  double sum = 0.0;
  for (int a : {2, 2, 1, 2, 2}) {
    ASSERT_TRUE(v->Step(std::vector<int>{a}).ok());
    sum += v->reward()[0];
  }
  ASSERT_EQ(v->finished_episodes().size(), 1u);
  const EpisodeStats& e = v->finished_episodes()[0];
  EXPECT_EQ(e.length, 5);
  EXPECT_DOUBLE_EQ(e.episode_return, sum);
  EXPECT_NEAR(e.episode_return, 1.0 - 0.9 * 5 / 100, 1e-6);
  EXPECT_TRUE(e.success);
  EXPECT_TRUE(e.terminal);
  EXPECT_EQ(v->success()[0], 1);
}

TEST(VectorEnvTest, SameSeedGivesIdenticalBatchesDifferentSeedsDiffer) {
  for (const char* name : {"minatar_breakout", "grid_fourrooms", "minatar_seaquest"}) {
    SCOPED_TRACE(name);
    auto a = MakeVector(name, 4, 1234);
    auto b = MakeVector(name, 4, 1234);
    auto c = MakeVector(name, 4, 999);
    Rng rng(8);
    std::vector<int> actions(4);
    bool differs = false;
    for (int t = 0; t < 400; ++t) {
      for (int& x : actions) x = rng.UniformInt(0, a->spec().num_actions - 1);
      ASSERT_TRUE(a->Step(actions).ok());
      ASSERT_TRUE(b->Step(actions).ok());
      ASSERT_TRUE(c->Step(actions).ok());
      ASSERT_EQ(Snapshot(*a), Snapshot(*b)) << "step " << t;
      differs |= Snapshot(*a) != Snapshot(*c);
      ASSERT_EQ(a->finished_episodes().size(), b->finished_episodes().size());
    }
    EXPECT_TRUE(differs);
    EXPECT_EQ(a->total_episodes(), b->total_episodes());
  }
}

TEST(VectorEnvTest, EnvsOfOneFleetDifferAndSeedFromBaseSeedPlusIndex) {
  auto fleet = MakeVector("grid_fourrooms", 3, 50);
  auto shifted = MakeVector("grid_fourrooms", 1, 50, 0, /*env_index=*/2);
  ASSERT_TRUE(fleet->Reset().ok());
  ASSERT_TRUE(shifted->Reset().ok());
  const int64_t bytes = fleet->spec().image_bytes();
  EXPECT_NE(std::memcmp(fleet->image(), fleet->image() + bytes, bytes), 0);
  // Env 2 of the fleet and env 0 of a fleet starting at index 2 are the same env.
  EXPECT_EQ(std::memcmp(fleet->image() + 2 * bytes, shifted->image(), bytes), 0);
}

TEST(VectorEnvTest, WorkerThreadsGiveTheSameBatchesAsOneThread) {
  for (const char* name : {"minatar_space_invaders", "grid_doorkey_5x5"}) {
    SCOPED_TRACE(name);
    auto one = MakeVector(name, 7, 21, /*max_steps=*/40);
    auto three = MakeVector(name, 7, 21, /*max_steps=*/40, 0, /*threads=*/3);
    ASSERT_EQ(three->num_threads(), 3);
    Rng rng(4);
    std::vector<int> actions(7);
    int64_t finished = 0;
    for (int t = 0; t < 300; ++t) {
      for (int& x : actions) x = rng.UniformInt(0, one->spec().num_actions - 1);
      ASSERT_TRUE(one->Step(actions).ok());
      ASSERT_TRUE(three->Step(actions).ok());
      ASSERT_EQ(Snapshot(*one), Snapshot(*three)) << "step " << t;
      ASSERT_EQ(one->finished_episodes().size(), three->finished_episodes().size());
      for (size_t e = 0; e < one->finished_episodes().size(); ++e) {
        const EpisodeStats& a = one->finished_episodes()[e];
        const EpisodeStats& b = three->finished_episodes()[e];
        EXPECT_EQ(a.env, b.env);
        EXPECT_EQ(a.length, b.length);
        EXPECT_EQ(a.episode_return, b.episode_return);
      }
      finished += one->finished_episodes().size();
    }
    EXPECT_GT(finished, 7);  // 40-step limit: every env finished several episodes
    EXPECT_EQ(one->total_steps(), three->total_steps());
  }
  // More threads than envs is clamped; errors from a worker's env reach the caller.
  auto v = MakeVector("grid_empty_5x5", 2, 0, 0, 0, /*threads=*/8);
  EXPECT_EQ(v->num_threads(), 2);
  ASSERT_TRUE(v->Reset().ok());
  EXPECT_EQ(v->Step(std::vector<int>{0, 7}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(VectorEnvTest, RejectsMismatchedActionCountAndSpecs) {
  auto v = MakeVector("minatar_breakout", 3, 0);
  EXPECT_EQ(v->Step(std::vector<int>{0, 0}).code(), absl::StatusCode::kInvalidArgument);

  std::vector<std::unique_ptr<Environment>> envs;
  EnvOptions o;
  o.name = "minatar_breakout";
  envs.push_back(*MakeEnvironment(o));
  o.name = "grid_doorkey_5x5";  // 5 actions, not 6
  envs.push_back(*MakeEnvironment(o));
  auto mixed = VectorEnv::Create(std::move(envs), 0, 0);
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mixed.status().message()), testing::HasSubstr("grid_doorkey_5x5"));
}

TEST(VectorEnvTest, BatchLayoutIsRowMajorOverEnvs) {
  auto v = MakeVector("minatar_freeway", 8, 3);
  EXPECT_EQ(v->num_envs(), 8);
  EXPECT_EQ(v->spec().image_bytes(), 64 * 64 * 3);
  EXPECT_EQ(v->vector(), nullptr);
  EXPECT_EQ(v->text(), nullptr);
  ASSERT_TRUE(v->Reset().ok());
  // Each row is exactly what the env alone renders for the same seed.
  EnvOptions o;
  o.name = "minatar_freeway";
  auto env = *MakeEnvironment(o);
  std::vector<uint8_t> image(v->spec().image_bytes());
  StepBuffer b;
  b.image = image.data();
  Rng seeds(EnvSeed(3, 5));
  ASSERT_TRUE(env->Reset(seeds.Next(), &b).ok());
  EXPECT_EQ(std::memcmp(v->image() + 5 * image.size(), image.data(), image.size()), 0);
}

}  // namespace
}  // namespace dreamfleet::envs
