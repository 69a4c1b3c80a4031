// InsertStream against a real ReplayShard in a temp dir, driven by a fake client in place of the
// gRPC stream: acknowledgement order and durability, rejections, cancellation and a client that
// stops receiving. The test waits on the points the stream reaches (asking for the next request,
// checking for cancellation), never on time.
#include "replay_server/insert_stream.h"

#include <cstdlib>
#include <deque>
#include <limits>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replay_server/test_util.h"

namespace dreamfleet::replay {
namespace {

using testing::ChunkSpec;
using ::testing::HasSubstr;
using testing::MakeChunk;

std::string TempDir() {
  std::string pattern = ::testing::TempDir() + "/insert_stream_XXXXXX";
  return mkdtemp(pattern.data());
}

ShardOptions Options(absl::Duration fsync_interval = absl::Milliseconds(1)) {
  ShardOptions options;
  options.data_dir = TempDir();
  options.table.sequence_length = 4;
  options.table.capacity_steps = 1000;
  options.fsync_interval = fsync_interval;
  options.checkpoint_interval = absl::Hours(1);
  return options;
}

std::unique_ptr<ReplayShard> OpenShard(ShardOptions options, services::Metrics* metrics) {
  absl::StatusOr<std::unique_ptr<ReplayShard>> shard = ReplayShard::Open(options, metrics);
  EXPECT_TRUE(shard.ok()) << shard.status();
  return shard.ok() ? std::move(*shard) : nullptr;
}

// Chunk `sequence` of `actor`: 8 steps, the first chunk starting an episode.
v1::InsertRequest Request(uint64_t sequence, const std::string& actor = "actor-0") {
  ChunkSpec spec;
  spec.actor_id = actor;
  spec.sequence = sequence;
  spec.first_step_value = 8 * sequence;
  if (sequence == 0) spec.episode_starts = {0};
  v1::InsertRequest request;
  *request.mutable_chunk() = MakeChunk(spec);
  return request;
}

// The client end of an Insert call, driven by the test.
class FakeClient final : public InsertStream::Peer {
 public:
  void Send(v1::InsertRequest request) {
    absl::MutexLock lock(&mu_);
    requests_.push_back(std::move(request));
  }
  void Finish() {
    absl::MutexLock lock(&mu_);
    finished_ = true;
  }
  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  // After the queued requests, request k (counting from 0) is `endless(k)`, forever.
  void SendForever(std::function<v1::InsertRequest(uint64_t)> endless) {
    absl::MutexLock lock(&mu_);
    endless_ = std::move(endless);
  }
  // Every Write fails, as when the client went away.
  void FailWrites() {
    absl::MutexLock lock(&mu_);
    fail_writes_ = true;
  }
  // Blocks until the stream asked for request `n` (from 1): it has handled the n - 1 before it.
  void AwaitRead(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return reads_ >= n; };
    mu_.Await(absl::Condition(&reached));
  }
  // Blocks until the stream checked for cancellation `n` times (a limiter wait slice ran out).
  void AwaitCancelCheck(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return cancel_checks_ >= n; };
    mu_.Await(absl::Condition(&reached));
  }
  std::vector<v1::InsertResponse> acks() {
    absl::MutexLock lock(&mu_);
    return acks_;
  }
  int write_attempts() {
    absl::MutexLock lock(&mu_);
    return write_attempts_;
  }

