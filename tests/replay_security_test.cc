// A real dreamfleet-replay process serving TLS with role tokens (and client certificates): every
// RPC refuses a call without a token (UNAUTHENTICATED) and a role it does not allow
// (PERMISSION_DENIED), admits the roles it allows, plaintext never reaches it, and the real
// `dreamfleet replay info` works with the reader's token and fails without it.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replay_server/replay_cli.h"
#include "services/security.h"
#include "tests/replay_test_util.h"

namespace dreamfleet::replay::testing {
namespace {

using services::Role;
using ::testing::HasSubstr;

class ReplaySecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.made());
    const char* source = std::getenv("DREAMFLEET_SOURCE_DIR");
    ASSERT_NE(source, nullptr);
    const std::string command =
        absl::StrCat("sh '", source, "/deploy/certs.sh' '", dir_.path(), "/certs' >/dev/null");
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    security_.ca_file = Path("ca.pem");
    security_.cert_file = Path("cert.pem");
    security_.key_file = Path("key.pem");
    security_.actor_token_file = Path("actor.token");
    security_.learner_token_file = Path("learner.token");
    security_.reader_token_file = Path("reader.token");
  }

  std::string Path(const std::string& name) const {
    return absl::StrCat(dir_.path(), "/certs/", name);
  }

  // The --set list of security_ (plus require_client_cert).
  std::vector<std::string> Sets(bool require_client_cert) const {
    return {"security.ca_file=" + security_.ca_file,
            "security.cert_file=" + security_.cert_file,
            "security.key_file=" + security_.key_file,
            "security.actor_token_file=" + security_.actor_token_file,
            "security.learner_token_file=" + security_.learner_token_file,
            "security.reader_token_file=" + security_.reader_token_file,
            absl::StrCat("security.require_client_cert=", require_client_cert ? "true" : "false")};
  }

  // With connect_first, waits (up to 60 s) for the TLS handshake before returning, so that the
  // RPCs' own short deadlines are not spent on it (a sanitizer build on a busy machine can take
  // seconds to finish a handshake).
  std::unique_ptr<v1::ReplayService::Stub> Stub(const ShardProcess& shard,
                                                const services::SecurityConfig& security, Role role,
                                                bool connect_first = false) const {
    absl::StatusOr<services::ClientSecurity> client = services::MakeClientSecurity(security, role);
    EXPECT_TRUE(client.ok()) << client.status();
    services::ChannelOptions options;
    if (client.ok()) options.security = *client;
    auto channel = services::CreateChannel(shard.address(), options);
    if (connect_first) {
      EXPECT_TRUE(
          channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(60)))
          << "no TLS connection to " << shard.address() << " within 60 s";
    }
    return v1::ReplayService::NewStub(channel);
  }

  dreamfleet::testing::ScopedTempDir dir_{"replay_security_test"};
  services::SecurityConfig security_;
};

// How each RPC ends for `stub` (one call each, short deadlines: an admitted Sample waits for data).
std::map<std::string, grpc::Status> CallEveryRpc(v1::ReplayService::Stub* stub) {
  std::map<std::string, grpc::Status> results;
  {
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(20));
    auto stream = stub->Insert(&context);
    v1::InsertRequest request;
    ChunkSpec spec;
    spec.actor_id = "secure-actor";
    *request.mutable_chunk() = MakeChunk(spec);
    stream->Write(request);
    stream->WritesDone();
    v1::InsertResponse ack;
    while (stream->Read(&ack)) {
    }
    results["Insert"] = stream->Finish();
  }
  {
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(3));
    v1::SampleRequest request;
    request.set_batch_size(1);
    request.set_num_batches(1);
    auto reader = stub->Sample(&context, request);
    v1::SampleResponse response;
    while (reader->Read(&response)) {
    }
    results["Sample"] = reader->Finish();
  }
  {
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(20));
    v1::UpdatePrioritiesResponse response;
    results["UpdatePriorities"] =
        stub->UpdatePriorities(&context, v1::UpdatePrioritiesRequest(), &response);
  }
  {
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(20));
    v1::InfoResponse response;
    results["Info"] = stub->Info(&context, v1::InfoRequest(), &response);
  }
  {
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(20));
    v1::ListEpisodesResponse response;
    results["ListEpisodes"] = stub->ListEpisodes(&context, v1::ListEpisodesRequest(), &response);
  }
  {
    grpc::ClientContext context;
    services::SetDeadline(&context, absl::Seconds(20));
    v1::GetEpisodeRequest request;
    request.set_episode_id(12345);
    auto reader = stub->GetEpisode(&context, request);
    v1::GetEpisodeResponse response;
    while (reader->Read(&response)) {
    }
    results["GetEpisode"] = reader->Finish();
  }
  return results;
}

