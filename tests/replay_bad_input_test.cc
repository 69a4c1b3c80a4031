// Every kind of bad request to a real shard is rejected with INVALID_ARGUMENT or NOT_FOUND and a
// message naming the field and the value seen, the table is unchanged, and a concurrent good
// writer is unaffected.
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/sync_stream.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/metrics.h"
#include "tests/replay_test_util.h"

namespace dreamfleet::replay {
namespace {

using ::testing::HasSubstr;
using testing::ChunkSpec;
using testing::FindField;
using testing::MakeChunk;
using testing::StartShard;
using testing::ToStepChunk;

ChunkSpec Bad(const std::string& actor) {
  ChunkSpec spec;
  spec.actor_id = actor;
  spec.episode_starts = {0};
  return spec;
}

// Sends one request on its own Insert stream; returns how the call ended and the acks seen.
grpc::Status InsertOne(v1::ReplayService::Stub* stub, const v1::InsertRequest& request,
                       int* acks = nullptr) {
  grpc::ClientContext context;
  services::SetDeadline(&context, absl::Seconds(60));
  auto stream = stub->Insert(&context);
  stream->Write(request);
  stream->WritesDone();
  v1::InsertResponse ack;
  int count = 0;
  while (stream->Read(&ack)) ++count;
  if (acks != nullptr) *acks = count;
  return stream->Finish();
}

// The shard's dreamfleet_replay_open_streams gauge; -1 when unreadable.
int OpenStreams(int metrics_port) {
  absl::StatusOr<std::string> metrics = services::HttpGet("127.0.0.1", metrics_port, "/metrics");
  if (!metrics.ok()) return -1;
  const std::string key = "\ndreamfleet_replay_open_streams ";
  const size_t at = metrics->find(key);
  return at == std::string::npos ? -1 : std::atoi(metrics->c_str() + at + key.size());
}

v1::InsertRequest WithChunk(v1::Chunk chunk, const std::string& table = "") {
  v1::InsertRequest request;
  request.set_table(table);
  *request.mutable_chunk() = std::move(chunk);
  return request;
}

TEST(ReplayBadInputTest, BadRequestsAreRejectedWhileAGoodWriterGoesOn) {
  auto shard = StartShard(dreamfleet::testing::MakeTempDir("replay_bad_input_"),
                          {"replay.max_message_mb=1"});
  ASSERT_TRUE(shard.ok()) << shard.status();
  ReplayClientOptions options;
  options.addresses = {shard->address()};
  auto client = ShardedReplayClient::Create(options);
  ASSERT_TRUE(client.ok());
  auto writer = (*client)->NewWriter("good");
  ChunkSpec good;
  good.actor_id = "good";
  good.episode_starts = {0};
  ASSERT_TRUE(writer->Send(ToStepChunk(MakeChunk(good))).ok());
  ASSERT_TRUE(writer->Flush(absl::Seconds(60)).ok());  // fixes the signature
  constexpr uint64_t kGoodChunks = 200;
  std::thread good_writer([&] {
    for (uint64_t i = 1; i < kGoodChunks; ++i) {
      good.sequence = i;
      good.episode_starts = {};
      ASSERT_TRUE(writer->Send(ToStepChunk(MakeChunk(good))).ok());
    }
  });

  auto stub = testing::NewStub(shard->address());
  struct Case {
    std::string what;
    v1::InsertRequest request;
    grpc::StatusCode code;
    std::string message;
  };
  std::vector<Case> cases;
  {
    ChunkSpec spec = Bad("bad-shape");
    spec.image_size = 5;
    cases.push_back({"shape", WithChunk(MakeChunk(spec)), grpc::StatusCode::INVALID_ARGUMENT,
                     "field \"image\" has shape [8,5,5,3], expected [8,4,4,3]"});
  }
  {
    v1::Chunk chunk = MakeChunk(Bad("bad-dtype"));
    FindField(&chunk, "action")->mutable_tensor()->set_dtype(v1::DTYPE_INT32);
    cases.push_back({"dtype", WithChunk(chunk), grpc::StatusCode::INVALID_ARGUMENT,
                     "field \"action\" has dtype int32, expected float32"});
  }
  {
    v1::Chunk chunk = MakeChunk(Bad("bad-missing"));
    chunk.mutable_data()->RemoveLast();  // is_terminal
    cases.push_back({"missing field", WithChunk(chunk), grpc::StatusCode::INVALID_ARGUMENT,
                     "field \"is_terminal\" of the signature of table \"default\" is missing"});
  }
  {
    v1::Chunk chunk = MakeChunk(Bad("bad-extra"));
    testing::AddTensor(&chunk, "extra", v1::DTYPE_UINT8, {8}, std::string(8, '\0'));
    cases.push_back({"extra field", WithChunk(chunk), grpc::StatusCode::INVALID_ARGUMENT,
                     "field \"extra\" is not in the signature"});
  }
  {
    v1::Chunk chunk = MakeChunk(Bad("bad-bytes"));
    FindField(&chunk, "reward")->mutable_tensor()->mutable_data()->resize(12);
    cases.push_back({"byte count", WithChunk(chunk), grpc::StatusCode::INVALID_ARGUMENT,
                     "field \"reward\" has 12 bytes, expected 32"});
  }
  {
    ChunkSpec spec = Bad("bad-nan");
    spec.reward = std::numeric_limits<float>::quiet_NaN();
    cases.push_back({"nan reward", WithChunk(MakeChunk(spec)), grpc::StatusCode::INVALID_ARGUMENT,
                     "field \"reward\" has the non-finite value nan"});
  }
  {
    ChunkSpec spec = Bad("bad-inf");
    spec.reward = std::numeric_limits<float>::infinity();
    cases.push_back({"inf reward", WithChunk(MakeChunk(spec)), grpc::StatusCode::INVALID_ARGUMENT,
                     "field \"reward\" has the non-finite value inf"});
  }
  {
    ChunkSpec spec = Bad("bad-size");
    spec.image_size = 64;
    spec.num_steps = 128;  // 1.5 MiB of images, above replay.max_message_mb=1
    cases.push_back({"oversized", WithChunk(MakeChunk(spec)), grpc::StatusCode::INVALID_ARGUMENT,
                     "exceeds replay.max_message_mb (1048576 bytes)"});
  }
  {
    cases.push_back({"unknown table", WithChunk(MakeChunk(Bad("bad-table")), "nope"),
                     grpc::StatusCode::NOT_FOUND, "unknown table \"nope\""});
  }
  for (const Case& c : cases) {
    const grpc::Status status = InsertOne(stub.get(), c.request);
    EXPECT_EQ(status.error_code(), c.code) << c.what << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message)) << c.what;
  }

