// ActorLoop in-process against a real replay shard and a real ParameterService on loopback.
#include "actor/actor_loop.h"

#include <memory>

#include "broadcast/parameter_service.h"
#include "dreamer/agent_config.h"
#include "dreamer/policy.h"
#include "dreamer/tensor_convert.h"
#include "envs/env_config.h"
#include "envs/registry.h"
#include "gtest/gtest.h"
#include "services/grpc_util.h"
#include "tests/in_process_shard.h"
#include "tests/test_process.h"

namespace dreamfleet::actor {
namespace {

services::Config SmallConfig(const std::string& run_dir) {
  services::Config config;
  config.env.name = "grid_empty_5x5";
  config.env.view = "symbolic";
  config.actor.envs_per_actor = 2;
  config.actor.chunk_steps = 8;
  config.actor.threads = 1;
  config.learner.host = "127.0.0.1";
  config.learner.port = 1;  // nobody: the actor runs on random prefill
  config.replay.samples_per_insert = 0;  // nobody samples here: inserts are never held back
  config.run.dir = run_dir;
  return config;
}

uint64_t InsertedSteps(dreamfleet::testing::InProcessShard& shard) {
  return shard.shard()->table()->Info().inserted_steps();
}

TEST(ActorLoopTest, StreamsEveryStepToReplayAndFlushesThePartialChunks) {
  dreamfleet::testing::ScopedTempDir run_dir("actor_loop_test_");
  services::Config config = SmallConfig(run_dir.path());
  absl::StatusOr<std::unique_ptr<dreamfleet::testing::InProcessShard>> shard =
      dreamfleet::testing::InProcessShard::Start(config);
  ASSERT_TRUE(shard.ok()) << shard.status();
  config.replay.addresses = (*shard)->address();
  services::Metrics metrics;
  absl::StatusOr<std::unique_ptr<ActorLoop>> loop = ActorLoop::Create({config, 3, ""}, &metrics);
  ASSERT_TRUE(loop.ok()) << loop.status();
  EXPECT_EQ((*loop)->actor_id(), "actor-3");
  for (int tick = 0; tick < 25; ++tick) ASSERT_TRUE((*loop)->Tick().ok());
  EXPECT_EQ((*loop)->env_steps(), 50);
  EXPECT_EQ((*loop)->weights_version(), 0);  // random prefill: no learner
  (*loop)->Flush(absl::Seconds(30));
  // 25 steps per env: 3 full chunks of 8 and a partial chunk of 1, all acknowledged.
  EXPECT_EQ((*loop)->acknowledged_chunks(), 8u);
  EXPECT_EQ(InsertedSteps(**shard), 50u);
}

TEST(ActorLoopTest, RunStopsAtMaxEnvStepsAndHandsEveryStepToReplay) {
  dreamfleet::testing::ScopedTempDir run_dir("actor_loop_test_");
  services::Config config = SmallConfig(run_dir.path());
  config.actor.max_env_steps = 40;
  absl::StatusOr<std::unique_ptr<dreamfleet::testing::InProcessShard>> shard =
      dreamfleet::testing::InProcessShard::Start(config);
  ASSERT_TRUE(shard.ok()) << shard.status();
  config.replay.addresses = (*shard)->address();
  services::Metrics metrics;
  absl::StatusOr<std::unique_ptr<ActorLoop>> loop = ActorLoop::Create({config, 0, ""}, &metrics);
  ASSERT_TRUE(loop.ok()) << loop.status();
  ASSERT_TRUE((*loop)->Run().ok());
  EXPECT_EQ((*loop)->env_steps(), 40);
  // 20 steps per env: 2 full chunks of 8 and a flushed partial chunk of 4 each.
  EXPECT_EQ((*loop)->acknowledged_chunks(), 6u);
  EXPECT_EQ(InsertedSteps(**shard), 40u);
}

TEST(ActorLoopTest, ActsWithTheWeightsTheLearnerPublished) {
  dreamfleet::testing::ScopedTempDir run_dir("actor_loop_test_");
  services::Config config = SmallConfig(run_dir.path());
  absl::StatusOr<std::unique_ptr<dreamfleet::testing::InProcessShard>> shard =
      dreamfleet::testing::InProcessShard::Start(config);
  ASSERT_TRUE(shard.ok()) << shard.status();
  config.replay.addresses = (*shard)->address();

  // A learner's broadcast with one version of a debug-sized policy for this env.
  services::Metrics metrics;
  broadcast::ParameterServiceImpl::Options service_options;
  service_options.metrics = &metrics;
  broadcast::ParameterServiceImpl service(service_options);
  absl::StatusOr<services::StartedServer> server =
      services::StartGrpcServer("127.0.0.1", 0, {&service});
  ASSERT_TRUE(server.ok()) << server.status();
  config.learner.port = server->port;
  absl::StatusOr<std::unique_ptr<envs::Environment>> env =
      envs::MakeEnvironment(envs::EnvOptionsFromConfig(config, 0));
  ASSERT_TRUE(env.ok()) << env.status();
  dreamer::AgentConfig agent;
  ASSERT_TRUE(dreamer::ApplyPreset("debug", &agent).ok());
  dreamer::ApplyEnvSpec((*env)->spec(), &agent);
  // The grid encoder: the actor builds it from the config that travels with the weights.
  agent.vector_encoder = "grid";
  dreamer::Policy policy(agent);
  auto tensors = dreamer::ToNamedTensors(dreamer::ExportPolicyWeights(policy));
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  ASSERT_TRUE(
      service.Publish(broadcast::NewWeightsVersion(1, agent.Serialize(), *std::move(tensors)))
          .ok());

  // Held random actions on top of the policy: 1-3 steps (mean 2) started at p = 0.5 per step,
  // 2 / (2 + 1) of the steps; counted once the policy acts.
  config.actor.explore_prob = 0.5;
  config.actor.explore_hold = 3;
  absl::StatusOr<std::unique_ptr<ActorLoop>> loop = ActorLoop::Create({config, 0, "a"}, &metrics);
  ASSERT_TRUE(loop.ok()) << loop.status();
  ASSERT_TRUE((*loop)->WaitForWeights(1, absl::Seconds(60)));
  for (int tick = 0; tick < 8; ++tick) ASSERT_TRUE((*loop)->Tick().ok());
  EXPECT_EQ((*loop)->weights_version(), 1);
  const double explored = metrics.Counter("dreamfleet_actor_explored_steps_total", "").Value();
  EXPECT_GE(explored, 4);
  EXPECT_LE(explored, 16);
  (*loop)->Flush(absl::Seconds(30));
  EXPECT_EQ(InsertedSteps(**shard), 16u);
  service.Shutdown();
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->server->Wait();
}

TEST(ActorLoopTest, AnUnknownEnvIsAnErrorNamingIt) {
  dreamfleet::testing::ScopedTempDir run_dir("actor_loop_test_");
  services::Config config = SmallConfig(run_dir.path());
  config.env.name = "grid_nowhere";
  config.replay.addresses = "127.0.0.1:1";
  services::Metrics metrics;
  absl::StatusOr<std::unique_ptr<ActorLoop>> loop = ActorLoop::Create({config, 0, ""}, &metrics);
  EXPECT_TRUE(absl::IsNotFound(loop.status())) << loop.status();
  EXPECT_NE(loop.status().message().find("grid_nowhere"), std::string::npos) << loop.status();
}

TEST(ActorLoopTest, ABadExplorationOptionIsAnErrorNamingIt) {
  dreamfleet::testing::ScopedTempDir run_dir("actor_loop_test_");
  services::Config config = SmallConfig(run_dir.path());
  config.replay.addresses = "127.0.0.1:1";
  config.actor.explore_prob = 1.5;
  services::Metrics metrics;
  absl::StatusOr<std::unique_ptr<ActorLoop>> loop = ActorLoop::Create({config, 0, ""}, &metrics);
  EXPECT_TRUE(absl::IsInvalidArgument(loop.status())) << loop.status();
  EXPECT_NE(loop.status().message().find("got 1.5"), std::string::npos) << loop.status();
}

}  // namespace
}  // namespace dreamfleet::actor
