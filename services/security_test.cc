#include "services/security.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dreamfleet/v1/parameter.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/grpc_util.h"
#include "tests/test_process.h"

namespace dreamfleet::services {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A real CA, certificate and tokens from deploy/certs.sh (the openssl command), made once.
class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new dreamfleet::testing::ScopedTempDir("security_test");
    const char* source = std::getenv("DREAMFLEET_SOURCE_DIR");
    ASSERT_NE(source, nullptr) << "run through ctest (DREAMFLEET_SOURCE_DIR)";
    const std::string command = absl::StrCat("sh '", source, "/deploy/certs.sh' '", dir_->path(),
                                             "/certs' learner.example >/dev/null");
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    // A second CA the servers do not know.
    const std::string other =
        absl::StrCat("sh '", source, "/deploy/certs.sh' '", dir_->path(), "/other' >/dev/null");
    ASSERT_EQ(std::system(other.c_str()), 0) << other;
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string Path(const std::string& name) { return absl::StrCat(dir_->path(), "/", name); }
  // The full TLS + token config deploy/certs.sh prints, from `dir` ("certs" or "other").
  static SecurityConfig Full(const std::string& dir = "certs") {
    SecurityConfig config;
    config.ca_file = Path(dir + "/ca.pem");
    config.cert_file = Path(dir + "/cert.pem");
    config.key_file = Path(dir + "/key.pem");
    config.actor_token_file = Path(dir + "/actor.token");
    config.learner_token_file = Path(dir + "/learner.token");
    config.reader_token_file = Path(dir + "/reader.token");
    return config;
  }

  static dreamfleet::testing::ScopedTempDir* dir_;
};
dreamfleet::testing::ScopedTempDir* SecurityTest::dir_ = nullptr;

// Answers Status for actors and learners only, through the Authorizer.
class GuardedService final : public v1::ParameterService::Service {
 public:
  explicit GuardedService(const Authorizer* authorizer) : authorizer_(authorizer) {}
  grpc::Status Status(grpc::ServerContext* context, const v1::StatusRequest*,
                      v1::StatusResponse* response) override {
    grpc::Status status = authorizer_->Check(*context, "Status", {Role::kActor, Role::kLearner});
    if (status.ok()) response->set_weights_version(7);
    return status;
  }

 private:
  const Authorizer* authorizer_;
};

struct Server {
  ServerSecurity security;
  std::unique_ptr<GuardedService> service;
  StartedServer started;
};

std::unique_ptr<Server> Serve(const SecurityConfig& config) {
  auto server = std::make_unique<Server>();
  absl::StatusOr<ServerSecurity> security = MakeServerSecurity(config);
  EXPECT_TRUE(security.ok()) << security.status();
  if (!security.ok()) return nullptr;
  server->security = std::move(*security);
  server->service = std::make_unique<GuardedService>(server->security.authorizer.get());
  absl::StatusOr<StartedServer> started =
      StartGrpcServer("127.0.0.1", 0, {server->service.get()}, kDefaultMaxMessageBytes,
                      server->security.credentials);
  EXPECT_TRUE(started.ok()) << started.status();
  if (!started.ok()) return nullptr;
  server->started = std::move(*started);
  return server;
}

grpc::Status CallStatus(int port, const ClientSecurity& security, const std::string& host) {
  ChannelOptions options;
  options.security = security;
  auto stub = v1::ParameterService::NewStub(CreateChannel(JoinHostPort(host, port), options));
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  v1::StatusResponse response;
  grpc::Status status = stub->Status(&context, v1::StatusRequest(), &response);
  if (status.ok()) EXPECT_EQ(response.weights_version(), 7);
  return status;
}

ClientSecurity Client(const SecurityConfig& config, Role role) {
  absl::StatusOr<ClientSecurity> security = MakeClientSecurity(config, role);
  EXPECT_TRUE(security.ok()) << security.status();
  return security.ok() ? *security : ClientSecurity{};
}

