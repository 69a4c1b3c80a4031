// A real dreamfleet-replay process on port 0: chunks go in through the sharded client, batches,
// info and episodes come out; the rate limiter blocks inserts and samples; the prioritized
// selector follows priorities sent by UpdatePriorities; consecutive samples share one Sample
// stream; a writer whose chunks the limiter holds closes in time.
#include <future>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/metrics.h"
#include "tests/replay_test_util.h"

namespace dreamfleet::replay {
namespace {

using ::testing::HasSubstr;
using testing::ChunkSpec;
using testing::MakeChunk;
using testing::StartShard;
using testing::ToStepChunk;

std::unique_ptr<ShardedReplayClient> Client(const std::string& address) {
  ReplayClientOptions options;
  options.addresses = {address};
  options.rpc_timeout = absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<ShardedReplayClient>> client =
      ShardedReplayClient::Create(options);
  EXPECT_TRUE(client.ok());
  return std::move(*client);
}

// A writer for `actor_id` whose one chunk, a whole 16-step episode, the shard has acknowledged.
absl::StatusOr<std::unique_ptr<InsertWriter>> WriteOneEpisode(ShardedReplayClient& client,
                                                              const std::string& actor_id) {
  std::unique_ptr<InsertWriter> writer = client.NewWriter(actor_id);
  ChunkSpec spec;
  spec.actor_id = actor_id;
  spec.num_steps = 16;
  spec.episode_starts = {0};
  if (absl::Status s = writer->Send(ToStepChunk(MakeChunk(spec))); !s.ok()) return s;
  if (absl::Status s = writer->Flush(absl::Seconds(60)); !s.ok()) return s;
  return writer;
}

TEST(ReplayServiceTest, InsertSampleInfoAndEpisodes) {
  auto shard = StartShard(dreamfleet::testing::MakeTempDir("replay_service_"));
  ASSERT_TRUE(shard.ok()) << shard.status();
  auto client = Client(shard->address());
  auto writer = client->NewWriter("actor-7");
  // 4 chunks of 16 steps; episodes of 20 steps: starts at 0, 20, 40, 60.
  for (uint64_t i = 0; i < 4; ++i) {
    ChunkSpec spec;
    spec.actor_id = "actor-7";
    spec.sequence = i;
    spec.num_steps = 16;
    spec.first_step_value = 16 * i;
    for (int k = 0; k < 16; ++k) {
      const int step = 16 * i + k;
      if (step % 20 == 0) spec.episode_starts.push_back(k);
      if (step % 20 == 19) spec.episode_ends.push_back(k);
    }
    spec.reward = static_cast<float>(i);
    ASSERT_TRUE(writer->Send(ToStepChunk(MakeChunk(spec))).ok());
  }
  ASSERT_TRUE(writer->Flush(absl::Seconds(60)).ok());
  EXPECT_EQ(writer->acknowledged(), 4u);

  absl::StatusOr<SampledBatch> batch = client->Sample(5, 8, absl::Seconds(60));
  ASSERT_TRUE(batch.ok()) << batch.status();
  const services::NamedTensor* image = batch->Find("image");
  ASSERT_NE(image, nullptr);
  EXPECT_THAT(image->shape, ::testing::ElementsAre(5, 8, 4, 4, 3));
  EXPECT_EQ(batch->keys.size(), 5u);
  for (int b = 0; b < 5; ++b) {
    const uint8_t first = image->data[b * 8 * 48];
    EXPECT_EQ(first, batch->keys[b]);  // one actor: step id == step value
    for (int t = 1; t < 8; ++t) EXPECT_EQ(static_cast<uint8_t>(image->data[(b * 8 + t) * 48]), first + t);
  }

  std::vector<ShardStats> stats = client->Info();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_TRUE(stats[0].up);
  EXPECT_EQ(stats[0].size_steps, 64u);
  EXPECT_EQ(stats[0].items, 64u - 8 + 1);
  EXPECT_EQ(stats[0].episodes, 4u);
  // The client's Sample stream stays open and the shard draws batches ahead of the reader (up to
  // what the stream's flow control lets through), so whole extra batches may be counted.
  EXPECT_GE(stats[0].sampled_items, 5u);
  EXPECT_EQ(stats[0].sampled_items % 5, 0u);

  auto stub = testing::NewStub(shard->address());
  v1::ListEpisodesRequest list_request;
  list_request.set_page_size(2);
  v1::ListEpisodesResponse page;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->ListEpisodes(&context, list_request, &page).ok());
  }
  ASSERT_EQ(page.episodes_size(), 2);
  EXPECT_EQ(page.total_matching(), 4u);
  EXPECT_EQ(page.episodes(0).actor_id(), "actor-7");
  EXPECT_EQ(page.episodes(0).length(), 20u);
  EXPECT_DOUBLE_EQ(page.episodes(0).episode_return(), 16 * 0 + 4 * 1.0);
  EXPECT_TRUE(page.episodes(0).complete());
  ASSERT_FALSE(page.next_page_token().empty());
  list_request.set_page_token(page.next_page_token());
  v1::ListEpisodesResponse second;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->ListEpisodes(&context, list_request, &second).ok());
  }
  ASSERT_EQ(second.episodes_size(), 2);
  EXPECT_EQ(second.episodes(0).id(), 40u);
  EXPECT_TRUE(second.next_page_token().empty());
  // Filters: actor and return range.
  v1::ListEpisodesRequest filtered;
  filtered.set_actor_id("someone-else");
  v1::ListEpisodesResponse none;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->ListEpisodes(&context, filtered, &none).ok());
  }
  EXPECT_EQ(none.episodes_size(), 0);
  filtered.set_actor_id("actor-7");
  filtered.set_min_return(40);  // episodes 2 (steps 40..59: 8*2 + 12*3 = 52) and 3 (4*3... )
  v1::ListEpisodesResponse rich;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->ListEpisodes(&context, filtered, &rich).ok());
  }
  ASSERT_EQ(rich.episodes_size(), 1);
  EXPECT_EQ(rich.episodes(0).id(), 40u);

  v1::GetEpisodeRequest get;
  get.set_episode_id(20);
  get.set_max_steps_per_message(6);
  grpc::ClientContext context;
  auto reader = stub->GetEpisode(&context, get);
  v1::GetEpisodeResponse message;
  uint64_t steps = 0;
  bool first = true;
  while (reader->Read(&message)) {
    if (first) EXPECT_EQ(message.info().id(), 20u);
    first = false;
    EXPECT_EQ(message.first_step(), steps);
    const std::string& bytes = message.data(0).tensor().data();
    for (int64_t k = 0; k < message.data(0).tensor().shape(0); ++k) {
      EXPECT_EQ(static_cast<uint8_t>(bytes[k * 48]), 20 + steps + k);
    }
    steps += message.data(0).tensor().shape(0);
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(steps, 20u);

  absl::StatusOr<std::string> metrics =
      services::HttpGet("127.0.0.1", shard->metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics, HasSubstr("dreamfleet_replay_inserted_steps_total{table=\"default\"} 64"));
  EXPECT_THAT(*metrics, HasSubstr("dreamfleet_replay_wal_fsync_seconds"));
  EXPECT_THAT(*metrics, HasSubstr("dreamfleet_replay_rpc_latency_seconds_count{method=\"Sample\"}"));
  absl::StatusOr<std::string> health = services::HttpGet("127.0.0.1", shard->metrics_port, "/healthz");
  ASSERT_TRUE(health.ok());
  ASSERT_TRUE(writer->Close().ok());
  absl::StatusOr<int> code = shard->process->Stop();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

TEST(ReplayServiceTest, LimiterBlocksInsertsAndSamplesUntilTheOtherSideCatchesUp) {
  // One replayed step per inserted step, 16 steps of slack, sampling from 16 steps.
  auto shard = StartShard(dreamfleet::testing::MakeTempDir("replay_limiter_"),
                          {"replay.samples_per_insert=1", "replay.limiter_tolerance=16",
                           "replay.min_size_to_sample=16"});
  ASSERT_TRUE(shard.ok()) << shard.status();
  auto client = Client(shard->address());
  // Nothing stored: a sample waits and gives up at its deadline.
  absl::StatusOr<SampledBatch> early = client->Sample(1, 8, absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(early.status())) << early.status();

  auto writer = client->NewWriter("a");
  ChunkSpec spec;
  spec.actor_id = "a";
  spec.num_steps = 16;
  spec.episode_starts = {0};
  // 16 steps: error 16 - 0 = r*m; 32 steps: 32 <= 16 + 16 is allowed; 48 is not.
  for (uint64_t i = 0; i < 3; ++i) {
    spec.sequence = i;
    ASSERT_TRUE(writer->Send(ToStepChunk(MakeChunk(spec))).ok());
  }
  EXPECT_TRUE(absl::IsDeadlineExceeded(writer->Flush(absl::Milliseconds(500))));
  EXPECT_EQ(writer->acknowledged(), 2u);
  std::vector<ShardStats> stats = client->Info();
  EXPECT_EQ(stats[0].size_steps, 32u);

  // Two batches of 1 x 8 replay 16 steps: the third chunk may go in.
  ASSERT_TRUE(client->Sample(1, 8, absl::Seconds(60)).ok());
  ASSERT_TRUE(client->Sample(1, 8, absl::Seconds(60)).ok());
  ASSERT_TRUE(writer->Flush(absl::Seconds(60)).ok());
  EXPECT_EQ(writer->acknowledged(), 3u);
  // Now sampled 16, inserted 48: samples may run to 48 - (16 - 16) = 48 replayed steps.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(client->Sample(1, 8, absl::Seconds(60)).ok());
  absl::StatusOr<SampledBatch> blocked = client->Sample(1, 8, absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(blocked.status())) << blocked.status();

  auto stub = testing::NewStub(shard->address());
  v1::InfoResponse info;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Info(&context, v1::InfoRequest(), &info).ok());
  const v1::RateLimiterInfo& limiter = info.tables(0).limiter();
  EXPECT_DOUBLE_EQ(limiter.samples_per_insert(), 1.0);
  EXPECT_GT(limiter.insert_wait_seconds(), 0);
  EXPECT_GT(limiter.sample_wait_seconds(), 0);
  ASSERT_TRUE(writer->Close().ok());
}

