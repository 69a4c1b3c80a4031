#include "deploy/cluster_status.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "dreamfleet/v1/parameter.grpc.pb.h"
#include "dreamfleet/v1/replay.grpc.pb.h"
#include "services/grpc_util.h"
#include "services/metrics.h"

namespace dreamfleet::deploy {

bool ParsePrometheusValue(const std::string& text, const std::string& name, double* value) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    if (!absl::ConsumePrefix(&line, name)) continue;
    if (!line.empty() && line[0] == '{') {
      const size_t close = line.find('}');
      if (close == absl::string_view::npos) continue;
      line.remove_prefix(close + 1);
    }
    if (line.empty() || line[0] != ' ') continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (!fields.empty() && absl::SimpleAtod(fields[0], value)) return true;
  }
  return false;
}

std::vector<ActorEndpoint> ActorEndpoints(const services::Config& config, int num_actors) {
  std::vector<ActorEndpoint> endpoints;
  if (config.actor.metrics_addresses.empty()) {
    for (int i = 0; i < num_actors; ++i) {
      endpoints.push_back({"127.0.0.1", static_cast<int>(config.actor.metrics_port) + i, ""});
    }
    return endpoints;
  }
  for (absl::string_view entry :
       absl::StrSplit(config.actor.metrics_addresses, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    const size_t colon = entry.rfind(':');
    int port = 0;
    if (colon == absl::string_view::npos || !absl::SimpleAtoi(entry.substr(colon + 1), &port)) {
      endpoints.push_back({std::string(entry), 0, "not of the form host:port"});
      continue;
    }
    std::string host(absl::StripPrefix(absl::StripSuffix(entry.substr(0, colon), "]"), "["));
    addrinfo hints = {};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (rc != 0) {
      endpoints.push_back({host, port, gai_strerror(rc)});
      continue;
    }
    std::set<std::string> seen;  // getaddrinfo may list an address once per protocol
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
      char text[INET_ADDRSTRLEN] = {};
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) == nullptr) continue;
      if (seen.insert(text).second) endpoints.push_back({text, port, ""});
    }
    freeaddrinfo(found);
  }
  return endpoints;
}

