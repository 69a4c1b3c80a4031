// SampleStream against a real Table, with a fake client in place of the gRPC writer: bounded and
// unbounded streams, request checks, waiting for data within the timeout, cancellation and a
// client that stops receiving. The test waits on the points the stream reaches (checking for
// cancellation after a limiter slice ran out), never on time.
#include "replay_server/sample_stream.h"

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

std::unique_ptr<Table> MakeTable(services::Metrics* metrics, uint64_t min_size_to_sample = 1) {
  TableOptions options;
  options.sequence_length = 4;
  options.capacity_steps = 1000;
  options.limiter.min_size_to_sample = min_size_to_sample;
  absl::StatusOr<std::unique_ptr<Table>> table = Table::Create(options, metrics);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? std::move(*table) : nullptr;
}

// One 16-step episode of actor "a": 13 items of 4 steps.
void InsertEpisode(Table* table) {
  ChunkSpec spec;
  spec.actor_id = "a";
  spec.num_steps = 16;
  spec.episode_starts = {0};
  absl::StatusOr<InsertResult> result =
      table->Insert(MakeChunk(spec), absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
}

v1::SampleRequest Request(int batch_size, int64_t num_batches) {
  v1::SampleRequest request;
  request.set_batch_size(batch_size);
  request.set_sequence_length(4);
  request.set_num_batches(num_batches);
  return request;
}

// The client end of a Sample call, driven by the test.
class FakeClient final : public SampleStream::Peer {
 public:
  // Write number `n` (from 1) and every later one fail, as when the client went away.
  void FailWritesFrom(int n) {
    absl::MutexLock lock(&mu_);
    fail_from_ = n;
  }
  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  // Blocks until the stream checked for cancellation `n` times (a limiter wait slice ran out).
  void AwaitCancelCheck(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return cancel_checks_ >= n; };
    mu_.Await(absl::Condition(&reached));
  }
  std::vector<v1::SampleResponse> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  int write_attempts() {
    absl::MutexLock lock(&mu_);
    return write_attempts_;
  }

  bool Write(const v1::SampleResponse& batch) override {
    absl::MutexLock lock(&mu_);
    ++write_attempts_;
    if (cancelled_ || (fail_from_ > 0 && write_attempts_ >= fail_from_)) return false;
    batches_.push_back(batch);
    return true;
  }
  bool IsCancelled() override {
    absl::MutexLock lock(&mu_);
    ++cancel_checks_;
    return cancelled_;
  }

 private:
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  int fail_from_ ABSL_GUARDED_BY(mu_) = 0;
  int cancel_checks_ ABSL_GUARDED_BY(mu_) = 0;
  int write_attempts_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::SampleResponse> batches_ ABSL_GUARDED_BY(mu_);
};

SampleStreamOptions FastSlices() {
  SampleStreamOptions options;
  options.shard_name = "shard-3";
  options.wait_slice = absl::Milliseconds(10);
  return options;
}

TEST(SampleStreamTest, SendsExactlyNumBatchesWhenBoundedAndGathersNoneBeyond) {
  services::Metrics metrics;
  auto table = MakeTable(&metrics);
  ASSERT_NE(table, nullptr);
  InsertEpisode(table.get());
  FakeClient client;
  int observed = 0;
  SampleStreamOptions options = FastSlices();
  options.on_batch = [&](absl::Duration) { ++observed; };
  const SampleStream::Outcome outcome =
      SampleStream(table.get(), &client, options).Run(Request(2, 3));
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  const std::vector<v1::SampleResponse> batches = client.batches();
  ASSERT_EQ(batches.size(), 3u);
  for (const v1::SampleResponse& batch : batches) {
    EXPECT_EQ(batch.shard(), "shard-3");
    EXPECT_EQ(batch.keys_size(), 2);
    EXPECT_EQ(batch.table_size_steps(), 16u);
    ASSERT_EQ(batch.data(0).name(), "image");
    EXPECT_THAT(batch.data(0).tensor().shape(), ::testing::ElementsAre(2, 4, 4, 4, 3));
  }
  EXPECT_EQ(observed, 3);
  EXPECT_EQ(table->Info().sampled_items(), 6u);  // no fourth batch was gathered ahead
}

TEST(SampleStreamTest, DefaultsToSixteenItemsOfTheTablesLength) {
  services::Metrics metrics;
  auto table = MakeTable(&metrics);
  ASSERT_NE(table, nullptr);
  InsertEpisode(table.get());
  FakeClient client;
  v1::SampleRequest request;
  request.set_num_batches(1);
  const SampleStream::Outcome outcome =
      SampleStream(table.get(), &client, FastSlices()).Run(request);
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  ASSERT_EQ(client.batches().size(), 1u);
  EXPECT_THAT(client.batches()[0].data(0).tensor().shape(), ::testing::ElementsAre(16, 4, 4, 4, 3));
}

TEST(SampleStreamTest, KeepsWaitingAcrossSlicesUntilDataArrives) {
  services::Metrics metrics;
  auto table = MakeTable(&metrics);
  ASSERT_NE(table, nullptr);
  FakeClient client;
  SampleStream stream(table.get(), &client, FastSlices());
  SampleStream::Outcome outcome;
  std::thread call([&] { outcome = stream.Run(Request(2, 1)); });
  client.AwaitCancelCheck(1);  // the empty table made the first slice run out
  InsertEpisode(table.get());
  call.join();
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_EQ(client.batches().size(), 1u);
}