// Stopping an actor whose shard's limiter holds its chunks (the learner samples no more): 16
// chunks of 64 64x64x3 steps (12.6 MB) are more than the stream's flow-control window, so the
// writer's thread waits inside a Write that the shard will not take. Close must abandon them at
// its timeout (cancelling the call) and keep what was acknowledged, not wait for that Write.
TEST(ReplayServiceTest, CloseAbandonsChunksTheLimiterHoldsWithoutWaitingForABlockedWrite) {
  auto shard = StartShard(dreamfleet::testing::MakeTempDir("replay_close_blocked_"),
                          {"replay.samples_per_insert=1", "replay.limiter_tolerance=64",
                           "replay.min_size_to_sample=64", "replay.capacity_steps=10000"});
  ASSERT_TRUE(shard.ok()) << shard.status();
  auto client = Client(shard->address());
  auto writer = client->NewWriter("a");
  ChunkSpec spec;
  spec.actor_id = "a";
  spec.num_steps = 64;
  spec.image_size = 64;
  spec.episode_starts = {0};
  for (uint64_t i = 0; i < 16; ++i) {
    spec.sequence = i;
    ASSERT_TRUE(writer->Send(ToStepChunk(MakeChunk(spec))).ok());
  }
  // 64 steps of slack and nothing sampled: the limiter lets at most two chunks in, and the
  // shard reads no further.
  EXPECT_TRUE(absl::IsDeadlineExceeded(writer->Flush(absl::Seconds(1))));
  const uint64_t acknowledged = writer->acknowledged();
  EXPECT_LE(acknowledged, 2u);

  std::future<absl::Status> closed =
      std::async(std::launch::async, [&] { return writer->Close(absl::Milliseconds(200)); });
  if (closed.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "Close(200 ms) still waiting after 30 s: the writer's blocked Write was "
                     "not cancelled";
    shard->process->Kill();  // ends the Write, so that the test can finish
    closed.wait();
    return;
  }
  const absl::Status status = closed.get();
  EXPECT_FALSE(status.ok()) << "16 chunks were sent and at most 2 acknowledged";
  // What was acknowledged stays stored.
  std::vector<ShardStats> stats = client->Info();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_GE(stats[0].size_steps, acknowledged * 64);
}