bool Refused(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
}

TEST_F(ReplaySecurityTest, EveryRpcChecksTheRoleOfItsToken) {
  auto shard = StartShard(Path("../data"), Sets(/*require_client_cert=*/false));
  ASSERT_TRUE(shard.ok()) << shard.status();

  const std::map<std::string, std::vector<Role>> allowed = {
      {"Insert", {Role::kActor}},
      {"Sample", {Role::kLearner}},
      {"UpdatePriorities", {Role::kLearner}},
      {"Info", {Role::kActor, Role::kLearner, Role::kReader}},
      {"ListEpisodes", {Role::kActor, Role::kLearner, Role::kReader}},
      {"GetEpisode", {Role::kActor, Role::kLearner, Role::kReader}}};
  for (Role role : {Role::kActor, Role::kLearner, Role::kReader}) {
    auto stub = Stub(*shard, security_, role, /*connect_first=*/true);
    for (const auto& [method, status] : CallEveryRpc(stub.get())) {
      const std::vector<Role>& roles = allowed.at(method);
      const bool may = std::find(roles.begin(), roles.end(), role) != roles.end();
      if (may) {
        EXPECT_FALSE(Refused(status))
            << services::RoleName(role) << " " << method << ": " << status.error_message();
      } else {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << services::RoleName(role) << " " << method << ": " << status.error_message();
        EXPECT_THAT(status.error_message(), HasSubstr(method));
      }
    }
  }
  // The actor's chunk was stored; Info (as a reader) sees it.
  {
    auto stub = Stub(*shard, security_, Role::kReader, /*connect_first=*/true);
    grpc::ClientContext context;
    v1::InfoResponse info;
    ASSERT_TRUE(stub->Info(&context, v1::InfoRequest(), &info).ok());
    ASSERT_EQ(info.tables_size(), 1);
    EXPECT_EQ(info.tables(0).inserted_steps(), 8);
  }

  // TLS without a token: every RPC is UNAUTHENTICATED.
  services::SecurityConfig no_token = security_;
  no_token.actor_token_file = no_token.learner_token_file = no_token.reader_token_file = "";
  auto anonymous = Stub(*shard, no_token, Role::kActor);
  for (const auto& [method, status] : CallEveryRpc(anonymous.get())) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << method << ": " << status.error_message();
  }
  // Plaintext with the right token never reaches the service.
  services::SecurityConfig plaintext = security_;
  plaintext.ca_file = plaintext.cert_file = plaintext.key_file = "";
  auto cleartext = Stub(*shard, plaintext, Role::kReader);
  grpc::ClientContext context;
  services::SetDeadline(&context, absl::Seconds(5));
  v1::InfoResponse info;
  EXPECT_FALSE(cleartext->Info(&context, v1::InfoRequest(), &info).ok());

  auto exit_code = shard->process->Stop();
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);
}

TEST_F(ReplaySecurityTest, TheCliQueriesWithTheReaderTokenAndClientCertificate) {
  auto shard = StartShard(Path("../data"), Sets(/*require_client_cert=*/true));
  ASSERT_TRUE(shard.ok()) << shard.status();
  std::vector<std::string> args = {"replay", "info", "--address", shard->address()};
  for (const std::string& set : Sets(true)) {
    args.push_back("--set");
    args.push_back(set);
  }
  {
    std::ostringstream out, err;
    EXPECT_EQ(RunReplayCommand(args, out, err), 0) << err.str();
    EXPECT_THAT(out.str(), HasSubstr("shard-0"));
  }
  {
    // Without the reader's token file the shard refuses the CLI.
    std::vector<std::string> no_token = args;
    no_token.push_back("--set");
    no_token.push_back("security.reader_token_file=");
    std::ostringstream out, err;
    EXPECT_NE(RunReplayCommand(no_token, out, err), 0);
    EXPECT_THAT(err.str(), HasSubstr("needs a bearer token"));
  }
  {
    // Without a client certificate the TLS handshake fails.
    std::vector<std::string> no_cert = args;
    for (const char* set :
         {"security.cert_file=", "security.key_file=", "security.require_client_cert=false"}) {
      no_cert.push_back("--set");
      no_cert.push_back(set);
    }
    std::ostringstream out, err;
    EXPECT_NE(RunReplayCommand(no_cert, out, err), 0);
  }
}

TEST_F(ReplaySecurityTest, ABadCertificateFileStopsTheShardWithItsKey) {
  std::vector<std::string> sets = Sets(false);
  sets.push_back("security.cert_file=" + Path("actor.token"));
  auto shard = StartShard(Path("../data"), sets);
  ASSERT_FALSE(shard.ok()) << "a shard started with a token as its certificate";
}

}  // namespace
}  // namespace dreamfleet::replay::testing
