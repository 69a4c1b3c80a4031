// Reads the state of a running cluster for `dreamfleet status` and the `dreamfleet up` progress
// view: replay shards through ReplayService.Info, the learner through ParameterService.Status and
// the actors by scraping their /metrics.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/config.h"

namespace dreamfleet::deploy {

struct ShardStatus {
  std::string address;
  bool up = false;
  std::string error;
  uint64_t size_steps = 0;
  uint64_t inserted_steps = 0;
  uint64_t sampled_items = 0;
  uint64_t episodes = 0;
};

struct ActorStatus {
  std::string address;  // host:metrics_port
  bool up = false;
  double env_steps = 0;
  double episodes = 0;
  double success_rate = 0;
  double episode_return = 0;
  double weights_version = 0;
  double env_steps_per_second = 0;
};

struct LearnerStatus {
  std::string address;
  bool up = false;
  std::string error;
  int64_t weights_version = 0;
  int64_t updates = 0;
  double updates_per_second = 0;
  double train_ratio = 0;
  double episode_return = 0;
  double data_wait_fraction = 0;
  std::map<std::string, double> losses;
  double entropy = 0;  // the policy's mean entropy on imagined states, latest update
  // The latest evaluation episodes (learner.eval_every_updates); env_steps < 0: none yet.
  struct Evaluation {
    int64_t env_steps = -1;
    int64_t updates = 0;
    int64_t episodes = 0;
    double greedy_return = 0;
    double greedy_success = 0;
    double sampled_return = 0;
    double sampled_success = 0;
    double best_return = 0;  // of the agent kept in <run.dir>/best
  } evaluation;
};

struct ClusterStatus {
  std::vector<ShardStatus> shards;
  LearnerStatus learner;
  std::vector<ActorStatus> actors;

  double env_steps() const;      // sum over actors
  double success_rate() const;   // mean over actors that report one
  double episode_return() const; // mean over actors that report one
  uint64_t replay_steps() const; // inserted, sum over shards
  std::string ToJson() const;
  std::string ToText() const;    // the human table of `dreamfleet status`
};

// Where the actors' /metrics are: with actor.metrics_addresses, every address each listed
// host:port resolves to (a compose service or a Kubernetes headless service names all its
// replicas; a name that does not resolve is kept as given, and reported down); otherwise
// 127.0.0.1:actor.metrics_port + i for the `num_actors` actors `dreamfleet up` starts.
struct ActorEndpoint {
  std::string host;
  int port = 0;
  std::string error;  // why the address could not be resolved
};
std::vector<ActorEndpoint> ActorEndpoints(const services::Config& config, int num_actors);

// Queries everything with short deadlines; unreachable parts are reported, not errors.
// `num_actors` matters only without actor.metrics_addresses.
ClusterStatus QueryCluster(const services::Config& config, int num_actors);

// Parses the value of `name` (no labels, or the first series) from Prometheus text; false when
// absent.
bool ParsePrometheusValue(const std::string& text, const std::string& name, double* value);

}  // namespace dreamfleet::deploy
