// ParameterServiceImpl on a real gRPC server (port 0), read through a plain generated stub so the
// exact message sequence is visible. The ParameterClient end to end tests live in
// broadcast/parameter_client_test.cc.
#include "broadcast/parameter_service.h"

#include <chrono>

#include "absl/strings/match.h"
#include "broadcast/weights_test_util.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "services/grpc_util.h"

namespace dreamfleet::broadcast {
namespace {

using broadcast::MakePatternWeights;
using broadcast::SameWeights;
using broadcast::TensorShape;
using broadcast::WeightsVersion;

const std::vector<TensorShape>& SmallShapes() {
  static const auto* shapes = new std::vector<TensorShape>{
      {"encoder.w", {64, 300}}, {"encoder.b", {64}}, {"actor.w", {16, 64}}};
  return *shapes;
}

TEST(EncodeVersionTest, PartsParseToExactlyWhatSplitIntoUpdatesGives) {
  // Tensors below, at and far above the size that is referenced instead of copied, an empty one,
  // and a scalar.
  std::shared_ptr<const WeightsVersion> weights = MakePatternWeights(3, {{"tiny", {3}},
                                                                         {"scalar", {}},
                                                                         {"empty", {0, 4}},
                                                                         {"at", {1024}},
                                                                         {"mid", {300, 70}},
                                                                         {"big", {1024, 1024}},
                                                                         {"after", {5}}});
  for (size_t limit : {size_t{4096}, size_t{20000}, size_t{1} << 20, size_t{16} << 20}) {
    const std::vector<v1::ParameterUpdate> want = broadcast::SplitIntoUpdates(*weights, limit);
    auto copy = std::make_shared<WeightsVersion>(*weights);
    std::shared_ptr<const EncodedVersion> encoded = EncodeVersion(copy, limit, "run-x");
    copy.reset();  // the parts keep their weights alive
    ASSERT_EQ(encoded->parts.size(), want.size()) << "limit " << limit;
    EXPECT_EQ(encoded->version, 3);
    size_t total = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      grpc::ByteBuffer buffer(encoded->parts[i]);
      total += buffer.Length();
      EXPECT_LE(buffer.Length(), limit);
      v1::ParameterUpdate expected = want[i];
      expected.set_learner_run("run-x");
      v1::ParameterUpdate got;
      ASSERT_TRUE(grpc::SerializationTraits<v1::ParameterUpdate>::Deserialize(&buffer, &got).ok());
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got, expected))
          << "limit " << limit << " part " << i;
    }
    EXPECT_EQ(total, encoded->total_bytes);
  }
}

class ParameterServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ParameterServiceImpl::Options options;
    options.max_message_bytes = 16 << 10;  // several parts per version
    options.metrics = &metrics_;
    service_ = std::make_unique<ParameterServiceImpl>(options);
    absl::StatusOr<services::StartedServer> started =
        services::StartGrpcServer("127.0.0.1", 0, {service_.get()});
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(started->server);
    channel_ = services::CreateChannel(services::JoinHostPort("127.0.0.1", started->port));
    stub_ = v1::ParameterService::NewStub(channel_);
  }

  void TearDown() override {
    service_->Shutdown();
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(30));
    }
    service_.reset();
  }

  // Reads one complete version from `reader`; nullptr if the stream ends first.
  std::shared_ptr<const WeightsVersion> ReadVersion(grpc::ClientReader<v1::ParameterUpdate>* reader,
                                                    std::vector<int64_t>* seen = nullptr) {
    broadcast::WeightsAssembler assembler;
    v1::ParameterUpdate update;
    while (reader->Read(&update)) {
      if (seen != nullptr) seen->push_back(update.version());
      absl::StatusOr<std::shared_ptr<const WeightsVersion>> done = assembler.Add(&update);
      EXPECT_TRUE(done.ok()) << done.status();
      if (!done.ok()) return nullptr;
      if (*done != nullptr) return *done;
    }
    return nullptr;
  }

  services::Metrics metrics_;
  std::unique_ptr<ParameterServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ParameterService::Stub> stub_;
};

TEST_F(ParameterServiceTest, StatusComesFromTheProviderWithVersionAndSubscribersFilledIn) {
  ASSERT_TRUE(service_->Publish(MakePatternWeights(4, SmallShapes())).ok());
  service_->SetStatusProvider([] {
    v1::StatusResponse response;
    response.set_updates(1234);
    (*response.mutable_losses())["dyn"] = 0.5;
    return response;
  });
  grpc::ClientContext context;
  services::SetDeadline(&context, absl::Seconds(60));
  v1::StatusResponse response;
  ASSERT_TRUE(stub_->Status(&context, v1::StatusRequest(), &response).ok());
  EXPECT_EQ(response.updates(), 1234);
  EXPECT_EQ(response.losses().at("dyn"), 0.5);
  EXPECT_EQ(response.weights_version(), 4);
  EXPECT_EQ(response.subscribers(), 0);
}

