#include "services/security.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/logging.h"
#include "services/status_macros.h"

namespace dreamfleet::services {
namespace {

constexpr size_t kMinTokenChars = 16;
constexpr size_t kMaxSecretBytes = 1 << 20;

// The contents of the file `key` names. Errors name the key and the path.
absl::StatusOr<std::string> ReadSecretFile(absl::string_view key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(key, ": cannot read '", path, "'"));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  std::string text = contents.str();
  if (text.size() > kMaxSecretBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": '", path, "' is larger than ", kMaxSecretBytes, " bytes"));
  }
  return text;
}

// A PEM file of the expected kind ("CERTIFICATE" or "PRIVATE KEY").
absl::StatusOr<std::string> ReadPem(absl::string_view key, const std::string& path,
                                    absl::string_view kind) {
  ASSIGN_OR_RETURN(std::string pem, ReadSecretFile(key, path));
  if (!absl::StrContains(pem, "-----BEGIN") || !absl::StrContains(pem, kind)) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": '", path, "' holds no PEM ", kind));
  }
  return pem;
}

absl::StatusOr<std::string> ReadToken(absl::string_view key, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSecretFile(key, path));
  std::string token(absl::StripAsciiWhitespace(text));
  if (token.size() < kMinTokenChars) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": the token in '", path, "' has ",
                                                   token.size(), " characters; at least ",
                                                   kMinTokenChars, " are needed"));
  }
  for (char c : token) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": the token in '", path, "' holds a space or control character"));
    }
  }
  return token;
}

const std::string& TokenFileKey(const SecurityConfig& config, Role role, std::string* key) {
  switch (role) {
    case Role::kActor:
      *key = "security.actor_token_file";
      return config.actor_token_file;
    case Role::kLearner:
      *key = "security.learner_token_file";
      return config.learner_token_file;
    case Role::kReader:
      break;
  }
  *key = "security.reader_token_file";
  return config.reader_token_file;
}

// Compares without an early exit, so the time taken does not tell how much of a token matched.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

// Adds the process's bearer token to every call of a channel.
class TokenInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(std::string header) : header_(std::move(header)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({kAuthorizationKey, header_});
    }
    methods->Proceed();
  }

 private:
  const std::string header_;  // a copy: a call may outlive the channel's factory
};

class TokenInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string token) : header_(kBearerPrefix + token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* /*info*/) override {
    return new TokenInterceptor(header_);
  }

 private:
  const std::string header_;
};

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kActor:
      return "actor";
    case Role::kLearner:
      return "learner";
    case Role::kReader:
      break;
  }
  return "reader";
}