  // Chunks acknowledged before a bad one on the same stream stay stored.
  {
    grpc::ClientContext context;
    auto stream = stub->Insert(&context);
    ChunkSpec first = Bad("mixed");
    stream->Write(WithChunk(MakeChunk(first)));
    ChunkSpec second = Bad("mixed");
    second.sequence = 1;
    second.reward = std::numeric_limits<float>::quiet_NaN();
    stream->Write(WithChunk(MakeChunk(second)));
    stream->WritesDone();
    v1::InsertResponse ack;
    int acks = 0;
    while (stream->Read(&ack)) ++acks;
    EXPECT_EQ(acks, 1);
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  // Out-of-range episode id, wrong item length, bad priorities.
  {
    v1::GetEpisodeRequest request;
    request.set_episode_id(987654321);
    grpc::ClientContext context;
    auto reader = stub->GetEpisode(&context, request);
    v1::GetEpisodeResponse message;
    EXPECT_FALSE(reader->Read(&message));
    const grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(status.error_message(), HasSubstr("episode id 987654321 is not stored"));
  }
  {
    v1::SampleRequest request;
    request.set_batch_size(2);
    request.set_sequence_length(5);
    request.set_num_batches(1);
    grpc::ClientContext context;
    auto reader = stub->Sample(&context, request);
    v1::SampleResponse message;
    EXPECT_FALSE(reader->Read(&message));
    const grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("sequence_length 5 does not match"));
  }
  {
    v1::UpdatePrioritiesRequest request;
    request.add_keys(0);
    request.add_priorities(std::numeric_limits<double>::quiet_NaN());
    v1::UpdatePrioritiesResponse response;
    grpc::ClientContext context;
    const grpc::Status status = stub->UpdatePriorities(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("priority nan for key 0"));
  }