TEST(SampleStreamTest, GivesUpAtTheRequestTimeoutWithTheLimiterState) {
  services::Metrics metrics;
  auto table = MakeTable(&metrics, /*min_size_to_sample=*/100);
  ASSERT_NE(table, nullptr);
  InsertEpisode(table.get());
  FakeClient client;
  v1::SampleRequest request = Request(2, 1);
  request.set_timeout_ms(50);
  const SampleStream::Outcome outcome =
      SampleStream(table.get(), &client, FastSlices()).Run(request);
  EXPECT_TRUE(absl::IsDeadlineExceeded(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(), HasSubstr("(min_size_to_sample 100)"));
  EXPECT_EQ(outcome.rejection, "");
  EXPECT_EQ(client.write_attempts(), 0);
}

TEST(SampleStreamTest, CancellingTheCallStopsABlockedSample) {
  services::Metrics metrics;
  auto table = MakeTable(&metrics);
  ASSERT_NE(table, nullptr);
  FakeClient client;
  SampleStreamOptions options = FastSlices();
  options.default_timeout = absl::Hours(1);  // only cancellation can end this wait
  SampleStream stream(table.get(), &client, options);
  SampleStream::Outcome outcome;
  std::thread call([&] { outcome = stream.Run(Request(2, 0)); });
  client.AwaitCancelCheck(1);
  client.Cancel();
  call.join();
  EXPECT_TRUE(absl::IsCancelled(outcome.status)) << outcome.status;
  EXPECT_EQ(outcome.rejection, "");
  EXPECT_EQ(client.write_attempts(), 0);
}

TEST(SampleStreamTest, AClientThatStopsReceivingStopsTheProduction) {
  services::Metrics metrics;
  auto table = MakeTable(&metrics);
  ASSERT_NE(table, nullptr);
  InsertEpisode(table.get());
  FakeClient client;
  client.FailWritesFrom(2);
  // Unbounded: only the failed write can end this call.
  const SampleStream::Outcome outcome =
      SampleStream(table.get(), &client, FastSlices()).Run(Request(2, 0));
  EXPECT_TRUE(absl::IsCancelled(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(),
              HasSubstr("the client stopped receiving batches after 1 were sent"));
  EXPECT_EQ(client.write_attempts(), 2);
  EXPECT_EQ(client.batches().size(), 1u);
  // Two batches written or tried, and at most the one gathered ahead of the failed write.
  EXPECT_LE(table->Info().sampled_items(), 3u * 2);
}

TEST(SampleStreamTest, AnUnknownTableIsNotFoundAndNothingIsSampled) {
  services::Metrics metrics;
  auto table = MakeTable(&metrics);
  ASSERT_NE(table, nullptr);
  InsertEpisode(table.get());
  FakeClient client;
  v1::SampleRequest request = Request(2, 1);
  request.set_table("nope");
  const SampleStream::Outcome outcome =
      SampleStream(table.get(), &client, FastSlices()).Run(request);
  EXPECT_TRUE(absl::IsNotFound(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(), HasSubstr("unknown table \"nope\""));
  EXPECT_EQ(outcome.rejection, "unknown_table");
  EXPECT_EQ(table->Info().sampled_items(), 0u);
}

TEST(SampleStreamTest, ABatchAboveTheMessageLimitIsRejectedBeforeSampling) {
  services::Metrics metrics;
  auto table = MakeTable(&metrics);
  ASSERT_NE(table, nullptr);
  InsertEpisode(table.get());  // steps of 48 + 8 + 4 + 3 bytes: a 16 x 4 batch is 4032 bytes
  FakeClient client;
  SampleStreamOptions options = FastSlices();
  options.max_message_bytes = 4000;
  const SampleStream::Outcome outcome =
      SampleStream(table.get(), &client, options).Run(Request(16, 1));
  EXPECT_TRUE(absl::IsInvalidArgument(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(),
              HasSubstr("a batch of 16 x 4 steps is 4032 bytes, above replay.max_message_mb "
                        "(4000 bytes)"));
  EXPECT_EQ(outcome.rejection, "oversized");
  EXPECT_EQ(table->Info().sampled_items(), 0u);
}

TEST(SampleStreamTest, RequestsTheTableRefusesAreBadRequests) {
  services::Metrics metrics;
  auto table = MakeTable(&metrics);
  ASSERT_NE(table, nullptr);
  InsertEpisode(table.get());
  FakeClient client;
  v1::SampleRequest request = Request(2, 1);
  request.set_sequence_length(5);
  SampleStream::Outcome outcome = SampleStream(table.get(), &client, FastSlices()).Run(request);
  EXPECT_TRUE(absl::IsInvalidArgument(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(), HasSubstr("sequence_length 5 does not match"));
  EXPECT_EQ(outcome.rejection, "bad_request");
  outcome = SampleStream(table.get(), &client, FastSlices()).Run(Request(2, -1));
  EXPECT_TRUE(absl::IsInvalidArgument(outcome.status)) << outcome.status;
  EXPECT_THAT(outcome.status.message(), HasSubstr("num_batches must be >= 0"));
  EXPECT_EQ(outcome.rejection, "bad_request");
  EXPECT_EQ(client.write_attempts(), 0);
}

}  // namespace
}  // namespace dreamfleet::replay