  bool Read(v1::InsertRequest* request) override {
    absl::MutexLock lock(&mu_);
    ++reads_;
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !requests_.empty() || finished_ || cancelled_ || endless_ != nullptr;
    };
    mu_.Await(absl::Condition(&ready));
    if (cancelled_) return false;
    if (!requests_.empty()) {
      *request = std::move(requests_.front());
      requests_.pop_front();
      return true;
    }
    if (endless_ == nullptr) return false;
    *request = endless_(generated_++);
    return true;
  }
  bool Write(const v1::InsertResponse& ack) override {
    absl::MutexLock lock(&mu_);
    ++write_attempts_;
    if (fail_writes_ || cancelled_) return false;
    acks_.push_back(ack);
    return true;
  }
  bool IsCancelled() override {
    absl::MutexLock lock(&mu_);
    ++cancel_checks_;
    return cancelled_;
  }

 private:
  absl::Mutex mu_;
  std::deque<v1::InsertRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::function<v1::InsertRequest(uint64_t)> endless_ ABSL_GUARDED_BY(mu_);
  uint64_t generated_ ABSL_GUARDED_BY(mu_) = 0;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_writes_ ABSL_GUARDED_BY(mu_) = false;
  int reads_ ABSL_GUARDED_BY(mu_) = 0;
  int cancel_checks_ ABSL_GUARDED_BY(mu_) = 0;
  int write_attempts_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::InsertResponse> acks_ ABSL_GUARDED_BY(mu_);
};

std::vector<uint64_t> Sequences(const std::vector<v1::InsertResponse>& acks) {
  std::vector<uint64_t> sequences;
  for (const v1::InsertResponse& ack : acks) sequences.push_back(ack.sequence());
  return sequences;
}

TEST(InsertStreamTest, AcknowledgesChunksInArrivalOrderOnlyOnceTheyAreDurable) {
  services::Metrics metrics;
  // The WAL would not fsync for an hour by itself: only the checkpoint below makes chunks durable.
  auto shard = OpenShard(Options(/*fsync_interval=*/absl::Hours(1)), &metrics);
  ASSERT_NE(shard, nullptr);
  FakeClient client;
  for (uint64_t i = 0; i < 3; ++i) client.Send(Request(i));
  std::vector<absl::Duration> latencies;
  InsertStreamOptions options;
  options.on_ack = [&](absl::Duration since_read) { latencies.push_back(since_read); };
  InsertStream stream(shard.get(), &client, options);
  InsertStream::Outcome outcome;
  std::thread call([&] { outcome = stream.Run(); });

  client.AwaitRead(4);  // all three chunks are applied and in the WAL, not yet on disk
  EXPECT_EQ(shard->table()->size_steps(), 24u);
  EXPECT_TRUE(client.acks().empty());

  ASSERT_TRUE(shard->Checkpoint().ok());  // rolls the WAL: everything written is now durable
  client.Finish();
  call.join();
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_EQ(outcome.rejection, "");
  const std::vector<v1::InsertResponse> acks = client.acks();
  EXPECT_THAT(Sequences(acks), ::testing::ElementsAre(0, 1, 2));
  for (size_t i = 0; i < acks.size(); ++i) {
    EXPECT_EQ(acks[i].actor_id(), "actor-0");
    EXPECT_EQ(acks[i].table_size_steps(), 8 * (i + 1));
  }
  EXPECT_EQ(latencies.size(), 3u);
}

TEST(InsertStreamTest, ADuplicateChunkIsAcknowledgedInItsPlaceWithoutBeingStoredAgain) {
  services::Metrics metrics;
  auto shard = OpenShard(Options(), &metrics);
  ASSERT_NE(shard, nullptr);
  FakeClient client;
  client.Send(Request(0));
  client.Send(Request(1));
  client.Send(Request(1));  // a retransmission
  client.Send(Request(2));
  client.Finish();
  const InsertStream::Outcome outcome = InsertStream(shard.get(), &client, {}).Run();
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_THAT(Sequences(client.acks()), ::testing::ElementsAre(0, 1, 1, 2));
  std::vector<bool> duplicate;
  for (const v1::InsertResponse& ack : client.acks()) duplicate.push_back(ack.duplicate());
  EXPECT_THAT(duplicate, ::testing::ElementsAre(false, false, true, false));
  EXPECT_EQ(shard->table()->size_steps(), 24u);
}