ClusterStatus QueryCluster(const services::Config& config, int num_actors) {
  ClusterStatus status;
  const absl::Duration timeout = absl::Seconds(2);
  // A reader's credentials; when they cannot be read, every query fails with that reason.
  services::ChannelOptions channel_options;
  absl::StatusOr<services::ClientSecurity> security =
      services::MakeClientSecurity(config.security, services::Role::kReader);
  if (security.ok()) channel_options.security = *security;
  for (const std::string& address : services::ShardAddresses(config.replay)) {
    ShardStatus shard;
    shard.address = address;
    if (!security.ok()) {
      shard.error = std::string(security.status().message());
      status.shards.push_back(shard);
      continue;
    }
    auto stub = v1::ReplayService::NewStub(services::CreateChannel(address, channel_options));
    grpc::ClientContext context;
    services::SetDeadline(&context, timeout);
    v1::InfoRequest request;
    v1::InfoResponse response;
    grpc::Status rpc = stub->Info(&context, request, &response);
    shard.up = rpc.ok();
    if (!rpc.ok()) shard.error = rpc.error_message();
    for (const v1::TableInfo& table : response.tables()) {
      shard.size_steps += table.size_steps();
      shard.inserted_steps += table.inserted_steps();
      shard.sampled_items += table.sampled_items();
      shard.episodes += table.episodes();
    }
    status.shards.push_back(shard);
  }
  {
    LearnerStatus& learner = status.learner;
    learner.address = services::JoinHostPort(config.learner.host, config.learner.port);
    auto stub =
        v1::ParameterService::NewStub(services::CreateChannel(learner.address, channel_options));
    grpc::ClientContext context;
    services::SetDeadline(&context, timeout);
    v1::StatusResponse response;
    grpc::Status rpc = security.ok() ? stub->Status(&context, v1::StatusRequest(), &response)
                                     : grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                                    std::string(security.status().message()));
    learner.up = rpc.ok();
    if (!rpc.ok()) learner.error = rpc.error_message();
    learner.weights_version = response.weights_version();
    learner.updates = response.updates();
    learner.updates_per_second = response.updates_per_second();
    learner.train_ratio = response.train_ratio();
    learner.episode_return = response.episode_return();
    learner.data_wait_fraction = response.data_wait_fraction();
    learner.losses.insert(response.losses().begin(), response.losses().end());
    learner.entropy = response.entropy();
    if (response.has_evaluation()) {
      const v1::Evaluation& e = response.evaluation();
      LearnerStatus::Evaluation& mine = learner.evaluation;
      mine.env_steps = e.env_steps();
      mine.updates = e.updates();
      mine.episodes = e.episodes();
      mine.greedy_return = e.greedy_return();
      mine.greedy_success = e.greedy_success();
      mine.sampled_return = e.sampled_return();
      mine.sampled_success = e.sampled_success();
      mine.best_return = e.best_return();
    }
  }
  for (const ActorEndpoint& endpoint : ActorEndpoints(config, num_actors)) {
    ActorStatus actor;
    actor.address = services::JoinHostPort(endpoint.host, endpoint.port);
    absl::StatusOr<std::string> text =
        endpoint.error.empty()
            ? services::HttpGet(endpoint.host, endpoint.port, "/metrics")
            : absl::StatusOr<std::string>(absl::UnavailableError(endpoint.error));
    actor.up = text.ok();
    if (text.ok()) {
      ParsePrometheusValue(*text, "dreamfleet_actor_env_steps_total", &actor.env_steps);
      ParsePrometheusValue(*text, "dreamfleet_actor_episodes_total", &actor.episodes);
      ParsePrometheusValue(*text, "dreamfleet_actor_success_rate", &actor.success_rate);
      ParsePrometheusValue(*text, "dreamfleet_actor_episode_return", &actor.episode_return);
      ParsePrometheusValue(*text, "dreamfleet_actor_weights_version", &actor.weights_version);
      ParsePrometheusValue(*text, "dreamfleet_actor_env_steps_per_second",
                           &actor.env_steps_per_second);
    }
    status.actors.push_back(actor);
  }
  return status;
}

double ClusterStatus::env_steps() const {
  double total = 0;
  for (const auto& actor : actors) total += actor.env_steps;
  return total;
}

double ClusterStatus::success_rate() const {
  double total = 0;
  int count = 0;
  for (const auto& actor : actors) {
    if (actor.up && actor.episodes > 0) {
      total += actor.success_rate;
      ++count;
    }
  }
  return count == 0 ? 0 : total / count;
}

double ClusterStatus::episode_return() const {
  double total = 0;
  int count = 0;
  for (const auto& actor : actors) {
    if (actor.up && actor.episodes > 0) {
      total += actor.episode_return;
      ++count;
    }
  }
  return count == 0 ? 0 : total / count;
}

uint64_t ClusterStatus::replay_steps() const {
  uint64_t total = 0;
  for (const auto& shard : shards) total += shard.inserted_steps;
  return total;
}

namespace {
std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}
}  // namespace