// The client keeps one Sample stream open per shard: five batches, one Sample RPC on the
// shard; a different batch size opens a second stream.
TEST(ReplayServiceTest, ConsecutiveSamplesReuseOneStream) {
  auto shard = StartShard(dreamfleet::testing::MakeTempDir("replay_stream_"));
  ASSERT_TRUE(shard.ok()) << shard.status();
  auto client = Client(shard->address());
  absl::StatusOr<std::unique_ptr<InsertWriter>> writer = WriteOneEpisode(*client, "s");
  ASSERT_TRUE(writer.ok()) << writer.status();
  auto streams = [&]() -> std::string {
    absl::StatusOr<std::string> text = services::HttpGet("127.0.0.1", shard->metrics_port,
                                                         "/metrics");
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : "";
  };
  EXPECT_THAT(streams(), HasSubstr("dreamfleet_replay_sample_streams_total 0\n"));
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<SampledBatch> batch = client->Sample(2, 8, absl::Seconds(60));
    ASSERT_TRUE(batch.ok()) << batch.status();
    EXPECT_EQ(batch->keys.size(), 2u);
    EXPECT_EQ(batch->shard, 0);
    ASSERT_NE(batch->Find("image"), nullptr);
    EXPECT_THAT(batch->Find("image")->shape, ::testing::ElementsAre(2, 8, 4, 4, 3));
  }
  EXPECT_THAT(streams(), HasSubstr("dreamfleet_replay_sample_streams_total 1\n"));
  // Priorities still go to the shard the batch came from.
  absl::StatusOr<SampledBatch> batch = client->Sample(2, 8, absl::Seconds(60));
  ASSERT_TRUE(batch.ok()) << batch.status();
  absl::StatusOr<uint64_t> updated =
      client->UpdatePriorities(batch->shard, batch->keys, std::vector<double>(2, 1.0));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_GE(*updated, 1u);
  // Another batch size replaces the stream.
  batch = client->Sample(1, 8, absl::Seconds(60));
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_NE(batch->Find("image"), nullptr);
  EXPECT_THAT(batch->Find("image")->shape, ::testing::ElementsAre(1, 8, 4, 4, 3));
  EXPECT_THAT(streams(), HasSubstr("dreamfleet_replay_sample_streams_total 2\n"));
  ASSERT_TRUE((*writer)->Close().ok());
}