TEST_F(SecurityTest, TlsWithTokensAdmitsTheAllowedRolesOnly) {
  const SecurityConfig config = Full();
  std::unique_ptr<Server> server = Serve(config);
  ASSERT_NE(server, nullptr);
  const int port = server->started.port;
  EXPECT_TRUE(CallStatus(port, Client(config, Role::kActor), "127.0.0.1").ok());
  EXPECT_TRUE(CallStatus(port, Client(config, Role::kLearner), "localhost").ok());

  grpc::Status reader = CallStatus(port, Client(config, Role::kReader), "127.0.0.1");
  EXPECT_EQ(reader.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(reader.error_message(), HasSubstr("the reader role may not call Status"));
  EXPECT_THAT(reader.error_message(), HasSubstr("allowed: actor, learner"));

  // TLS without a token; a token the cluster does not know.
  SecurityConfig no_tokens = config;
  no_tokens.actor_token_file = "";
  grpc::Status missing = CallStatus(port, Client(no_tokens, Role::kActor), "127.0.0.1");
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("needs a bearer token"));
  ClientSecurity stranger = Client(config, Role::kActor);
  stranger.token = "0123456789abcdef0123456789abcdef";
  grpc::Status unknown = CallStatus(port, stranger, "127.0.0.1");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(unknown.error_message(), Not(HasSubstr(stranger.token)));
  // A real token's prefix, or the token with one byte more, is not the token.
  const std::string actor_token = Client(config, Role::kActor).token;
  for (const std::string& near :
       {actor_token.substr(0, actor_token.size() - 1), actor_token + "x"}) {
    ClientSecurity close = Client(config, Role::kActor);
    close.token = near;
    EXPECT_EQ(CallStatus(port, close, "127.0.0.1").error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << near;
  }

  // Plaintext to a TLS port, and TLS that trusts another CA, never reach the service.
  ClientSecurity plaintext = Client(config, Role::kActor);
  plaintext.credentials = nullptr;
  EXPECT_FALSE(CallStatus(port, plaintext, "127.0.0.1").ok());
  ClientSecurity other_ca = Client(Full("other"), Role::kActor);
  other_ca.token = Client(config, Role::kActor).token;
  EXPECT_EQ(CallStatus(port, other_ca, "127.0.0.1").error_code(), grpc::StatusCode::UNAVAILABLE);
  server->started.server->Shutdown();
}

TEST_F(SecurityTest, ClientCertificatesAreRequiredWhenAsked) {
  SecurityConfig config = Full();
  config.require_client_cert = true;
  std::unique_ptr<Server> server = Serve(config);
  ASSERT_NE(server, nullptr);
  const int port = server->started.port;
  EXPECT_TRUE(CallStatus(port, Client(config, Role::kActor), "127.0.0.1").ok());
  // The same CA and token, but no client certificate; then one from a CA the server does not know.
  SecurityConfig no_cert = config;
  no_cert.require_client_cert = false;  // a client that shows no certificate
  EXPECT_EQ(CallStatus(port, Client(no_cert, Role::kActor), "127.0.0.1").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  SecurityConfig foreign = config;
  foreign.cert_file = Path("other/cert.pem");
  foreign.key_file = Path("other/key.pem");
  EXPECT_EQ(CallStatus(port, Client(foreign, Role::kActor), "127.0.0.1").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  server->started.server->Shutdown();
}

TEST_F(SecurityTest, TokensWorkOverLoopbackPlaintext) {
  SecurityConfig config = Full();
  config.ca_file = config.cert_file = config.key_file = "";
  std::unique_ptr<Server> server = Serve(config);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(CallStatus(server->started.port, Client(config, Role::kLearner), "127.0.0.1").ok());
  EXPECT_EQ(CallStatus(server->started.port, ClientSecurity{}, "127.0.0.1").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  server->started.server->Shutdown();
}

// The authorizer keeps digests of the tokens: SHA-256 as FIPS 180-2 defines it.
TEST(Sha256Test, MatchesTheStandardsTestVectors) {
  auto hex = [](const std::string& bytes) {
    std::string out;
    for (unsigned char c : bytes) out += absl::StrFormat("%02x", c);
    return out;
  };
  EXPECT_EQ(hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(SecurityTest, WithoutTokenFilesEveryCallIsAdmitted) {
  std::unique_ptr<Server> server = Serve(SecurityConfig{});
  ASSERT_NE(server, nullptr);
  EXPECT_FALSE(server->security.authorizer->enabled());
  EXPECT_TRUE(CallStatus(server->started.port, ClientSecurity{}, "127.0.0.1").ok());
  server->started.server->Shutdown();
}

TEST_F(SecurityTest, BadFilesAreNamedWithTheirKey) {
  SecurityConfig config = Full();
  config.reader_token_file = Path("missing.token");
  absl::StatusOr<ClientSecurity> missing = MakeClientSecurity(config, Role::kReader);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("security.reader_token_file: cannot read"));
  EXPECT_FALSE(MakeServerSecurity(config).ok());

  const std::string short_token = Path("short.token");
  std::ofstream(short_token) << "abc\n";
  config = Full();
  config.actor_token_file = short_token;
  absl::StatusOr<ServerSecurity> server = MakeServerSecurity(config);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("has 3 characters"));

  config = Full();
  config.learner_token_file = config.actor_token_file;
  server = MakeServerSecurity(config);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("same token"));

  config = Full();
  config.cert_file = config.actor_token_file;  // not PEM
  server = MakeServerSecurity(config);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()),
              HasSubstr("security.cert_file: '" + config.cert_file + "' holds no PEM"));
}

}  // namespace
}  // namespace dreamfleet::services
