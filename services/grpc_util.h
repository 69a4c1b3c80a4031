// gRPC plumbing shared by every service and client: channels with message-size limits and
// reconnect backoff, deadlines, server start on a (possibly ephemeral) port, and the one place
// where absl::Status and grpc::Status convert into each other.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "services/config.h"
#include "services/security.h"

namespace dreamfleet::services {

constexpr int kDefaultMaxMessageBytes = 64 << 20;

struct ChannelOptions {
  int max_message_bytes = kDefaultMaxMessageBytes;
  absl::Duration max_reconnect_backoff = absl::Seconds(5);
  absl::Duration keepalive = absl::Seconds(30);
  ClientSecurity security;  // TLS credentials and bearer token (default: plaintext, no token)
};

// A channel to `address` ("host:port"). Channels are cheap to share: make one per peer and reuse.
std::shared_ptr<grpc::Channel> CreateChannel(const std::string& address,
                                             const ChannelOptions& options = {});

// Sets a deadline `timeout` from now on `context`.
void SetDeadline(grpc::ClientContext* context, absl::Duration timeout);

// Waits until `channel` is connected or `timeout` passes.
absl::Status WaitForChannelReady(grpc::Channel* channel, absl::Duration timeout);

grpc::Status ToGrpcStatus(const absl::Status& status);
// `what` names the call for the message, e.g. "Insert to 127.0.0.1:7100".
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view what = "");

// A started server and the port it bound (useful when asked for port 0).
struct StartedServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

// Builds and starts a server on `host:port` (port 0 = any free port) serving `services`, with
// `max_message_bytes` for both directions, over `credentials` (nullptr = plaintext; see
// MakeServerCredentials). Callback services are supported.
absl::StatusOr<StartedServer> StartGrpcServer(
    const std::string& host, int port, const std::vector<grpc::Service*>& services,
    int max_message_bytes = kDefaultMaxMessageBytes,
    std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);

// "host:port" with IPv6 hosts bracketed.
std::string JoinHostPort(absl::string_view host, int port);

// The replay shard addresses a config names, in shard order: replay.addresses when set, else
// replay.host:replay.port + i for i < replay.shards.
std::vector<std::string> ShardAddresses(const ReplayConfig& config);

}  // namespace dreamfleet::services