TEST(InsertStreamTest, AGapEndsTheCallNamingTheExpectedChunkAfterTheEarlierOnesAreAcknowledged) {
  services::Metrics metrics;
  auto shard = OpenShard(Options(), &metrics);
  ASSERT_NE(shard, nullptr);
  FakeClient client;
  client.Send(Request(0));
  client.Send(Request(1));
  client.Send(Request(3));
  client.Send(Request(2));  // never read: the call ends at the gap
  client.Finish();
  const InsertStream::Outcome outcome = InsertStream(shard.get(), &client, {}).Run();
  EXPECT_TRUE(absl::IsOutOfRange(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(), HasSubstr("leaves a gap: expected chunk 2"));
  EXPECT_EQ(outcome.rejection, "sequence");
  EXPECT_THAT(Sequences(client.acks()), ::testing::ElementsAre(0, 1));
  EXPECT_EQ(shard->table()->size_steps(), 16u);
}

TEST(InsertStreamTest, AnInvalidChunkEndsTheCallNamingItAfterTheEarlierOnesAreAcknowledged) {
  services::Metrics metrics;
  auto shard = OpenShard(Options(), &metrics);
  ASSERT_NE(shard, nullptr);
  FakeClient client;
  client.Send(Request(0));
  client.Send(Request(1));
  v1::InsertRequest bad = Request(2);
  ChunkSpec spec;
  spec.sequence = 2;
  spec.reward = std::numeric_limits<float>::quiet_NaN();
  *bad.mutable_chunk() = MakeChunk(spec);
  client.Send(bad);
  client.Send(Request(3));  // never read: the call ends at the bad chunk
  client.Finish();
  const InsertStream::Outcome outcome = InsertStream(shard.get(), &client, {}).Run();
  EXPECT_TRUE(absl::IsInvalidArgument(outcome.status)) << outcome.status;
  EXPECT_THAT(
      outcome.status.message(),
      HasSubstr("actor \"actor-0\" chunk 2: field \"reward\" has the non-finite value nan"));
  EXPECT_EQ(outcome.rejection, "invalid_chunk");
  EXPECT_THAT(Sequences(client.acks()), ::testing::ElementsAre(0, 1));
  EXPECT_EQ(shard->table()->size_steps(), 16u);
}

TEST(InsertStreamTest, AnOversizedMessageIsRejectedBeforeItsChunkIsLookedAt) {
  services::Metrics metrics;
  auto shard = OpenShard(Options(), &metrics);
  ASSERT_NE(shard, nullptr);
  FakeClient client;
  client.Send(Request(0));
  v1::InsertRequest big = Request(1);
  ChunkSpec spec;
  spec.sequence = 1;
  spec.image_size = 16;  // 8 x 768 image bytes, and the wrong shape: size is checked first
  *big.mutable_chunk() = MakeChunk(spec);
  client.Send(big);
  client.Finish();
  InsertStreamOptions options;
  options.max_message_bytes = 2000;
  const InsertStream::Outcome outcome = InsertStream(shard.get(), &client, options).Run();
  EXPECT_TRUE(absl::IsInvalidArgument(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(),
              HasSubstr(absl::StrCat("insert message of ", big.ByteSizeLong(),
                                     " bytes from actor \"actor-0\" chunk 1 exceeds "
                                     "replay.max_message_mb (2000 bytes)")));
  EXPECT_EQ(outcome.rejection, "oversized");
  EXPECT_THAT(Sequences(client.acks()), ::testing::ElementsAre(0));
}

TEST(InsertStreamTest, ALongActorIdIsRefusedAndNotStored) {
  services::Metrics metrics;
  auto shard = OpenShard(Options(), &metrics);
  ASSERT_NE(shard, nullptr);
  FakeClient client;
  v1::InsertRequest request = Request(0);
  request.mutable_chunk()->set_actor_id(std::string(1 << 20, 'a'));
  client.Send(request);
  client.Finish();
  InsertStreamOptions options;
  options.max_actor_id_bytes = 256;
  const InsertStream::Outcome outcome = InsertStream(shard.get(), &client, options).Run();
  EXPECT_TRUE(absl::IsInvalidArgument(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(), HasSubstr("actor id of 1048576 bytes (\"aaaa"));
  EXPECT_THAT(outcome.status.message(), HasSubstr("exceeds replay.max_actor_id_bytes (256)"));
  EXPECT_LT(outcome.status.message().size(), 200u) << "the id is echoed back whole";
  EXPECT_EQ(outcome.rejection, "actor_id_too_long");
  EXPECT_TRUE(client.acks().empty());
  EXPECT_EQ(shard->table()->size_steps(), 0u);
}

TEST(InsertStreamTest, AChunkForAnotherTableIsNotFoundAndNotStored) {
  services::Metrics metrics;
  auto shard = OpenShard(Options(), &metrics);
  ASSERT_NE(shard, nullptr);
  FakeClient client;
  v1::InsertRequest request = Request(0);
  request.set_table("nope");
  client.Send(request);
  client.Finish();
  const InsertStream::Outcome outcome = InsertStream(shard.get(), &client, {}).Run();
  EXPECT_TRUE(absl::IsNotFound(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(),
              HasSubstr("unknown table \"nope\"; this shard serves \"default\""));
  EXPECT_EQ(outcome.rejection, "unknown_table");
  EXPECT_TRUE(client.acks().empty());
  EXPECT_EQ(shard->table()->size_steps(), 0u);
}

TEST(InsertStreamTest, CancellingTheCallStopsAnInsertBlockedByTheRateLimiter) {
  services::Metrics metrics;
  ShardOptions options = Options();
  // One replayed step per inserted step with 8 steps of slack: chunks 0 and 1 fit, 2 blocks.
  options.table.limiter.samples_per_insert = 1;
  options.table.limiter.tolerance = 8;
  options.table.limiter.min_size_to_sample = 8;
  auto shard = OpenShard(options, &metrics);
  ASSERT_NE(shard, nullptr);
  FakeClient client;
  for (uint64_t i = 0; i < 3; ++i) client.Send(Request(i));
  InsertStreamOptions stream_options;
  stream_options.wait_slice = absl::Milliseconds(10);
  InsertStream stream(shard.get(), &client, stream_options);
  InsertStream::Outcome outcome;
  std::thread call([&] { outcome = stream.Run(); });
  client.AwaitCancelCheck(1);  // chunk 2 waited a whole slice for the limiter
  client.Cancel();
  call.join();
  EXPECT_TRUE(absl::IsCancelled(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(), HasSubstr("actor \"actor-0\" chunk 2 waited for the rate"));
  EXPECT_EQ(outcome.rejection, "");              // a cancelled call is not a rejected request
  EXPECT_EQ(shard->table()->size_steps(), 16u);  // chunk 2 waited and was never stored
  EXPECT_GT(shard->table()->Info().limiter().insert_wait_seconds(), 0);
}

TEST(InsertStreamTest, AClientThatStopsReceivingAcknowledgementsEndsTheReading) {
  services::Metrics metrics;
  auto shard = OpenShard(Options(), &metrics);
  ASSERT_NE(shard, nullptr);
  FakeClient client;
  // An endless supply of good chunks: only the failed acknowledgement can end this call.
  client.SendForever([](uint64_t k) { return Request(k); });
  client.FailWrites();
  const InsertStream::Outcome outcome = InsertStream(shard.get(), &client, {}).Run();
  EXPECT_TRUE(absl::IsCancelled(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(),
              HasSubstr("the client stopped receiving acknowledgements before actor \"actor-0\" "
                        "chunk 0"));
  EXPECT_EQ(outcome.rejection, "");
  EXPECT_EQ(client.write_attempts(), 1);  // no acknowledgement is tried after the first failed
  EXPECT_TRUE(client.acks().empty());
}

}  // namespace
}  // namespace dreamfleet::replay