TEST_F(ParameterServiceTest, PublishRejectsInvalidAndStaleVersions) {
  ASSERT_TRUE(service_->Publish(MakePatternWeights(5, SmallShapes())).ok());
  absl::Status stale = service_->Publish(MakePatternWeights(5, SmallShapes()));
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(stale.message(), "not newer than the published 5")) << stale;
  auto broken = std::make_shared<WeightsVersion>(*MakePatternWeights(6, SmallShapes()));
  broken->tensors[1].data.resize(3);
  EXPECT_EQ(service_->Publish(broken).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->Publish(nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->version(), 5);
}

TEST_F(ParameterServiceTest, SubscriberGetsTheVersionPublishedBeforeItSubscribedThenNewerOnes) {
  auto v1_weights = MakePatternWeights(1, SmallShapes());
  ASSERT_TRUE(service_->Publish(v1_weights).ok());
  grpc::ClientContext context;
  v1::SubscribeRequest request;
  request.set_actor_id("actor-0");
  auto reader = stub_->Subscribe(&context, request);
  std::shared_ptr<const WeightsVersion> got = ReadVersion(reader.get());
  ASSERT_NE(got, nullptr);
  EXPECT_TRUE(SameWeights(*got, *v1_weights));
  EXPECT_EQ(service_->subscribers(), 1);

  auto v2_weights = MakePatternWeights(2, SmallShapes());
  ASSERT_TRUE(service_->Publish(v2_weights).ok());
  got = ReadVersion(reader.get());
  ASSERT_NE(got, nullptr);
  EXPECT_TRUE(SameWeights(*got, *v2_weights));

  const std::string text = metrics_.TextExposition();
  EXPECT_TRUE(absl::StrContains(text, "dreamfleet_learner_subscribers 1")) << text;
  EXPECT_TRUE(absl::StrContains(text, "dreamfleet_learner_weights_version 2")) << text;
  EXPECT_TRUE(absl::StrContains(text, "dreamfleet_learner_weights_sent_bytes_total")) << text;
  EXPECT_FALSE(absl::StrContains(text, "dreamfleet_learner_weights_sent_bytes_total 0\n"));
  context.TryCancel();
  reader->Finish();
}

TEST_F(ParameterServiceTest, HaveVersionIsNotSentAgain) {
  ASSERT_TRUE(service_->Publish(MakePatternWeights(7, SmallShapes())).ok());
  grpc::ClientContext context;
  v1::SubscribeRequest request;
  request.set_have_version(7);
  request.set_learner_run(service_->learner_run());
  auto reader = stub_->Subscribe(&context, request);
  // Nothing is written for version 7; the first message must belong to version 8.
  auto v8_weights = MakePatternWeights(8, SmallShapes());
  ASSERT_TRUE(service_->Publish(v8_weights).ok());
  std::vector<int64_t> seen;
  std::shared_ptr<const WeightsVersion> got = ReadVersion(reader.get(), &seen);
  ASSERT_NE(got, nullptr);
  EXPECT_TRUE(SameWeights(*got, *v8_weights));
  for (int64_t version : seen) EXPECT_EQ(version, 8);
  context.TryCancel();
  reader->Finish();
}

TEST_F(ParameterServiceTest, HaveVersionFromAnotherLearnerRunIsIgnored) {
  auto weights = MakePatternWeights(7, SmallShapes());
  ASSERT_TRUE(service_->Publish(weights).ok());
  ASSERT_FALSE(service_->learner_run().empty());
  grpc::ClientContext context;
  v1::SubscribeRequest request;
  request.set_have_version(9);  // e.g. from before this learner restarted from a checkpoint
  request.set_learner_run("an-earlier-run");
  auto reader = stub_->Subscribe(&context, request);
  std::shared_ptr<const WeightsVersion> got = ReadVersion(reader.get());
  ASSERT_NE(got, nullptr);
  EXPECT_TRUE(SameWeights(*got, *weights));
  context.TryCancel();
  reader->Finish();
}

TEST_F(ParameterServiceTest, ShutdownEndsOpenStreamsWithUnavailable) {
  ASSERT_TRUE(service_->Publish(MakePatternWeights(1, SmallShapes())).ok());
  grpc::ClientContext context;
  auto reader = stub_->Subscribe(&context, v1::SubscribeRequest());
  ASSERT_NE(ReadVersion(reader.get()), nullptr);
  service_->Shutdown();
  v1::ParameterUpdate update;
  EXPECT_FALSE(reader->Read(&update));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  // New subscribers are refused while the server is still up.
  grpc::ClientContext late;
  services::SetDeadline(&late, absl::Seconds(60));
  auto late_reader = stub_->Subscribe(&late, v1::SubscribeRequest());
  EXPECT_FALSE(late_reader->Read(&update));
  status = late_reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(status.error_message(), "learner shutting down");

  server_->Shutdown();  // returns: no stream is left open
  server_.reset();
}

