// Two real shard processes behind one ShardedReplayClient: actors land on the shard their id
// hashes to, samples come from both (over one kept-open Sample stream per shard), the client
// keeps sampling while one shard is killed and comes back to it (and re-sends unacknowledged
// chunks) once it restarts on the same port. The `dreamfleet replay` CLI backend reads the same
// shards.
#include <fstream>
#include <set>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replay_server/replay_cli.h"
#include "services/hash.h"
#include "services/metrics.h"
#include "tests/replay_test_util.h"

namespace dreamfleet::replay {
namespace {

using ::testing::HasSubstr;
using testing::ChunkSpec;
using testing::MakeChunk;
using testing::StartShard;
using testing::ToStepChunk;

TEST(Fnv1aTest, MatchesTheReferenceValues) {
  EXPECT_EQ(services::Fnv1a64(""), 14695981039346656037ull);
  EXPECT_EQ(services::Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(services::Fnv1a64("foobar"), 0x85944171f73967e8ull);
}

std::string Text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(ReplayShardedTest, RoutesByActorSamplesBothAndSurvivesAShardRestart) {
  const std::string dir0 = dreamfleet::testing::MakeTempDir("replay_shard0_");
  const std::string dir1 = dreamfleet::testing::MakeTempDir("replay_shard1_");
  auto shard0 = StartShard(dir0);
  auto shard1 = StartShard(dir1);
  ASSERT_TRUE(shard0.ok()) << shard0.status();
  ASSERT_TRUE(shard1.ok()) << shard1.status();
  services::Metrics metrics;
  ReplayClientOptions options;
  options.addresses = {shard0->address(), shard1->address()};
  options.metrics = &metrics;
  options.rpc_timeout = absl::Seconds(60);
  options.max_backoff = absl::Milliseconds(500);
  auto client = ShardedReplayClient::Create(options);
  ASSERT_TRUE(client.ok());

  // Eight actors, two chunks of 16 steps each.
  std::map<std::string, std::unique_ptr<InsertWriter>> writers;
  std::set<std::string> on_shard[2];
  for (int a = 0; a < 8; ++a) {
    const std::string actor = absl::StrCat("actor-", a);
    auto writer = (*client)->NewWriter(actor);
    EXPECT_EQ(writer->shard(), static_cast<int>(services::Fnv1a64(actor) % 2));
    on_shard[writer->shard()].insert(actor);
    for (uint64_t i = 0; i < 2; ++i) {
      ChunkSpec spec;
      spec.actor_id = actor;
      spec.sequence = i;
      spec.num_steps = 16;
      spec.episode_starts = {0};
      spec.episode_ends = {15};
      ASSERT_TRUE(writer->Send(ToStepChunk(MakeChunk(spec))).ok());
    }
    writers[actor] = std::move(writer);
  }
  for (auto& [actor, writer] : writers) ASSERT_TRUE(writer->Flush(absl::Seconds(60)).ok());
  // Every stream of an actor (one per env and process start) lands on the actor's shard.
  for (int a = 0; a < 8; ++a) {
    const std::string actor = absl::StrCat("actor-", a);
    for (const char* stream : {"/env-0/1", "/env-3/1", "/env-0/2"}) {
      EXPECT_EQ((*client)->NewWriter(actor + stream, actor)->shard(),
                static_cast<int>(services::Fnv1a64(actor) % 2))
          << actor << stream;
    }
  }
  ASSERT_FALSE(on_shard[0].empty());
  ASSERT_FALSE(on_shard[1].empty());
  std::vector<ShardStats> stats = (*client)->Info();
  for (int s = 0; s < 2; ++s) {
    EXPECT_TRUE(stats[s].up);
    EXPECT_EQ(stats[s].size_steps, on_shard[s].size() * 32);
  }

  // Samples come from both shards (each holds at least 1/8 of the data).
  std::set<int> served;
  for (int i = 0; i < 100 && served.size() < 2; ++i) {
    absl::StatusOr<SampledBatch> batch = (*client)->Sample(2, 8, absl::Seconds(60));
    ASSERT_TRUE(batch.ok()) << batch.status();
    served.insert(batch->shard);
  }
  EXPECT_EQ(served.size(), 2u);

  // Shard 1 dies. Batches its open stream had already received may still be returned (they are
  // valid data) until the client sees the stream break and marks the shard down; from then on
  // every sample comes from shard 0.
  const int port1 = shard1->port;
  shard1->process->Kill();
  const std::string down1 = "dreamfleet_replay_client_shard_up{shard=\"1\"} 0";
  for (int i = 0; i < 10000 && metrics.TextExposition().find(down1) == std::string::npos; ++i) {
    absl::StatusOr<SampledBatch> batch = (*client)->Sample(2, 8, absl::Seconds(60));
    ASSERT_TRUE(batch.ok()) << batch.status();
  }
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<SampledBatch> batch = (*client)->Sample(2, 8, absl::Seconds(60));
    ASSERT_TRUE(batch.ok()) << batch.status();
    EXPECT_EQ(batch->shard, 0);
  }
  EXPECT_THAT(metrics.TextExposition(),
              HasSubstr("dreamfleet_replay_client_shard_up{shard=\"1\"} 0"));
  // An actor of shard 1 keeps sending; its chunk waits in the writer.
  const std::string actor1 = *on_shard[1].begin();
  ChunkSpec spec;
  spec.actor_id = actor1;
  spec.sequence = 2;
  spec.num_steps = 16;
  ASSERT_TRUE(writers[actor1]->Send(ToStepChunk(MakeChunk(spec))).ok());

  // Shard 1 restarts on its port with its data: the client samples from it again and the
  // writer's chunk arrives.
  auto restarted = StartShard(dir1, {}, port1);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_TRUE(writers[actor1]->Flush(absl::Seconds(120)).ok());
  bool back = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  while (!back && absl::Now() < give_up) {
    absl::StatusOr<SampledBatch> batch = (*client)->Sample(2, 8, absl::Seconds(60));
    ASSERT_TRUE(batch.ok()) << batch.status();
    back = batch->shard == 1;
  }
  EXPECT_TRUE(back);
  EXPECT_EQ((*client)->Info()[1].size_steps, on_shard[1].size() * 32 + 16);
  EXPECT_THAT(metrics.TextExposition(),
              HasSubstr("dreamfleet_replay_client_shard_up{shard=\"1\"} 1"));
  EXPECT_THAT(metrics.TextExposition(),
              ::testing::Not(HasSubstr("dreamfleet_replay_client_reconnects_total{shard=\"1\"} 0")));

  // The CLI backend against the same shards.
  std::ostringstream out, err;
  ASSERT_EQ(RunReplayCommand({"replay", "info", "--address", shard0->address()}, out, err), 0)
      << err.str();
  EXPECT_THAT(out.str(), HasSubstr("table \"default\""));
  EXPECT_THAT(out.str(), HasSubstr("image uint8[4,4,3]"));
  out.str("");
  ASSERT_EQ(RunReplayCommand({"replay", "info", "--json", "--set",
                              "replay.addresses=" + shard0->address() + "," +
                                  restarted->address()},
                             out, err),
            0)
      << err.str();
  EXPECT_THAT(out.str(), HasSubstr("{\"shards\":[{\"address\":\"" + shard0->address()));
  EXPECT_THAT(out.str(), HasSubstr("\"size_steps\""));
  out.str("");
  ASSERT_EQ(RunReplayCommand({"replay", "episodes", "--address", shard0->address(), "--actor",
                              *on_shard[0].begin()},
                             out, err),
            0)
      << err.str();
  EXPECT_THAT(out.str(), HasSubstr(*on_shard[0].begin()));
  EXPECT_THAT(out.str(), HasSubstr("complete"));
  const std::string gif = dir0 + "/episode.gif";
  out.str("");
  ASSERT_EQ(RunReplayCommand({"replay", "export", "--address", shard0->address(), "--episode",
                              "0", "--out", gif},
                             out, err),
            0)
      << err.str();
  EXPECT_EQ(Text(gif).substr(0, 6), "GIF89a");
  EXPECT_THAT(Text(dir0 + "/episode.json"), HasSubstr("\"reward\":[1,1,1"));
  const std::string png = dir0 + "/episode.png";
  ASSERT_EQ(RunReplayCommand({"replay", "export", "--address", shard0->address(), "--episode",
                              "0", "--out", png},
                             out, err),
            0)
      << err.str();
  EXPECT_EQ(Text(png).substr(1, 3), "PNG");
  err.str("");
  EXPECT_EQ(RunReplayCommand({"replay", "export", "--address", shard0->address(), "--episode",
                              "123456", "--out", gif},
                             out, err),
            1);
  EXPECT_THAT(err.str(), HasSubstr("episode id 123456 is not stored"));
  EXPECT_EQ(RunReplayCommand({"replay", "frobnicate"}, out, err), 2);
  for (auto& [actor, writer] : writers) EXPECT_TRUE(writer->Close().ok());
}

}  // namespace
}  // namespace dreamfleet::replay