absl::StatusOr<ClientSecurity> MakeClientSecurity(const SecurityConfig& config, Role role) {
  ClientSecurity security;
  if (!config.ca_file.empty()) {
    grpc::SslCredentialsOptions options;
    ASSIGN_OR_RETURN(options.pem_root_certs,
                     ReadPem("security.ca_file", config.ca_file, "CERTIFICATE"));
    if (config.require_client_cert) {
      ASSIGN_OR_RETURN(options.pem_cert_chain,
                       ReadPem("security.cert_file", config.cert_file, "CERTIFICATE"));
      ASSIGN_OR_RETURN(options.pem_private_key,
                       ReadPem("security.key_file", config.key_file, "PRIVATE KEY"));
    }
    security.credentials = grpc::SslCredentials(options);
  }
  std::string key;
  const std::string& token_file = TokenFileKey(config, role, &key);
  if (!token_file.empty()) {
    ASSIGN_OR_RETURN(security.token, ReadToken(key, token_file));
  }
  return security;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const SecurityConfig& config) {
  if (config.cert_file.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      config.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                 : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadPem("security.cert_file", config.cert_file, "CERTIFICATE"));
  ASSIGN_OR_RETURN(pair.private_key, ReadPem("security.key_file", config.key_file, "PRIVATE KEY"));
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!config.ca_file.empty()) {
    ASSIGN_OR_RETURN(options.pem_root_certs,
                     ReadPem("security.ca_file", config.ca_file, "CERTIFICATE"));
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<ServerSecurity> MakeServerSecurity(const SecurityConfig& config) {
  ServerSecurity security;
  ASSIGN_OR_RETURN(security.credentials, MakeServerCredentials(config));
  ASSIGN_OR_RETURN(security.authorizer, Authorizer::FromConfig(config));
  return security;
}

absl::Status CheckListenSecurity(const SecurityConfig& config, absl::string_view host_key,
                                 absl::string_view host) {
  if (config.insecure || IsLoopbackHost(host)) return absl::OkStatus();
  if (config.cert_file.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        host_key, " '", host, "' is not a loopback address and security.cert_file is not set: ",
        "the server would listen in plaintext. Set security.cert_file and security.key_file "
        "(deploy/certs.sh makes them), or security.insecure: true"));
  }
  const bool tokens = !config.actor_token_file.empty() || !config.learner_token_file.empty() ||
                      !config.reader_token_file.empty();
  if (!tokens && !config.require_client_cert) {
    return absl::FailedPreconditionError(absl::StrCat(
        host_key, " '", host, "' is not a loopback address and nothing checks who calls: set ",
        "the security.*_token_file keys or security.require_client_cert, or "
        "security.insecure: true"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerSecurity> PrepareServerSecurity(const Config& config,
                                                     absl::string_view host_key,
                                                     absl::string_view host,
                                                     absl::string_view process) {
  RETURN_IF_ERROR(CheckListenSecurity(config.security, host_key, host));
  ASSIGN_OR_RETURN(ServerSecurity security, MakeServerSecurity(config.security));
  LogTransportSecurity(config, process);
  return security;
}

void LogTransportSecurity(const Config& config, absl::string_view process) {
  const SecurityConfig& security = config.security;
  const bool tokens = !security.actor_token_file.empty() || !security.learner_token_file.empty() ||
                      !security.reader_token_file.empty();
  std::string key, host;
  if (security.cert_file.empty() && FirstNonLoopbackHost(config, &key, &host)) {
    DF_LOG(WARNING) << process << ": no TLS (security.cert_file) although " << key << " '" << host
                    << "' is not loopback: the cluster talks in plaintext"
                    << (tokens ? " (tokens travel in the clear)" : " without tokens")
                    << "; anyone who reaches its ports can read and write its data";
    return;
  }
  DF_LOG(INFO) << process << ": "
               << (security.cert_file.empty()
                       ? "plaintext on loopback"
                       : (security.require_client_cert ? "TLS with client certificates" : "TLS"))
               << (tokens ? ", bearer tokens per role" : ", no tokens");
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::FromConfig(const SecurityConfig& config) {
  std::string tokens[3];
  const Role roles[3] = {Role::kActor, Role::kLearner, Role::kReader};
  for (int i = 0; i < 3; ++i) {
    std::string key;
    const std::string& file = TokenFileKey(config, roles[i], &key);
    if (!file.empty()) {
      ASSIGN_OR_RETURN(tokens[i], ReadToken(key, file));
    }
  }
  for (int i = 0; i < 3; ++i) {
    for (int j = i + 1; j < 3; ++j) {
      if (!tokens[i].empty() && tokens[i] == tokens[j]) {
        return absl::InvalidArgumentError(
            absl::StrCat("the ", RoleName(roles[i]), " and ", RoleName(roles[j]),
                         " token files hold the same token; each role needs its own"));
      }
    }
  }
  return std::make_unique<Authorizer>(std::move(tokens[0]), std::move(tokens[1]),
                                      std::move(tokens[2]));
}

std::string Sha256(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    DF_LOG(FATAL) << "OpenSSL's SHA-256 failed";
  }
  return std::string(reinterpret_cast<const char*>(digest), size);
}

Authorizer::Authorizer(std::string actor_token, std::string learner_token,
                       std::string reader_token) {
  std::string* tokens[3] = {&actor_token, &learner_token, &reader_token};
  for (int i = 0; i < 3; ++i) {
    if (tokens[i]->empty()) continue;
    digests_[i] = Sha256(*tokens[i]);
    OPENSSL_cleanse(tokens[i]->data(), tokens[i]->size());
    enabled_ = true;
  }
}

grpc::Status Authorizer::Check(const grpc::ServerContextBase& context, absl::string_view method,
                               std::initializer_list<Role> allowed) const {
  if (!enabled_) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  auto found = metadata.find(kAuthorizationKey);
  if (found == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat(method, " needs a bearer token (metadata '", kAuthorizationKey,
                                     ": ", kBearerPrefix, "<token>')"));
  }
  const absl::string_view header(found->second.data(), found->second.size());
  if (!absl::StartsWith(header, kBearerPrefix)) {
    return grpc::Status(
        grpc::StatusCode::UNAUTHENTICATED,
        absl::StrCat(method, ": the authorization metadata is not '", kBearerPrefix, "<token>'"));
  }
  const std::string digest = Sha256(header.substr(sizeof(kBearerPrefix) - 1));
  const Role roles[3] = {Role::kActor, Role::kLearner, Role::kReader};
  for (int i = 0; i < 3; ++i) {
    if (digests_[i].empty() || !ConstantTimeEquals(digest, digests_[i])) continue;
    for (Role role : allowed) {
      if (role == roles[i]) return grpc::Status::OK;
    }
    std::vector<std::string> names;
    for (Role role : allowed) names.emplace_back(RoleName(role));
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("the ", RoleName(roles[i]), " role may not call ", method,
                                     " (allowed: ", absl::StrJoin(names, ", "), ")"));
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      absl::StrCat(method, ": the bearer token is not one of this cluster's"));
}

std::shared_ptr<grpc::Channel> CreateSecureChannel(const std::string& address,
                                                   const grpc::ChannelArguments& args,
                                                   const ClientSecurity& security) {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      security.credentials != nullptr ? security.credentials : grpc::InsecureChannelCredentials();
  if (security.token.empty()) return grpc::CreateCustomChannel(address, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<TokenInterceptorFactory>(security.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, credentials, args,
                                                                 std::move(factories));
}

}  // namespace dreamfleet::services