std::string ClusterStatus::ToJson() const {
  std::string out = "{\"shards\":[";
  for (size_t i = 0; i < shards.size(); ++i) {
    const ShardStatus& s = shards[i];
    absl::StrAppend(&out, i ? "," : "", "{\"address\":", JsonString(s.address),
                    ",\"up\":", s.up ? "true" : "false", ",\"size_steps\":", s.size_steps,
                    ",\"inserted_steps\":", s.inserted_steps, ",\"sampled_items\":", s.sampled_items,
                    ",\"episodes\":", s.episodes, "}");
  }
  absl::StrAppend(&out, "],\"learner\":{\"address\":", JsonString(learner.address),
                  ",\"up\":", learner.up ? "true" : "false",
                  ",\"weights_version\":", learner.weights_version,
                  ",\"updates\":", learner.updates,
                  ",\"updates_per_second\":", learner.updates_per_second,
                  ",\"train_ratio\":", learner.train_ratio,
                  ",\"data_wait_fraction\":", learner.data_wait_fraction, ",\"losses\":{");
  bool first = true;
  for (const auto& [name, value] : learner.losses) {
    absl::StrAppend(&out, first ? "" : ",", JsonString(name), ":", value);
    first = false;
  }
  absl::StrAppend(&out, "}");
  if (const LearnerStatus::Evaluation& e = learner.evaluation; e.env_steps >= 0) {
    absl::StrAppend(
        &out, ",\"evaluation\":{\"env_steps\":", e.env_steps, ",\"updates\":", e.updates,
        ",\"episodes\":", e.episodes, ",\"greedy_return\":", e.greedy_return,
        ",\"greedy_success\":", e.greedy_success, ",\"sampled_return\":", e.sampled_return,
        ",\"sampled_success\":", e.sampled_success, ",\"best_return\":", e.best_return, "}");
  }
  absl::StrAppend(&out, "},\"actors\":[");
  for (size_t i = 0; i < actors.size(); ++i) {
    const ActorStatus& a = actors[i];
    absl::StrAppend(&out, i ? "," : "", "{\"address\":", JsonString(a.address),
                    ",\"up\":", a.up ? "true" : "false", ",\"env_steps\":", a.env_steps,
                    ",\"episodes\":", a.episodes, ",\"success_rate\":", a.success_rate,
                    ",\"episode_return\":", a.episode_return,
                    ",\"weights_version\":", a.weights_version, "}");
  }
  absl::StrAppend(&out, "],\"env_steps\":", env_steps(), ",\"success_rate\":", success_rate(),
                  ",\"episode_return\":", episode_return(), "}");
  return out;
}

std::string ClusterStatus::ToText() const {
  std::string out;
  absl::StrAppend(&out, absl::StrFormat("learner  %-21s %s  version %d  updates %d  %.2f upd/s  "
                                        "train ratio %.1f  data wait %.0f%%\n",
                                        learner.address, learner.up ? "up  " : "DOWN",
                                        learner.weights_version, learner.updates,
                                        learner.updates_per_second, learner.train_ratio,
                                        100 * learner.data_wait_fraction));
  if (const LearnerStatus::Evaluation& e = learner.evaluation; e.env_steps >= 0) {
    absl::StrAppend(&out, absl::StrFormat("         evaluation at %d env steps (update %d), %d "
                                          "episodes: greedy return %.2f success %.0f%%, sampled "
                                          "return %.2f success %.0f%%; best %.2f\n",
                                          e.env_steps, e.updates, e.episodes, e.greedy_return,
                                          100 * e.greedy_success, e.sampled_return,
                                          100 * e.sampled_success, e.best_return));
  }
  for (const ShardStatus& s : shards) {
    absl::StrAppend(&out, absl::StrFormat("replay   %-21s %s  stored %d steps  inserted %d  "
                                          "sampled %d items  %d episodes\n",
                                          s.address, s.up ? "up  " : "DOWN", s.size_steps,
                                          s.inserted_steps, s.sampled_items, s.episodes));
  }
  for (const ActorStatus& a : actors) {
    absl::StrAppend(&out, absl::StrFormat("actor    %-21s %s  %.0f env steps  %.0f episodes  "
                                          "success %.0f%%  return %.2f  weights v%.0f\n",
                                          a.address, a.up ? "up  " : "DOWN", a.env_steps,
                                          a.episodes, 100 * a.success_rate, a.episode_return,
                                          a.weights_version));
  }
  return out;
}

}  // namespace dreamfleet::deploy
