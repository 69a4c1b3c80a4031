// kill -9 of a real shard in the middle of an insert stream loses no acknowledged step; a torn
// write-ahead log tail is dropped on restart without crashing; checkpoints and WAL restore
// together.
#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replay_server/write_ahead_log.h"
#include "tests/replay_test_util.h"

namespace dreamfleet::replay {
namespace {

using testing::ChunkSpec;
using testing::MakeChunk;
using testing::StartShard;

constexpr uint32_t kStepsPerChunk = 8;

v1::InsertRequest Request(uint64_t sequence) {
  ChunkSpec spec;
  spec.actor_id = "durable";
  spec.sequence = sequence;
  spec.num_steps = kStepsPerChunk;
  spec.first_step_value = static_cast<uint32_t>(sequence * kStepsPerChunk);
  if (sequence == 0) spec.episode_starts = {0};
  v1::InsertRequest request;
  *request.mutable_chunk() = MakeChunk(spec);
  return request;
}

v1::TableInfo Info(const std::string& address) {
  auto stub = testing::NewStub(address);
  v1::InfoResponse info;
  grpc::ClientContext context;
  services::SetDeadline(&context, absl::Seconds(60));
  EXPECT_TRUE(stub->Info(&context, v1::InfoRequest(), &info).ok());
  return info.tables(0);
}

// Every stored step of the one episode, in order: step k carries the value k.
void ExpectContiguousSteps(const std::string& address, uint64_t expected_steps) {
  auto stub = testing::NewStub(address);
  v1::GetEpisodeRequest request;
  request.set_episode_id(0);
  grpc::ClientContext context;
  services::SetDeadline(&context, absl::Seconds(60));
  auto reader = stub->GetEpisode(&context, request);
  v1::GetEpisodeResponse message;
  uint64_t steps = 0;
  while (reader->Read(&message)) {
    const std::string& image = message.data(0).tensor().data();
    for (int64_t k = 0; k < message.data(0).tensor().shape(0); ++k) {
      ASSERT_EQ(static_cast<uint8_t>(image[k * 48]), static_cast<uint8_t>(steps + k));
    }
    steps += message.data(0).tensor().shape(0);
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(steps, expected_steps);
}

TEST(ReplayDurabilityTest, KillNineMidStreamLosesNoAcknowledgedStep) {
  const std::string dir = dreamfleet::testing::MakeTempDir("replay_durability_");
  // Checkpoints every second so the restore reads a checkpoint and the WAL after it.
  auto shard = StartShard(dir, {"replay.checkpoint_interval_s=1", "replay.wal_fsync_interval_ms=2",
                                "replay.compression=zstd"});
  ASSERT_TRUE(shard.ok()) << shard.status();

  auto stub = testing::NewStub(shard->address());
  grpc::ClientContext context;
  auto stream = stub->Insert(&context);
  constexpr uint64_t kChunks = 4000;
  std::thread writer([&] {
    for (uint64_t i = 0; i < kChunks; ++i) {
      if (!stream->Write(Request(i))) return;
    }
    stream->WritesDone();
  });
  uint64_t acked = 0;
  v1::InsertResponse ack;
  bool killed = false;
  while (stream->Read(&ack)) {
    EXPECT_EQ(ack.sequence(), acked);
    ++acked;
    if (acked == 600 && !killed) {
      shard->process->Kill();  // SIGKILL while chunks are still arriving
      killed = true;
    }
  }
  writer.join();
  (void)stream->Finish();
  ASSERT_TRUE(killed) << "the stream ended after " << acked << " acks";
  ASSERT_GE(acked, 600u);

  auto restarted = StartShard(dir);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  const v1::TableInfo info = Info(restarted->address());
  EXPECT_GE(info.size_steps(), acked * kStepsPerChunk);
  EXPECT_EQ(info.size_steps() % kStepsPerChunk, 0u);
  ASSERT_EQ(info.actors_size(), 1);
  EXPECT_EQ(info.actors(0).steps(), info.size_steps());
  ExpectContiguousSteps(restarted->address(), info.size_steps());

  // Tear the newest WAL file: a record header announcing more bytes than the file holds, and
  // garbage. The restart drops it with a warning and keeps serving.
  restarted->process->Kill();
  auto files = WriteAheadLog::ListFiles(dir);
  ASSERT_FALSE(files.empty());
  {
    std::ofstream torn(files.back().second, std::ios::app | std::ios::binary);
    const char garbage[] = "\xff\xff\x00\x10\x12\x34\x56\x78partial record";
    torn.write(garbage, sizeof(garbage));
  }
  auto again = StartShard(dir, {"replay.compression=zstd"});  // its last checkpoint decompresses
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Info(again->address()).size_steps(), info.size_steps());

  // The stream goes on where it stopped.
  const uint64_t next = info.size_steps() / kStepsPerChunk;
  auto stub2 = testing::NewStub(again->address());
  grpc::ClientContext context2;
  auto stream2 = stub2->Insert(&context2);
  ASSERT_TRUE(stream2->Write(Request(next)));
  ASSERT_TRUE(stream2->Read(&ack));
  EXPECT_EQ(ack.sequence(), next);
  stream2->WritesDone();
  ASSERT_TRUE(stream2->Finish().ok());
  ExpectContiguousSteps(again->address(), info.size_steps() + kStepsPerChunk);

  // A clean stop writes a checkpoint; the next start restores it alone.
  absl::StatusOr<int> code = again->process->Stop();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  auto last = StartShard(dir);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(Info(last->address()).size_steps(), info.size_steps() + kStepsPerChunk);
}

// Draws `batches` batches of 2 x 8 steps.
void SampleBatches(const std::string& address, int batches) {
  auto stub = testing::NewStub(address);
  v1::SampleRequest request;
  request.set_batch_size(2);
  request.set_sequence_length(8);
  request.set_num_batches(batches);
  request.set_timeout_ms(30000);
  grpc::ClientContext context;
  services::SetDeadline(&context, absl::Seconds(60));
  auto reader = stub->Sample(&context, request);
  v1::SampleResponse response;
  int received = 0;
  while (reader->Read(&response)) ++received;
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(received, batches);
}

// Inserts chunks [first, first + count) of the "durable" stream; every one is acknowledged.
void InsertChunks(const std::string& address, uint64_t first, uint64_t count) {
  auto stub = testing::NewStub(address);
  grpc::ClientContext context;
  auto stream = stub->Insert(&context);
  for (uint64_t i = first; i < first + count; ++i) ASSERT_TRUE(stream->Write(Request(i)));
  stream->WritesDone();
  v1::InsertResponse ack;
  uint64_t acked = 0;
  while (stream->Read(&ack)) ++acked;
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(acked, count);
}

TEST(ReplayDurabilityTest, ARestartKeepsEveryCounterTheRateLimiterReads) {
  const std::string dir = dreamfleet::testing::MakeTempDir("replay_counters_");
  // A rate limiter with a ratio: 2 replayed steps per inserted step (slack for the test).
  const std::vector<std::string> sets = {
      "replay.checkpoint_interval_s=3600", "replay.samples_per_insert=2",
      "replay.limiter_tolerance=1000", "replay.min_size_to_sample=16", "replay.sequence_length=8"};
  {
    auto shard = StartShard(dir, sets);
    ASSERT_TRUE(shard.ok()) << shard.status();
    InsertChunks(shard->address(), 0, 10);
    SampleBatches(shard->address(), 5);
    absl::StatusOr<int> code = shard->process->Stop();  // a clean stop writes a checkpoint
    ASSERT_TRUE(code.ok());
    ASSERT_EQ(*code, 0);
  }
  auto shard = StartShard(dir, sets);
  ASSERT_TRUE(shard.ok()) << shard.status();
  // After the checkpoint: more chunks and samples, only in the write-ahead log.
  InsertChunks(shard->address(), 10, 6);
  SampleBatches(shard->address(), 7);
  const v1::TableInfo before = Info(shard->address());
  EXPECT_EQ(before.inserted_steps(), 16 * kStepsPerChunk);
  EXPECT_EQ(before.sampled_steps(), 12u * 2 * 8);
  EXPECT_EQ(before.sampled_items(), 12u * 2);
  shard->process->Kill();

  auto restarted = StartShard(dir, sets);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  const v1::TableInfo after = Info(restarted->address());
  EXPECT_EQ(after.inserted_steps(), before.inserted_steps());
  EXPECT_EQ(after.sampled_steps(), before.sampled_steps());
  EXPECT_EQ(after.sampled_items(), before.sampled_items());
  EXPECT_EQ(after.size_steps(), before.size_steps());
  EXPECT_EQ(after.items(), before.items());
  EXPECT_EQ(after.episodes(), before.episodes());
  EXPECT_EQ(after.evicted_steps(), before.evicted_steps());
  EXPECT_EQ(after.limiter().inserts_blocked(), before.limiter().inserts_blocked());
  EXPECT_EQ(after.limiter().samples_blocked(), before.limiter().samples_blocked());
  // And the limiter lets the stream go on at once: the next chunk is acknowledged.
  InsertChunks(restarted->address(), 16, 1);
}

}  // namespace
}  // namespace dreamfleet::replay