TEST_F(ParameterServiceTest, SubscriberThatLeavesIsForgotten) {
  ASSERT_TRUE(service_->Publish(MakePatternWeights(1, SmallShapes())).ok());
  {
    grpc::ClientContext context;
    auto reader = stub_->Subscribe(&context, v1::SubscribeRequest());
    ASSERT_NE(ReadVersion(reader.get()), nullptr);
    context.TryCancel();
    reader->Finish();
  }
  // gRPC finishes the departed subscriber's stream and the service forgets it.
  EXPECT_TRUE(service_->WaitForSubscribers(0, absl::Seconds(120)));
  EXPECT_TRUE(absl::StrContains(metrics_.TextExposition(), "dreamfleet_learner_subscribers 0"));
  ASSERT_TRUE(service_->Publish(MakePatternWeights(2, SmallShapes())).ok());
  grpc::ClientContext context;
  auto reader = stub_->Subscribe(&context, v1::SubscribeRequest());
  std::shared_ptr<const WeightsVersion> got = ReadVersion(reader.get());
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->version, 2);
  context.TryCancel();
  reader->Finish();
}

// With an Authorizer, a call without a cluster token is refused before it subscribes, and every
// role's token is admitted to the weights and the status.
TEST(ParameterServiceAuthTest, CallsWithoutAClusterTokenAreRefusedAndCounted) {
  services::Metrics metrics;
  services::Authorizer authorizer("actor-token-0123456789", "learner-token-0123456789",
                                  "reader-token-0123456789");
  ParameterServiceImpl::Options options;
  options.metrics = &metrics;
  options.authorizer = &authorizer;
  ParameterServiceImpl service(options);
  ASSERT_TRUE(service.Publish(MakePatternWeights(3, SmallShapes())).ok());
  absl::StatusOr<services::StartedServer> started =
      services::StartGrpcServer("127.0.0.1", 0, {&service});
  ASSERT_TRUE(started.ok()) << started.status();
  const std::string address = services::JoinHostPort("127.0.0.1", started->port);
  auto stub_with = [&](const std::string& token) {
    services::ChannelOptions channel;
    channel.security.token = token;
    return v1::ParameterService::NewStub(services::CreateChannel(address, channel));
  };

  for (const std::string& token : {std::string(), std::string("not-a-token-of-this-cluster")}) {
    auto stub = stub_with(token);
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(30));
    v1::SubscribeRequest request;
    request.set_actor_id("stranger");
    auto reader = stub->Subscribe(&context, request);
    v1::ParameterUpdate update;
    EXPECT_FALSE(reader->Read(&update)) << "weights sent to a caller without a token";
    grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
    EXPECT_THAT(status.error_message(), ::testing::HasSubstr("Subscribe"));
  }
  EXPECT_EQ(service.subscribers(), 0);

  {
    auto stub = stub_with("actor-token-0123456789");
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(30));
    v1::SubscribeRequest request;
    request.set_actor_id("actor-0");
    auto reader = stub->Subscribe(&context, request);
    broadcast::WeightsAssembler assembler;
    v1::ParameterUpdate update;
    std::shared_ptr<const WeightsVersion> got;
    while (got == nullptr && reader->Read(&update)) {
      absl::StatusOr<std::shared_ptr<const WeightsVersion>> done = assembler.Add(&update);
      ASSERT_TRUE(done.ok()) << done.status();
      got = *done;
    }
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->version, 3);
    context.TryCancel();
    reader->Finish();
  }
  for (const char* token : {"reader-token-0123456789", "learner-token-0123456789"}) {
    auto stub = stub_with(token);
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(30));
    v1::StatusResponse response;
    grpc::Status status = stub->Status(&context, v1::StatusRequest(), &response);
    EXPECT_TRUE(status.ok()) << token << ": " << status.error_message();
    EXPECT_EQ(response.weights_version(), 3);
  }
  {
    auto stub = stub_with("");
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(30));
    v1::StatusResponse response;
    EXPECT_EQ(stub->Status(&context, v1::StatusRequest(), &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  const std::string text = metrics.TextExposition();
  EXPECT_TRUE(absl::StrContains(
      text, "dreamfleet_learner_refused_calls_total{reason=\"unauthenticated\"} 3"))
      << text;
  service.Shutdown();
  started->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(30));
}

}  // namespace
}  // namespace dreamfleet::broadcast