  good_writer.join();
  ASSERT_TRUE(writer->Flush(absl::Seconds(120)).ok());
  EXPECT_EQ(writer->acknowledged(), kGoodChunks);
  std::vector<ShardStats> stats = (*client)->Info();
  EXPECT_EQ(stats[0].size_steps, kGoodChunks * 8 + 8);  // + the "mixed" chunk before the bad one
  v1::InfoResponse info;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Info(&context, v1::InfoRequest(), &info).ok());
  std::vector<std::string> actors;
  for (const v1::ActorCount& actor : info.tables(0).actors()) actors.push_back(actor.actor_id());
  EXPECT_THAT(actors, ::testing::ElementsAre("good", "mixed"));
  absl::StatusOr<std::string> metrics =
      services::HttpGet("127.0.0.1", shard->metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics, HasSubstr("dreamfleet_replay_rejected_total{reason=\"invalid_chunk\"} 8"));
  EXPECT_THAT(*metrics, HasSubstr("dreamfleet_replay_rejected_total{reason=\"oversized\"} 1"));
  ASSERT_TRUE(writer->Close().ok());
}

// A message that is not an InsertRequest ends the Insert call with INVALID_ARGUMENT naming it
// (gRPC's own parsing would end the reading as if the client were done, and the call with OK);
// the chunk acknowledged before it stays stored.
TEST(ReplayBadInputTest, AMessageThatDoesNotParseEndsTheInsertCallWithAnError) {
  auto shard = StartShard(dreamfleet::testing::MakeTempDir("replay_garbage_"), {});
  ASSERT_TRUE(shard.ok()) << shard.status();
  std::shared_ptr<grpc::Channel> channel = services::CreateChannel(shard->address());
  const grpc::internal::RpcMethod insert("/dreamfleet.v1.ReplayService/Insert",
                                         grpc::internal::RpcMethod::BIDI_STREAMING, channel);
  grpc::ClientContext context;
  services::SetDeadline(&context, absl::Seconds(60));
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel.get(), insert, &context));
  auto raw = [](const std::string& bytes) {
    grpc::Slice slice(bytes);
    return grpc::ByteBuffer(&slice, 1);
  };
  ChunkSpec spec;
  spec.episode_starts = {0};
  ASSERT_TRUE(stream->Write(raw(WithChunk(MakeChunk(spec)).SerializeAsString())));
  grpc::ByteBuffer ack_bytes;
  ASSERT_TRUE(stream->Read(&ack_bytes));  // the good chunk is acknowledged first
  // A field tag whose varint never ends: not a protobuf message.
  ASSERT_TRUE(stream->Write(raw(std::string("\xff\xff\xff\xff", 4))));
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&ack_bytes));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(),
              HasSubstr("message 2 of the Insert stream (4 bytes) is not an InsertRequest"));

  auto stub = testing::NewStub(shard->address());
  v1::InfoResponse info;
  grpc::ClientContext info_context;
  ASSERT_TRUE(stub->Info(&info_context, v1::InfoRequest(), &info).ok());
  EXPECT_EQ(info.tables(0).size_steps(), 8u);
  absl::StatusOr<std::string> metrics =
      services::HttpGet("127.0.0.1", shard->metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics, HasSubstr("dreamfleet_replay_rejected_total{reason=\"malformed\"} 1"));
}

