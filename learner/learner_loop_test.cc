// LearnerLoop in-process: real gridworld steps in a real replay shard on loopback, a real
// ParameterService; a few updates, publishing, checkpoint and resume.
#include "learner/learner_loop.h"

#include <chrono>
#include <filesystem>
#include <memory>

#include "dreamfleet/v1/parameter.grpc.pb.h"
#include "envs/env_config.h"
#include "envs/vector_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replay_server/sharded_replay_client.h"
#include "services/grpc_util.h"
#include "services/step_columns.h"
#include "tests/in_process_shard.h"
#include "tests/test_process.h"

namespace dreamfleet::learner {
namespace {

services::Config SmallConfig(const std::string& run_dir) {
  services::Config config;
  config.env.name = "grid_empty_5x5";
  config.env.view = "symbolic";
  config.learner.preset = "debug";
  config.learner.device = "cpu";
  config.learner.batch_size = 2;
  config.learner.batch_length = 8;
  config.learner.warmup_updates = 10;
  config.learner.publish_every_updates = 2;
  config.learner.publish_every_seconds = 3600;
  config.learner.checkpoint_minutes = 600;
  config.replay.min_size_to_sample = 16;
  config.replay.sequence_length = 8;
  config.replay.samples_per_insert = 0;
  config.learner.threads = 1;
  config.run.dir = run_dir;
  return config;
}

// Streams `ticks` steps of 2 envs acting at random into the shard at config.replay.addresses.
void FillReplay(const services::Config& config, int ticks) {
  auto envs = envs::VectorEnv::Create(envs::EnvOptionsFromConfig(config, 0), 2);
  ASSERT_TRUE(envs.ok()) << envs.status();
  auto client =
      replay::ShardedReplayClient::Create(replay::ReplayClientOptionsFromConfig(config, nullptr));
  ASSERT_TRUE(client.ok()) << client.status();
  const envs::EnvSpec& spec = (*envs)->spec();
  for (int e = 0; e < 2; ++e) {
    services::StepColumns steps(spec.step_shape());
    ASSERT_TRUE((*envs)->Reset().ok());
    std::vector<int> actions(2);
    std::unique_ptr<replay::InsertWriter> writer =
        (*client)->NewWriter(absl::StrCat("filler/env-", e));
    for (int t = 0; t < ticks; ++t) {
      actions = {t % spec.num_actions, (t * 7) % spec.num_actions};
      steps.Append((*envs)->Record(e, actions[e]));
      ASSERT_TRUE((*envs)->Step(actions).ok());
    }
    replay::StepChunk chunk;
    chunk.actor_id = absl::StrCat("filler/env-", e);
    chunk.num_steps = static_cast<uint32_t>(steps.size());
    chunk.fields = steps.ToTensors();
    ASSERT_TRUE(writer->Send(std::move(chunk)).ok());
    ASSERT_TRUE(writer->Close(absl::Seconds(30)).ok());
  }
}

// Steps until `updates` updates are done (each Step waits up to 1 s for a batch).
void TrainUntil(LearnerLoop& loop, int64_t updates) {
  for (int attempt = 0; attempt < 300 && loop.updates() < updates; ++attempt) {
    absl::StatusOr<bool> stepped = loop.Step(absl::Seconds(1));
    ASSERT_TRUE(stepped.ok()) << stepped.status();
  }
  ASSERT_EQ(loop.updates(), updates);
}

TEST(LearnerLoopTest, TrainsOnReplayPublishesWeightsAndResumesFromItsCheckpoint) {
  dreamfleet::testing::ScopedTempDir run_dir("learner_loop_test_");
  services::Config config = SmallConfig(run_dir.path());
  auto shard = dreamfleet::testing::InProcessShard::Start(config);
  ASSERT_TRUE(shard.ok()) << shard.status();
  config.replay.addresses = (*shard)->address();
  FillReplay(config, 64);

  services::Metrics metrics;
  broadcast::ParameterServiceImpl::Options options;
  options.metrics = &metrics;
  broadcast::ParameterServiceImpl service(options);
  absl::StatusOr<services::StartedServer> server =
      services::StartGrpcServer("127.0.0.1", 0, {&service});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::ParameterService::NewStub(
      services::CreateChannel(services::JoinHostPort("127.0.0.1", server->port)));
  auto status_rpc = [&] {
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(30));
    v1::StatusResponse response;
    EXPECT_TRUE(stub->Status(&context, v1::StatusRequest(), &response).ok());
    return response;
  };
  {
    auto loop = LearnerLoop::Create(config, &service, &metrics);
    ASSERT_TRUE(loop.ok()) << loop.status();
    EXPECT_FALSE((*loop)->resumed());
    TrainUntil(**loop, 3);
    // The first update publishes at once, then every second update.
    EXPECT_EQ((*loop)->weights_version(), 2);
    EXPECT_EQ(service.version(), 2);
    // The Status RPC reports the version just published and the updates done.
    const v1::StatusResponse status = status_rpc();
    EXPECT_EQ(status.weights_version(), 2);
    EXPECT_EQ(status.updates(), 3);
    EXPECT_TRUE(status.losses().count("dyn"));
    (*loop)->Checkpoint();
  }
  status_rpc();  // the loop is gone; the service still answers
  EXPECT_TRUE(std::filesystem::exists(config.run.dir + "/learner"));
  {
    config.learner.max_updates = 5;
    auto resumed = LearnerLoop::Create(config, &service, &metrics);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    EXPECT_TRUE((*resumed)->resumed());
    EXPECT_EQ((*resumed)->updates(), 3);
    // Run trains up to learner.max_updates and checkpoints at the end.
    ASSERT_TRUE((*resumed)->Run().ok());
    EXPECT_EQ((*resumed)->updates(), 5);
    EXPECT_GT((*resumed)->weights_version(), 2);  // versions keep rising across restarts
  }
  auto last = LearnerLoop::Create(config, &service, &metrics);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ((*last)->updates(), 5);
  last->reset();
  service.Shutdown();
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->server->Wait();
}

// Evaluation every 2 updates: its episodes reach /metrics and the best agent <run.dir>/best, and
// none of their steps reach replay.
TEST(LearnerLoopTest, EvaluatesEveryNUpdatesIntoMetricsAndTheBestAgentWithoutFeedingReplay) {
  dreamfleet::testing::ScopedTempDir run_dir("learner_loop_eval_");
  services::Config config = SmallConfig(run_dir.path());
  config.learner.eval_every_updates = 2;
  config.learner.eval_episodes = 2;
  config.learner.eval_max_steps = 30;
  auto shard = dreamfleet::testing::InProcessShard::Start(config);
  ASSERT_TRUE(shard.ok()) << shard.status();
  config.replay.addresses = (*shard)->address();
  FillReplay(config, 64);
  auto client =
      replay::ShardedReplayClient::Create(replay::ReplayClientOptionsFromConfig(config, nullptr));
  ASSERT_TRUE(client.ok()) << client.status();
  auto inserted = [&] {
    const std::vector<replay::ShardStats> stats = (*client)->Info();
    return stats.empty() ? 0 : static_cast<uint64_t>(stats[0].inserted_steps);
  };
  const uint64_t before = inserted();
  ASSERT_EQ(before, 128u);

  services::Metrics metrics;
  broadcast::ParameterServiceImpl::Options options;
  options.metrics = &metrics;
  broadcast::ParameterServiceImpl service(options);
  absl::StatusOr<services::StartedServer> server =
      services::StartGrpcServer("127.0.0.1", 0, {&service});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::ParameterService::NewStub(
      services::CreateChannel(services::JoinHostPort("127.0.0.1", server->port)));
  v1::StatusResponse status;
  {
    auto loop = LearnerLoop::Create(config, &service, &metrics);
    ASSERT_TRUE(loop.ok()) << loop.status();
    grpc::ClientContext context;
    ASSERT_TRUE(stub->Status(&context, v1::StatusRequest(), &status).ok());
    EXPECT_FALSE(status.has_evaluation()) << "an evaluation before the first one ran";
    TrainUntil(**loop, 4);
    grpc::ClientContext again;
    ASSERT_TRUE(stub->Status(&again, v1::StatusRequest(), &status).ok());
  }
  const std::string text = metrics.TextExposition();
  EXPECT_THAT(text, ::testing::HasSubstr("dreamfleet_learner_eval_return{mode=\"greedy\"}"));
  EXPECT_THAT(text, ::testing::HasSubstr("dreamfleet_learner_eval_success{mode=\"sampled\"}"));
  EXPECT_THAT(text, ::testing::HasSubstr("dreamfleet_learner_eval_env_steps 128"));
  EXPECT_TRUE(std::filesystem::exists(config.run.dir + "/best/score.txt"));
  EXPECT_EQ(inserted(), before) << "evaluation episodes reached replay";
  // The Status RPC carries the latest evaluation (for `dreamfleet up`'s curve and progress view).
  ASSERT_TRUE(status.has_evaluation());
  EXPECT_EQ(status.evaluation().env_steps(), 128);
  EXPECT_EQ(status.evaluation().updates(), 4);
  EXPECT_EQ(status.evaluation().episodes(), 2);
  EXPECT_GE(status.evaluation().best_return(), status.evaluation().greedy_return());
  // Each evaluation also wrote the open-loop report of the agent into the run directory, whole.
  for (const char* file : {"/openloop.gif", "/openloop.png"}) {
    EXPECT_GT(std::filesystem::file_size(config.run.dir + file), 100u) << file;
    EXPECT_FALSE(std::filesystem::exists(config.run.dir + file + std::string(".tmp"))) << file;
  }

  // The same run started from its own best agent (its checkpoints moved aside) keeps that agent:
  // with evaluations on, its best/ is not cleared as a fresh run's would be.
  std::error_code no_checkpoint_yet;  // the loop above never checkpointed: nothing to move
  std::filesystem::rename(config.run.dir + "/learner", config.run.dir + "/learner.aside",
                          no_checkpoint_yet);
  {
    auto loop = LearnerLoop::Create(config, &service, &metrics, config.run.dir + "/best");
    ASSERT_TRUE(loop.ok()) << loop.status();
    EXPECT_TRUE((*loop)->resumed());
    EXPECT_TRUE(std::filesystem::exists(config.run.dir + "/best/score.txt"));
    EXPECT_TRUE(std::filesystem::exists(config.run.dir + "/best/latest"));
  }

  // A learner started with init_from = the best agent carries on from it while its own
  // checkpoint directory is empty, and from its own checkpoint once it has one.
  dreamfleet::testing::ScopedTempDir other_dir("learner_loop_init_");
  services::Config other = config;
  other.run.dir = other_dir.path();
  other.learner.eval_every_updates = 0;
  int64_t best_updates = 0;
  {
    auto loop = LearnerLoop::Create(other, &service, &metrics, config.run.dir + "/best");
    ASSERT_TRUE(loop.ok()) << loop.status();
    EXPECT_TRUE((*loop)->resumed());
    best_updates = (*loop)->updates();
    EXPECT_GE(best_updates, 2);  // the first evaluation ran after update 2
    EXPECT_LE(best_updates, 4);
    TrainUntil(**loop, best_updates + 1);
    (*loop)->Checkpoint();
  }
  {
    auto loop = LearnerLoop::Create(other, &service, &metrics, config.run.dir + "/best");
    ASSERT_TRUE(loop.ok()) << loop.status();
    EXPECT_EQ((*loop)->updates(), best_updates + 1) << "a restart went back to the best agent";
  }
  dreamfleet::testing::ScopedTempDir empty_dir("learner_loop_noinit_");
  other.run.dir = empty_dir.path();
  auto missing = LearnerLoop::Create(other, &service, &metrics, empty_dir.path() + "/none");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_THAT(std::string(missing.status().message()), ::testing::HasSubstr("/none"));
  service.Shutdown();
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->server->Wait();
}

TEST(LearnerLoopTest, AnUnknownEnvIsAnErrorNamingIt) {
  dreamfleet::testing::ScopedTempDir run_dir("learner_loop_test_");
  services::Config config = SmallConfig(run_dir.path());
  config.env.name = "grid_nowhere";
  config.replay.addresses = "127.0.0.1:1";
  services::Metrics metrics;
  broadcast::ParameterServiceImpl service(broadcast::ParameterServiceImpl::Options{});
  auto loop = LearnerLoop::Create(config, &service, &metrics);
  EXPECT_TRUE(absl::IsNotFound(loop.status())) << loop.status();
  EXPECT_NE(loop.status().message().find("grid_nowhere"), std::string::npos);
}

}  // namespace
}  // namespace dreamfleet::learner
