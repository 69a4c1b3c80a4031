// Who may talk to a dreamfleet service, and over what: TLS credentials for servers and clients,
// bearer tokens per role, and the check every RPC handler makes.
//
// A cluster's processes share one config. Its security section names a CA, a certificate and key
// (TLS; with require_client_cert also the clients' certificate, mTLS) and one token file per role.
// Servers (replay shards, learner) accept a call when it carries the token of a role the method
// allows; clients (actors, learner, CLI) send the token of their own role. TLS is off and tokens
// are not checked when the section is empty, which the cluster's processes allow only when every
// address is loopback (ValidateCluster, CheckListenSecurity) or security.insecure is set.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "services/config.h"

namespace dreamfleet::services {

// The roles a token can carry. Actors insert; the learner samples and updates priorities;
// readers (the CLI, dashboards' tools) only query.
enum class Role { kActor, kLearner, kReader };
absl::string_view RoleName(Role role);

// What a client process dials with: TLS credentials (nullptr = plaintext) and its bearer token
// ("" = none).
struct ClientSecurity {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string token;
};

// The client side of `config` for a process acting as `role`: reads the CA (and, under
// require_client_cert, the process's certificate and key) and the role's token file. Nothing
// else: an actor needs only the CA and its own token. Errors name the key and the file.
absl::StatusOr<ClientSecurity> MakeClientSecurity(const SecurityConfig& config, Role role);

// A channel to `address` with `args`, over TLS when `security` has credentials, sending its token
// on every call when it has one. services::CreateChannel calls this.
std::shared_ptr<grpc::Channel> CreateSecureChannel(const std::string& address,
                                                   const grpc::ChannelArguments& args,
                                                   const ClientSecurity& security);

// The server side: TLS credentials when security.cert_file is set (requiring and verifying client
// certificates against security.ca_file when security.require_client_cert), else plaintext.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const SecurityConfig& config);

// Whether a server may listen on `host` with `config`: off loopback it needs TLS (cert_file) and a
// check on its callers (role tokens or client certificates), unless security.insecure is set.
// The error names the key to set.
absl::Status CheckListenSecurity(const SecurityConfig& config, absl::string_view host_key,
                                 absl::string_view host);

// Logs how `process` talks to the others: TLS and tokens on or off, and a warning naming the
// address when security.insecure lets plaintext onto a non-loopback one.
void LogTransportSecurity(const Config& config, absl::string_view process);

// The token check of a server. Built from the role token files of a config; with no token file
// set it lets every call through (the loopback default).
class Authorizer {
 public:
  // Reads every role's token file that `config` names. Tokens must be at least 16 characters and
  // distinct per role.
  static absl::StatusOr<std::unique_ptr<Authorizer>> FromConfig(const SecurityConfig& config);
  // An authorizer with the given tokens ("" = that role has no token and cannot call). It keeps
  // only their SHA-256 digests, and compares the digest of what a call presents with them in
  // constant time: neither a token's bytes nor its length show in the time a check takes, and the
  // tokens are not in the server's memory (or a core dump of it) after start-up.
  Authorizer(std::string actor_token, std::string learner_token, std::string reader_token);

  bool enabled() const { return enabled_; }

  // OK when tokens are off, or when `context` carries "authorization: Bearer <token>" with the
  // token of one of `allowed`. Otherwise UNAUTHENTICATED (no token, or a token no role has) or
  // PERMISSION_DENIED (a role `method` does not allow); the message names the method and the
  // roles, never the token.
  grpc::Status Check(const grpc::ServerContextBase& context, absl::string_view method,
                     std::initializer_list<Role> allowed) const;

 private:
  std::string digests_[3];  // SHA-256 of each role's token; empty when the role has none
  bool enabled_ = false;
};

// The SHA-256 digest of `data`, 32 raw bytes.
std::string Sha256(absl::string_view data);

// Everything a server needs from `config`: its credentials and its token check.
struct ServerSecurity {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::unique_ptr<Authorizer> authorizer;  // never null; lets every call through without tokens
};
absl::StatusOr<ServerSecurity> MakeServerSecurity(const SecurityConfig& config);

// What a server process does first: CheckListenSecurity for `host_key` = `host`, then
// MakeServerSecurity, then LogTransportSecurity; the error names what is wrong.
absl::StatusOr<ServerSecurity> PrepareServerSecurity(const Config& config,
                                                     absl::string_view host_key,
                                                     absl::string_view host,
                                                     absl::string_view process);

// The metadata key and prefix clients send tokens under.
inline constexpr char kAuthorizationKey[] = "authorization";
inline constexpr char kBearerPrefix[] = "Bearer ";

}  // namespace dreamfleet::services