// Idle streams past replay.max_streams are refused at once, before they hold server threads;
// Insert calls stop one place short (max_streams / 16, at least one, stays free), so a full set
// of actors never locks out the learner's Sample; a stream that ends frees its place.
TEST(ReplayBadInputTest, StreamsPastTheCapAreRefusedAndCounted) {
  auto shard =
      StartShard(dreamfleet::testing::MakeTempDir("replay_max_streams_"), {"replay.max_streams=3"});
  ASSERT_TRUE(shard.ok()) << shard.status();
  auto stub = testing::NewStub(shard->address());
  auto open_streams = [&] { return OpenStreams(shard->metrics_port); };
  auto wait_for_open = [&](int count) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (open_streams() != count && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(20));
    return open_streams() == count;
  };
  grpc::ClientContext first_context, second_context;
  auto first = stub->Insert(&first_context);
  auto second = stub->Insert(&second_context);
  ASSERT_TRUE(wait_for_open(2)) << "the two idle streams never registered";

  // A third Insert would take the place kept for the learner.
  grpc::ClientContext third_context;
  auto third = stub->Insert(&third_context);
  third->WritesDone();
  grpc::Status refused = third->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_THAT(refused.error_message(),
              HasSubstr("already serves 2 Insert streams, all that replay.max_streams (3) lets "
                        "Insert calls hold"));
  ASSERT_TRUE(wait_for_open(2));

  // The learner's Sample gets that place (it waits: the table is empty); a second Sample does not.
  grpc::ClientContext sample_context;
  v1::SampleRequest sample;
  sample.set_batch_size(1);
  sample.set_sequence_length(8);
  auto sampler = stub->Sample(&sample_context, sample);
  ASSERT_TRUE(wait_for_open(3)) << "the Sample call was not served";
  grpc::ClientContext extra_context;
  auto extra = stub->Sample(&extra_context, sample);
  v1::SampleResponse ignored;
  EXPECT_FALSE(extra->Read(&ignored));
  refused = extra->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_THAT(refused.error_message(),
              HasSubstr("already serves 3 streams (replay.max_streams 3)"));
  sample_context.TryCancel();
  EXPECT_FALSE(sampler->Read(&ignored));
  sampler->Finish();
  ASSERT_TRUE(wait_for_open(2));

  // The first ends: a new stream is served and stores its chunk.
  first->WritesDone();
  EXPECT_TRUE(first->Finish().ok());
  ASSERT_TRUE(wait_for_open(1));
  grpc::ClientContext fourth_context;
  auto fourth = stub->Insert(&fourth_context);
  v1::InsertRequest request;
  *request.mutable_chunk() = MakeChunk(ChunkSpec{});
  ASSERT_TRUE(fourth->Write(request));
  fourth->WritesDone();
  v1::InsertResponse ack;
  EXPECT_TRUE(fourth->Read(&ack));
  EXPECT_TRUE(fourth->Finish().ok());
  second->WritesDone();
  EXPECT_TRUE(second->Finish().ok());

  absl::StatusOr<std::string> metrics =
      services::HttpGet("127.0.0.1", shard->metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics,
              HasSubstr("dreamfleet_replay_rejected_total{reason=\"too_many_streams\"} 2"));
}

// One client address may hold at most replay.max_streams_per_client of the shard's streams; its
// place comes back when one of its streams ends.
TEST(ReplayBadInputTest, StreamsPastTheClientsCapAreRefused) {
  // 3 places: 2 for Insert calls, one kept for the learner's Sample and readers.
  auto shard = StartShard(dreamfleet::testing::MakeTempDir("replay_client_streams_"),
                          {"replay.max_streams_per_client=3"});
  ASSERT_TRUE(shard.ok()) << shard.status();
  auto stub = testing::NewStub(shard->address());
  grpc::ClientContext first_context, second_context, third_context;
  auto first = stub->Insert(&first_context);
  auto second = stub->Insert(&second_context);
  auto open_streams = [&] { return OpenStreams(shard->metrics_port); };
  for (int i = 0; i < 3000 && open_streams() != 2; ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(open_streams(), 2) << "the two idle streams never registered";
  auto third = stub->Insert(&third_context);
  third->WritesDone();
  const grpc::Status refused = third->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_THAT(refused.error_message(),
              HasSubstr("already holds 2 Insert streams on this shard, all that "
                        "replay.max_streams_per_client (3) lets Insert calls hold"));
  first->WritesDone();
  EXPECT_TRUE(first->Finish().ok());
  // A place is free again: this stream is served and stores its chunk (the count drops when the
  // first call's handler returns, just after its Finish).
  bool stored = false;
  for (int attempt = 0; attempt < 100 && !stored; ++attempt) {
    v1::InsertRequest request;
    ChunkSpec spec;
    spec.episode_starts = {0};
    *request.mutable_chunk() = MakeChunk(spec);
    int acks = 0;
    stored = InsertOne(stub.get(), request, &acks).ok() && acks == 1;
    if (!stored) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(stored);
  second->WritesDone();
  EXPECT_TRUE(second->Finish().ok());
  absl::StatusOr<std::string> metrics =
      services::HttpGet("127.0.0.1", shard->metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics,
              HasSubstr("dreamfleet_replay_rejected_total{reason=\"too_many_client_streams\"}"));
}

}  // namespace
}  // namespace dreamfleet::replay