TEST(ReplayServiceTest, PrioritizedSamplingFollowsUpdatedPriorities) {
  auto shard = StartShard(dreamfleet::testing::MakeTempDir("replay_prioritized_"),
                          {"replay.selector=prioritized", "replay.priority_exponent=1"});
  ASSERT_TRUE(shard.ok()) << shard.status();
  auto client = Client(shard->address());
  absl::StatusOr<std::unique_ptr<InsertWriter>> writer = WriteOneEpisode(*client, "p");
  ASSERT_TRUE(writer.ok()) << writer.status();
  // Items start at steps 0..8. Only item 3 keeps a priority; item 6 gets a third of it.
  std::vector<uint64_t> keys;
  std::vector<double> priorities;
  for (uint64_t k = 0; k <= 8; ++k) {
    keys.push_back(k);
    priorities.push_back(k == 3 ? 3.0 : k == 6 ? 1.0 : 0.0);
  }
  keys.push_back(1000);  // unknown: skipped
  priorities.push_back(1.0);
  absl::StatusOr<uint64_t> updated = client->UpdatePriorities(0, keys, priorities);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(*updated, 9u);
  int count3 = 0, count6 = 0;
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<SampledBatch> batch = client->Sample(32, 8, absl::Seconds(60));
    ASSERT_TRUE(batch.ok()) << batch.status();
    for (size_t b = 0; b < batch->keys.size(); ++b) {
      ASSERT_TRUE(batch->keys[b] == 3 || batch->keys[b] == 6) << batch->keys[b];
      EXPECT_DOUBLE_EQ(batch->probabilities[b], batch->keys[b] == 3 ? 0.75 : 0.25);
      (batch->keys[b] == 3 ? count3 : count6)++;
    }
  }
  EXPECT_GT(count3, count6);  // 256 draws at 3:1; failing needs a 10-sigma event
  ASSERT_TRUE((*writer)->Close().ok());
}

}  // namespace
}  // namespace dreamfleet::replay
