#include "services/grpc_util.h"

#include "absl/strings/str_cat.h"
#include "dreamfleet/v1/parameter.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::services {
namespace {

TEST(GrpcUtilTest, StatusConversionKeepsCodeAndMessage) {
  absl::Status status = absl::InvalidArgumentError("tensor \"image\" has dtype float32");
  grpc::Status wire = ToGrpcStatus(status);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(wire.error_message(), "tensor \"image\" has dtype float32");
  absl::Status back = FromGrpcStatus(wire, "Insert to 127.0.0.1:1");
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(back.message(), "Insert to 127.0.0.1:1: tensor \"image\" has dtype float32");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

// A real server on port 0 answering a real call through a channel made by CreateChannel.
class StatusOnlyService final : public v1::ParameterService::Service {
  grpc::Status Status(grpc::ServerContext*, const v1::StatusRequest*,
                      v1::StatusResponse* response) override {
    response->set_weights_version(7);
    return grpc::Status::OK;
  }
};

TEST(GrpcUtilTest, ServerOnEphemeralPortAnswersThroughChannel) {
  StatusOnlyService service;
  absl::StatusOr<StartedServer> started = StartGrpcServer("127.0.0.1", 0, {&service});
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_GT(started->port, 0);
  auto channel = CreateChannel(JoinHostPort("127.0.0.1", started->port));
  ASSERT_TRUE(WaitForChannelReady(channel.get(), absl::Seconds(30)).ok());
  auto stub = v1::ParameterService::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(30));
  v1::StatusResponse response;
  ASSERT_TRUE(stub->Status(&context, v1::StatusRequest(), &response).ok());
  EXPECT_EQ(response.weights_version(), 7);
  started->server->Shutdown();
}

TEST(GrpcUtilTest, ASecondServerOnATakenPortRefusesToStart) {
  StatusOnlyService first_service;
  absl::StatusOr<StartedServer> first = StartGrpcServer("127.0.0.1", 0, {&first_service});
  ASSERT_TRUE(first.ok()) << first.status();
  StatusOnlyService second_service;
  absl::StatusOr<StartedServer> second =
      StartGrpcServer("127.0.0.1", first->port, {&second_service});
  ASSERT_FALSE(second.ok()) << "two servers listen on port " << first->port;
  EXPECT_THAT(std::string(second.status().message()),
              ::testing::HasSubstr(absl::StrCat("cannot listen on 127.0.0.1:", first->port)));
  first->server->Shutdown();
}

TEST(GrpcUtilTest, DeadlineOnUnreachablePeerIsUnavailableOrDeadline) {
  auto channel = CreateChannel("127.0.0.1:1");
  auto stub = v1::ParameterService::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context, absl::Milliseconds(200));
  v1::StatusResponse response;
  absl::Status status = FromGrpcStatus(stub->Status(&context, v1::StatusRequest(), &response));
  EXPECT_TRUE(absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) << status;
}

TEST(GrpcUtilTest, ShardAddressesComeFromListOrPortRange) {
  Config config;
  config.replay.shards = 3;
  config.replay.host = "127.0.0.1";
  config.replay.port = 7100;
  EXPECT_EQ(ShardAddresses(config.replay),
            (std::vector<std::string>{"127.0.0.1:7100", "127.0.0.1:7101", "127.0.0.1:7102"}));
  config.replay.addresses = "replay-0:7100, replay-1:7100";
  EXPECT_EQ(ShardAddresses(config.replay),
            (std::vector<std::string>{"replay-0:7100", "replay-1:7100"}));
}

TEST(GrpcUtilTest, JoinHostPortBracketsIpv6) {
  EXPECT_EQ(JoinHostPort("127.0.0.1", 80), "127.0.0.1:80");
  EXPECT_EQ(JoinHostPort("::1", 80), "[::1]:80");
}

}  // namespace
}  // namespace dreamfleet::services
