// Typed configuration shared by every dreamfleet binary. One YAML file (or the embedded default,
// configs/default.yaml) is parsed once into these structs; `--set section.key=value` overrides are
// applied on top; Validate() checks ranges and cross-field rules. Every field is listed once in
// ConfigFields() (config.cc) with its range and documentation: parsing, overrides, printing and
// the configs/README.md check all read that one table. The defaults below are the embedded
// default's values, so a key a file leaves out means what configs/default.yaml says
// (config_test checks that they stay equal).
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dreamfleet::services {

struct RunConfig {
  std::string name = "default";
  std::string dir = "runs/default";  // logs, metrics, checkpoints and replay data live here
  int64_t seed = 0;
  std::string log_level = "info";
};

struct ReplayConfig {
  int64_t shards = 1;
  std::string host = "127.0.0.1";
  int64_t port = 7100;          // shard i listens on port + i; 0 = any free port
  int64_t metrics_port = 9100;  // shard i serves /metrics on metrics_port + i; 0 = any free port
  std::string addresses = "";   // comma-separated shard addresses; overrides host/port for clients
  std::string table = "default";
  int64_t capacity_steps = 200000;
  double max_actor_share = 0;  // fraction of capacity_steps one actor stream may hold; 0 = no limit
  int64_t sequence_length = 32;
  std::string selector = "uniform";  // uniform | recency | prioritized
  double priority_exponent = 0.8;
  double rewarded_share = 0;  // share of windows around a nonzero reward
  double recency_decay = 0.999;
  double samples_per_insert = 128;   // replayed steps per inserted step (train_ratio); 0 = off
  double limiter_tolerance = 10000;  // replayed steps of slack either way
  int64_t min_size_to_sample = 1024;  // steps stored before the first sample is served
  std::string data_dir = "";         // "" = <run.dir>/replay/shard-<i>
  int64_t wal_fsync_interval_ms = 20;
  int64_t checkpoint_interval_s = 300;
  std::string compression = "none";  // none | zstd
  int64_t max_message_mb = 64;
  int64_t max_actor_id_bytes = 256;  // longer actor ids are refused
  int64_t max_streams = 1024;        // Insert/Sample/GetEpisode calls a shard serves at once
  int64_t max_streams_per_client = 512;  // of those, from one client address
};

struct EnvConfig {
  std::string name = "grid_empty_5x5";
  int64_t base_seed = 0;
  int64_t image_size = 64;
  bool grayscale = false;
  int64_t action_repeat = 4;
  double sticky_actions = -1.0;  // < 0 = the env's own default
  int64_t max_episode_steps = 0; // 0 = the env's own default
  std::string rom = "";
  std::string core = "";
  std::string view = "symbolic";  // full | egocentric | symbolic (gridworlds)
  std::string action_set = "full";  // full | minimal (MinAtar games)
};

struct ActorConfig {
  int64_t count = 1;
  int64_t envs_per_actor = 4;
  int64_t chunk_steps = 32;
  int64_t metrics_port = 9200;   // actor i serves /metrics on metrics_port + i; 0 = any free port
  std::string metrics_host = "127.0.0.1";  // where actors' /metrics listen
  std::string metrics_addresses = "";  // where `dreamfleet status` finds actors; "" = local ports
  int64_t threads = 1;
  int64_t max_env_steps = 0;     // 0 = unlimited
  double explore_prob = 0;       // chance per step of starting a held random action; 0 = none
  int64_t explore_hold = 1;      // a held random action lasts 1..explore_hold steps
};

struct LearnerConfig {
  std::string host = "127.0.0.1";
  int64_t port = 7000;
  int64_t metrics_port = 9000;
  std::string preset = "1m";     // debug | 1m | 12m | 25m | 50m | 100m | 200m | 400m
  int64_t units = 0;   // MLP width (encoder, decoder, heads, actor, critic); 0 = the preset's
  int64_t hidden = 0;  // the RSSM's hidden layers (posterior, prior, core input); 0 = the preset's
  int64_t stoch = 0;   // the RSSM's categorical latents; 0 = the preset's
  int64_t classes = 0;           // classes per categorical latent; 0 = the preset's
  std::string device = "auto";   // auto | cpu | cuda
  int64_t threads = 2;
  bool overlap_world_model = false;  // the world model's backward beside the actor-critic
  int64_t batch_size = 16;
  int64_t batch_length = 32;
  double lr = 1e-3;                  // one LaProp optimiser over world model and actor-critic
  double actor_critic_lr = 1e-4;     // 0 = lr
  double reconstruction_scale = 30;  // decoder loss scale
  double continue_scale = 1;         // continue head loss scale
  double kl_dyn_scale = 0.5;        // dynamics KL (trains the prior)
  double kl_rep_scale = 0.1;        // representation KL (trains the posterior)
  int64_t replay_context = 0;       // 1: windows start from the actor's stored latent
  std::string vector_encoder = "mlp";  // mlp | grid: how the vector observation is encoded
  std::string vector_decoder = "mlp";  // mlp | grid: how it is decoded
  std::string vector_loss = "symlog_mse";  // symlog_mse | binary: the vector decoder's likelihood
  bool vector_balance = false;      // binary: weight each channel's occupied cells by its rarity
  std::string twohot = "symlog";    // symlog | raw: reward head and critic twohot space
  double agc = 0.3;
  int64_t warmup_updates = 0;  // linear learning-rate warmup
  int64_t imagination_horizon = 15;
  int64_t imagination_starts = 0;  // 0 = every posterior state of the batch
  double imagination_explore = 0;  // share of imagined rollouts that open with a held random action
  double actor_grad_dynamics = 0;  // share of the actor's gradient backpropagated through the model
  double disagreement_scale = 0;   // Plan2Explore intrinsic reward weight (0 = off)
  int64_t disagreement_models = 8;  // its ensemble size
  double horizon = 333;
  double lambda = 0.95;
  double entropy = 3e-4;
  double replay_value_scale = 0.3;  // critic loss on replayed states' real returns (official 0.3)
  int64_t prefetch_batches = 2;
  int64_t publish_every_updates = 5;
  double publish_every_seconds = 10;
  double checkpoint_minutes = 5;
  int64_t max_updates = 0;       // 0 = unlimited
  int64_t eval_every_updates = 0;  // evaluation episodes every N updates (0 = none)
  int64_t eval_episodes = 10;      // per mode (greedy and sampled)
  int64_t eval_max_steps = 10000;  // an evaluation episode still running is cut here
};

// TLS and tokens (services/security.h). Empty = plaintext without tokens, which Validate allows
// only when every address is loopback, or with insecure = true.
struct SecurityConfig {
  std::string ca_file = "";    // PEM CA: clients verify servers with it (and mTLS servers, clients)
  std::string cert_file = "";  // PEM certificate chain this process serves (and shows, for mTLS)
  std::string key_file = "";   // its PEM private key
  bool require_client_cert = false;     // servers demand a client certificate signed by ca_file
  std::string actor_token_file = "";    // bearer token of the actor role
  std::string learner_token_file = "";  // of the learner role
  std::string reader_token_file = "";   // of the reader role (CLI, queries)
  bool insecure = false;                // allow plaintext on non-loopback addresses
};

struct Config {
  RunConfig run;
  ReplayConfig replay;
  EnvConfig env;
  ActorConfig actor;
  LearnerConfig learner;
  SecurityConfig security;

  // Range and cross-field checks; the message names the key and the value.
  absl::Status Validate() const;
};

// Checks that need the whole cluster's settings (a shard alone does not know its clients'
// chunk and batch sizes): the rate limiter's tolerance must fit one actor chunk's samples and one
// learner batch, or an insert or a sample could wait forever; and no address may be off loopback
// without TLS (security.ca_file) unless security.insecure. The launcher, actors and learner call
// it; the message names the keys and values.
absl::Status ValidateCluster(const Config& config);

// Of a stream cap (replay.max_streams or replay.max_streams_per_client; > 0), the places Insert
// calls may take: all but cap / 16 (at least one, when the cap is 2 or more), which are kept for
// the learner's Sample and the readers' calls, so that actors can never lock the learner out.
int64_t InsertStreamPlaces(int64_t cap);

// Whether `host` (a name or address, IPv6 optionally bracketed) is this machine's loopback:
// localhost, 127.0.0.0/8, ::1. "" and 0.0.0.0 (every interface) are not.
bool IsLoopbackHost(absl::string_view host);
// The first address of `config` (replay.host, learner.host, replay.addresses) that is not
// loopback: its key and host. False when every one is.
bool FirstNonLoopbackHost(const Config& config, std::string* key, std::string* host);

// One entry of the config table.
struct ConfigField {
  std::string key;  // "section.name"
  std::variant<int64_t*, double*, bool*, std::string*> value;
  double min = 0, max = 0;           // numeric range (inclusive), used when min < max
  std::vector<std::string> choices;  // allowed strings; empty = any
  std::string doc;
};

// The table of every field of `config`, in print order.
std::vector<ConfigField> ConfigFields(Config* config);

// The embedded default config (configs/default.yaml, compiled in).
absl::string_view DefaultConfigYaml();

// Parses `yaml` (named `source` in errors, e.g. a file path) over the defaults of `base`.
absl::StatusOr<Config> ParseConfig(absl::string_view yaml, absl::string_view source,
                                   Config base = Config());
// Applies one "section.key=value" override.
absl::Status ApplyOverride(absl::string_view assignment, Config* config);
// Loads `path` ("" = the embedded default), applies `overrides` in order, validates.
absl::StatusOr<Config> LoadConfig(absl::string_view path, const std::vector<std::string>& overrides);
// The whole config as YAML, every key, with its documentation as comments when `with_docs`.
std::string ConfigToYaml(const Config& config, bool with_docs = false);

}  // namespace dreamfleet::services
