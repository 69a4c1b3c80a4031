// Config parsing: YAML → Config through the one table of fields in ConfigFields().
#include "services/config.h"

#include <arpa/inet.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/status_macros.h"
#include "yaml-cpp/yaml.h"

extern const char kDefaultConfigYaml[];

namespace dreamfleet::services {
namespace {

ConfigField Int(std::string key, int64_t* value, double min, double max, std::string doc) {
  return ConfigField{std::move(key), value, min, max, {}, std::move(doc)};
}
ConfigField Real(std::string key, double* value, double min, double max, std::string doc) {
  return ConfigField{std::move(key), value, min, max, {}, std::move(doc)};
}
ConfigField Bool(std::string key, bool* value, std::string doc) {
  return ConfigField{std::move(key), value, 0, 0, {}, std::move(doc)};
}
ConfigField Str(std::string key, std::string* value, std::vector<std::string> choices,
                std::string doc) {
  return ConfigField{std::move(key), value, 0, 0, std::move(choices), std::move(doc)};
}

constexpr double kMaxPort = 65535;
constexpr double kBig = 9.0e15;

// Shortest decimal text that reads back as the same double.
std::string FormatDouble(double value) {
  for (int precision = 6; precision <= 17; ++precision) {
    std::string text = absl::StrFormat("%.*g", precision, value);
    double back = 0;
    if (absl::SimpleAtod(text, &back) && back == value) return text;
  }
  return absl::StrFormat("%.17g", value);
}

std::string FormatRangeNumber(double value, bool integer) {
  if (integer) return absl::StrCat(static_cast<int64_t>(value));
  return FormatDouble(value);
}

std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string ValueText(const ConfigField& field) {
  return std::visit(
      [](auto* value) -> std::string {
        using T = std::remove_pointer_t<decltype(value)>;
        if constexpr (std::is_same_v<T, int64_t>) return absl::StrCat(*value);
        if constexpr (std::is_same_v<T, double>) return FormatDouble(*value);
        if constexpr (std::is_same_v<T, bool>) return *value ? "true" : "false";
        if constexpr (std::is_same_v<T, std::string>) return Quote(*value);
      },
      field.value);
}

// Checks the field's current value against its range or choices. `where` prefixes the message.
absl::Status CheckField(const ConfigField& field, const std::string& where) {
  if (auto* s = std::get_if<std::string*>(&field.value)) {
    if (!field.choices.empty() &&
        std::find(field.choices.begin(), field.choices.end(), **s) == field.choices.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "config key \"", field.key, "\" = \"",
                                                     **s, "\" is not one of: ",
                                                     absl::StrJoin(field.choices, ", ")));
    }
    return absl::OkStatus();
  }
  if (field.min >= field.max) return absl::OkStatus();
  double number = 0;
  bool integer = false;
  if (auto* i = std::get_if<int64_t*>(&field.value)) {
    number = static_cast<double>(**i);
    integer = true;
  } else if (auto* d = std::get_if<double*>(&field.value)) {
    number = **d;
  } else {
    return absl::OkStatus();
  }
  if (!(number >= field.min && number <= field.max)) {  // also rejects NaN
    return absl::InvalidArgumentError(absl::StrCat(
        where, "config key \"", field.key, "\" = ", ValueText(field), " is out of range [",
        FormatRangeNumber(field.min, integer), ", ", FormatRangeNumber(field.max, integer), "]"));
  }
  return absl::OkStatus();
}

// Sets the field from text; errors name the key and the text seen.
absl::Status SetField(const ConfigField& field, const std::string& text, const std::string& where) {
  auto type_error = [&](const char* expected) {
    return absl::InvalidArgumentError(absl::StrCat(where, "config key \"", field.key, "\" expects ",
                                                   expected, ", got \"", text, "\""));
  };
  if (auto* i = std::get_if<int64_t*>(&field.value)) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(text, &value)) {
      // Accept integral floating forms such as 1e6 for large counts.
      double real = 0;
      if (!absl::SimpleAtod(text, &real) || !std::isfinite(real) || std::floor(real) != real ||
          std::fabs(real) > kBig) {
        return type_error("an integer");
      }
      value = static_cast<int64_t>(real);
    }
    **i = value;
  } else if (auto* d = std::get_if<double*>(&field.value)) {
    double value = 0;
    if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) return type_error("a number");
    **d = value;
  } else if (auto* b = std::get_if<bool*>(&field.value)) {
    const std::string lower = absl::AsciiStrToLower(text);
    if (lower == "true" || lower == "yes" || lower == "on") {
      **b = true;
    } else if (lower == "false" || lower == "no" || lower == "off") {
      **b = false;
    } else {
      return type_error("true or false");
    }
  } else {
    **std::get_if<std::string*>(&field.value) = text;
  }
  return CheckField(field, where);
}

// SetFieldChecked leaves the field unchanged when the new value is rejected.
absl::Status SetFieldChecked(const ConfigField& field, const std::string& text,
                             const std::string& where) {
  return std::visit(
      [&](auto* value) {
        auto saved = *value;
        absl::Status status = SetField(field, text, where);
        if (!status.ok()) *value = saved;
        return status;
      },
      field.value);
}

std::string SectionOf(const std::string& key) { return key.substr(0, key.find('.')); }

absl::Status UnknownKey(const std::vector<ConfigField>& fields, const std::string& key,
                        const std::string& where) {
  const std::string section = SectionOf(key);
  std::vector<std::string> sections, names;
  for (const auto& field : fields) {
    const std::string field_section = SectionOf(field.key);
    if (sections.empty() || sections.back() != field_section) sections.push_back(field_section);
    if (field_section == section) names.push_back(field.key.substr(section.size() + 1));
  }
  if (names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, "unknown config section \"", section,
                                                   "\" (known sections: ",
                                                   absl::StrJoin(sections, ", "), ")"));
  }
  return absl::InvalidArgumentError(absl::StrCat(where, "unknown config key \"", key,
                                                 "\" (known keys in ", section, ": ",
                                                 absl::StrJoin(names, ", "), ")"));
}

const ConfigField* FindField(const std::vector<ConfigField>& fields, const std::string& key) {
  for (const auto& field : fields) {
    if (field.key == key) return &field;
  }
  return nullptr;
}

std::string Where(absl::string_view source, const YAML::Mark& mark) {
  if (mark.line < 0) return absl::StrCat(source, ": ");
  return absl::StrCat(source, ":", mark.line + 1, ": ");
}

}  // namespace

std::vector<ConfigField> ConfigFields(Config* c) {
  const std::vector<std::string> kPresets = {"debug", "1m", "12m", "25m", "50m", "100m", "200m",
                                             "400m"};
  return {
      Str("run.name", &c->run.name, {}, "Name of the run, shown in logs and dashboards."),
      Str("run.dir", &c->run.dir, {},
          "Run directory: logs, metrics snapshots, learner checkpoints and (by default) replay "
          "data."),
      Int("run.seed", &c->run.seed, 0, kBig, "Base random seed of every process."),
      Str("run.log_level", &c->run.log_level, {"debug", "info", "warning", "error"},
          "Lowest log severity printed."),

      Int("replay.shards", &c->replay.shards, 1, 64, "Number of replay shard processes."),
      Str("replay.host", &c->replay.host, {}, "Host the shards listen on and clients dial."),
      Int("replay.port", &c->replay.port, 0, kMaxPort,
          "gRPC port of shard 0; shard i uses port + i. 0 picks free ports (tests)."),
      Int("replay.metrics_port", &c->replay.metrics_port, 0, kMaxPort,
          "/metrics port of shard 0; shard i uses metrics_port + i. 0 picks free ports."),
      Str("replay.addresses", &c->replay.addresses, {},
          "Comma-separated host:port of every shard, in shard order; overrides host/port for "
          "clients (containers, Kubernetes)."),
      Str("replay.table", &c->replay.table, {},
          "Name of the table actors write and the learner samples."),
      Int("replay.capacity_steps", &c->replay.capacity_steps, 1000, kBig,
          "Steps each shard keeps (FIFO eviction). 64x64 RGB images take ~12 KB a step: "
          "1M steps need ~12 GB of RAM per shard."),
      Real("replay.max_actor_share", &c->replay.max_actor_share, 0, 1,
           "Largest fraction of replay.capacity_steps one actor stream (one chunk actor_id: "
           "every env of every actor process has its own) may hold on a shard; beyond it the "
           "stream's own oldest steps are evicted, not other actors' (metric "
           "dreamfleet_replay_share_evicted_steps_total). Keeps a fast or flooding actor from "
           "pushing everyone else out (a client that writes under ever new actor ids is kept out "
           "by the actor token, security.*). Set it above 1 / (streams per shard), or it also "
           "trims honest actors; it must cover sequence_length + actor.chunk_steps - 1 steps. "
           "0 = no limit."),
      Int("replay.sequence_length", &c->replay.sequence_length, 2, 4096,
          "T: steps per sampled item (a window of one actor stream)."),
      Str("replay.selector", &c->replay.selector, {"uniform", "recency", "prioritized"},
          "How items are picked for sampling. prioritized: in proportion to priority^exponent, "
          "the priority being the learner's reward and KL losses on the item when last trained "
          "on. "
          "The single-process trainer (bench_learning, train_local) draws its windows "
          "uniformly or prioritized (a window's first step carries its loss; new steps start at "
          "the moving average of recent priorities) and refuses recency."),
      Real("replay.priority_exponent", &c->replay.priority_exponent, 0, 10,
           "Prioritized selector: probability proportional to priority^exponent."),
      Real("replay.rewarded_share", &c->replay.rewarded_share, 0, 1,
           "Share (0-1) of the windows of each training batch drawn around a step with a finite "
           "nonzero reward (the rest by the selector), so that rewards random play meets rarely "
           "(MinAtar Freeway's crossings) reach the reward head in most batches. A replay shard "
           "draws that share of the batches it serves uniformly from its items holding such a "
           "step, while it holds any (dreamfleet_replay_rewarded_items); the single-process "
           "trainer (bench_learning, "
           "train_local) uniformly from its rewarded steps, the window around each uniform. 0 = "
           "off (official DreamerV3)."),
      Real("replay.recency_decay", &c->replay.recency_decay, 0.5, 1,
           "Recency selector: weight of an item decays by this factor per newer item."),
      Real("replay.samples_per_insert", &c->replay.samples_per_insert, 0, 1e6,
           "Rate limiter: replayed steps (B*T per batch) per inserted env step, DreamerV3's "
           "train_ratio. 0 disables limiting."),
      Real("replay.limiter_tolerance", &c->replay.limiter_tolerance, 0, 1e15,
           "Rate limiter slack, in replayed steps, before inserts or samples block."),
      Int("replay.min_size_to_sample", &c->replay.min_size_to_sample, 1, kBig,
          "Steps stored in a shard before it serves samples."),
      Str("replay.data_dir", &c->replay.data_dir, {},
          "Shard data directory (write-ahead log, checkpoints); \"\" = "
          "<run.dir>/replay/shard-<i>."),
      Int("replay.wal_fsync_interval_ms", &c->replay.wal_fsync_interval_ms, 0, 60000,
          "Write-ahead log fsync batching interval; inserts are acknowledged after the fsync."),
      Int("replay.checkpoint_interval_s", &c->replay.checkpoint_interval_s, 1, 86400,
          "Seconds between shard checkpoints (which compact the log)."),
      Str("replay.compression", &c->replay.compression, {"none", "zstd"},
          "Compression of stored chunks."),
      Int("replay.max_message_mb", &c->replay.max_message_mb, 1, 1024,
          "Largest gRPC message accepted or sent, in MiB."),
      Int("replay.max_actor_id_bytes", &c->replay.max_actor_id_bytes, 1, 65536,
          "Chunks whose actor id is longer are refused (rejection reason actor_id_too_long)."),
      Int("replay.max_streams", &c->replay.max_streams, 0, 1000000,
          "Insert, Sample and GetEpisode calls one shard serves at once (every env of every "
          "actor holds one Insert stream; each open call holds server threads); more are "
          "refused with UNAVAILABLE, which clients retry (rejection reason too_many_streams). "
          "Insert calls may take all but max_streams / 16 places (at least one), which stay "
          "free for the learner's Sample and readers (none with a cap of 1). 0 = no limit."),
      Int("replay.max_streams_per_client", &c->replay.max_streams_per_client, 0, 1000000,
          "Of replay.max_streams, the calls one client address (its IP) may hold open, so one "
          "host cannot take every place; more are refused with UNAVAILABLE (rejection reason "
          "too_many_client_streams). Every env of every actor holds one Insert stream (to one "
          "shard, by its id); a cluster on one machine must fit them all in the Insert places "
          "(all but max_streams_per_client / 16, at least one, kept for the learner and "
          "readers). Actors that reach the shards through one NAT, proxy or load balancer "
          "share one address and so one limit: raise it (or 0) there. 0 = no limit."),

      Str("env.name", &c->env.name, {}, "Environment name (see the list in configs/README.md)."),
      Int("env.base_seed", &c->env.base_seed, 0, kBig,
          "Env i of the fleet seeds from base_seed + i."),
      Int("env.image_size", &c->env.image_size, 8, 256,
          "Observation images are image_size squared."),
      Bool("env.grayscale", &c->env.grayscale, "Single-channel observations."),
      Int("env.action_repeat", &c->env.action_repeat, 1, 64,
          "Emulators: frames per agent step (max-pooled over the last two)."),
      Real("env.sticky_actions", &c->env.sticky_actions, -1, 1,
           "Probability of repeating the previous action; < 0 = the env's default."),
      Int("env.max_episode_steps", &c->env.max_episode_steps, 0, kBig,
          "Time limit in agent steps; 0 = the env's default."),
      Str("env.rom", &c->env.rom, {}, "Emulators: ROM file (your own copy for commercial games)."),
      Str("env.core", &c->env.core, {},
          "Emulators: libretro core .so; \"\" = the Debian core for the console."),
      Str("env.view", &c->env.view, {"full", "egocentric", "symbolic", "symbolic_egocentric"},
          "Gridworlds: full grid image, MiniGrid's 7x7 egocentric view, symbolic (the whole "
          "grid as one-hot cells in a vector, no image), or symbolic_egocentric (MiniGrid's "
          "7x7 egocentric view as one-hot cells in a vector, with the agent's compass direction "
          "and what it cannot see). MinAtar games: full (image) or symbolic (the 10x10xC channel "
          "grid as a vector, as MinAtar's baselines observe it)."),
      Str("env.action_set", &c->env.action_set, {"full", "minimal"},
          "MinAtar games: full (MinAtar's 6 actions; those a game does not use are no-ops) or "
          "minimal (the game's own set, MinAtar's minimal_action_set(): Breakout noop, left, "
          "right; Freeway noop, up, down; Asterix noop, left, up, right, down; SpaceInvaders "
          "noop, left, right, fire; Seaquest all 6). Other envs have one fixed set and take only "
          "full."),

      Int("actor.count", &c->actor.count, 1, 4096, "Actor processes `dreamfleet up` launches."),
      Int("actor.envs_per_actor", &c->actor.envs_per_actor, 1, 1024,
          "K: envs per actor process, stepped as one batch."),
      Int("actor.chunk_steps", &c->actor.chunk_steps, 1, 4096, "Steps per chunk sent to replay."),
      Int("actor.metrics_port", &c->actor.metrics_port, 0, kMaxPort,
          "/metrics port of actor 0; actor i uses metrics_port + i. 0 picks free ports."),
      Str("actor.metrics_host", &c->actor.metrics_host, {},
          "Host the actors' /metrics and /healthz listen on; 0.0.0.0 lets Prometheus on another "
          "host scrape them."),
      Str("actor.metrics_addresses", &c->actor.metrics_addresses, {},
          "Comma-separated host:port of the actors' /metrics, for `dreamfleet status`; a name "
          "that resolves to several addresses (a compose service, a Kubernetes headless "
          "service) stands for every actor behind it. \"\" = 127.0.0.1:metrics_port + i."),
      Int("actor.threads", &c->actor.threads, 1, 256, "CPU threads for policy inference."),
      Int("actor.max_env_steps", &c->actor.max_env_steps, 0, kBig,
          "Stop after this many env steps per actor; 0 = unlimited."),
      Real("actor.explore_prob", &c->actor.explore_prob, 0, 1,
           "Exploration in the env beyond sampling the policy (temporally extended "
           "epsilon-greedy): per step, the chance that an env not already holding one starts a "
           "random action (uniform over the env's actions), taken for 1 to actor.explore_hold "
           "steps in a row whatever the policy samples; a new episode ends a hold. 0 = none "
           "(official). Replay records the action taken; evaluations never explore, so they show "
           "the policy alone while the training return includes the random steps. For data the "
           "policy would not produce itself, e.g. a paddle knocked off its place that must race "
           "back to the ball."),
      Int("actor.explore_hold", &c->actor.explore_hold, 1, 100000,
          "Longest hold of actor.explore_prob's random action, in env steps; each hold lasts a "
          "uniformly random 1 to explore_hold steps."),

      Str("learner.host", &c->learner.host, {}, "Host the learner listens on and actors dial."),
      Int("learner.port", &c->learner.port, 0, kMaxPort, "Learner gRPC port (ParameterService)."),
      Int("learner.metrics_port", &c->learner.metrics_port, 0, kMaxPort, "Learner /metrics port."),
      Str("learner.preset", &c->learner.preset, kPresets,
          "Model size preset (official DreamerV3 sizes)."),
      Int("learner.units", &c->learner.units, 0, 65536,
          "Width of the MLPs (encoder, decoder, reward and continue heads, actor, critic) instead "
          "of the preset's (1m: 64); 0 = the preset's. A checkpoint restores only with the width "
          "it was trained with."),
      Int("learner.hidden", &c->learner.hidden, 0, 65536,
          "Width of the RSSM's hidden layers (the posterior's layer over deter and the "
          "observation's embedding, the prior's, the core's inputs) instead of the preset's "
          "(1m: 64); 0 = the preset's. A checkpoint restores only with the width it was trained "
          "with."),
      Int("learner.stoch", &c->learner.stoch, 0, 4096,
          "Number of the RSSM's categorical latents instead of the preset's (32 in every preset "
          "but debug); 0 = the preset's. A checkpoint restores only with the latent it was "
          "trained with."),
      Int("learner.classes", &c->learner.classes, 0, 256,
          "Classes of each categorical latent instead of the preset's (1m: 4, 12m: 16); 0 = the "
          "preset's; 1 is refused (it carries no information). A checkpoint restores only with the "
          "latent it was trained with."),
      Str("learner.device", &c->learner.device, {"auto", "cpu", "cuda"},
          "Training device; auto = CUDA when the LibTorch build and a GPU allow it."),
      Int("learner.threads", &c->learner.threads, 1, 256, "CPU intra-op threads for training."),
      Bool("learner.overlap_world_model", &c->learner.overlap_world_model,
           "Run the world model's backward pass on a second thread while the actor-critic "
           "imagines and learns from the same batch (a CPU learner only; ignored on CUDA and with "
           "actor_grad_dynamics). The same update, bit for bit: both read the weights before its "
           "step and add their gradients once each. Keeps one more core busy: for "
           "small models with learner.threads 1 on a machine with a core to spare."),
      Int("learner.batch_size", &c->learner.batch_size, 1, 4096, "B: sequences per batch."),
      Int("learner.batch_length", &c->learner.batch_length, 2, 4096,
          "T: steps per sequence; must equal replay.sequence_length."),
      Real("learner.lr", &c->learner.lr, 1e-10, 1,
           "Learning rate of the LaProp optimiser (world model; also actor and critic unless "
           "actor_critic_lr is set)."),
      Real("learner.actor_critic_lr", &c->learner.actor_critic_lr, 0, 1,
           "Learning rate of actor and critic; 0 = learner.lr (the official agent uses one rate)."),
      Real("learner.reconstruction_scale", &c->learner.reconstruction_scale, 0, 1e6,
           "Scale of the decoder (image / vector) loss against the KL and reward terms (official: "
           "1)."),
      Real("learner.continue_scale", &c->learner.continue_scale, 0, 1e6,
           "Scale of the continue head's loss (whether a step ends the episode; official: 1)."),
      Real("learner.kl_dyn_scale", &c->learner.kl_dyn_scale, 0, 1e6,
           "Scale of the dynamics KL loss, which trains the prior towards the posterior (the "
           "paper: 0.5; today's official code: 1)."),
      Real("learner.kl_rep_scale", &c->learner.kl_rep_scale, 0, 1e6,
           "Scale of the representation KL loss, which trains the posterior towards the prior "
           "(official: 0.1)."),
      Int("learner.replay_context", &c->learner.replay_context, 0, 1,
          "1: every training window starts from the latent the actor stored with the step before "
          "it, and the learner writes the latents it computes back (official DreamerV3's "
          "replay_context); 0: windows start from the zero state. So far only the single-process "
          "trainer (dreamfleet-train-local, bench_learning) has it; dreamfleet up refuses 1."),
      Str("learner.vector_encoder", &c->learner.vector_encoder, {"mlp", "grid"},
          "How the vector observation is encoded: mlp = the official MLP; grid = two 3x3 "
          "convolutions over the cells first, the same filters at every cell (as MinAtar's own "
          "baselines see the grid), then the MLP over the flattened map (depth x 4 channels per "
          "cell: the 1m preset on a 10x10 grid has a 1600x64 first layer, 12m 6400x256). For envs "
          "whose vector is a grid of cells: MinAtar with env.view symbolic, the gridworlds with "
          "env.view symbolic or symbolic_egocentric. No effect without a vector observation."),
      Str("learner.vector_decoder", &c->learner.vector_decoder, {"mlp", "grid"},
          "How the vector observation is decoded: mlp = the official MLP, whose last linear layer "
          "draws every grid as a sum of at most `units` fixed patterns (64 for the 1m preset, "
          "fewer than the 80 that 8 cars in 8 lanes of 10 cells need); grid = the MLP's features "
          "at every cell with a learned "
          "embedding of the cell and a nonlinearity of its own (depth x 4 channels per cell), "
          "then two 3x3 convolutions with the same filters at every cell, so an object is drawn "
          "alike wherever it was seen. For the same grid envs as learner.vector_encoder grid. A "
          "checkpoint restores only with the decoder it was trained with. No effect without a "
          "vector observation."),
      Str("learner.vector_loss", &c->learner.vector_loss, {"symlog_mse", "binary"},
          "The vector decoder's likelihood: symlog_mse = squared error in symlog space summed over "
          "entries (official DreamerV3); binary = Bernoulli cross-entropy on logits summed over "
          "entries, for observations of 0/1 entries such as the MinAtar grids (env.view symbolic): "
          "a missed object costs log(1/p) nats instead of at most 0.48, so the reconstruction is "
          "not drowned by the KL's free nats; use it with learner.reconstruction_scale 1. A batch "
          "with entries outside [0, 1] is refused with an error naming this key. Reports draw the "
          "decoded probabilities. A checkpoint restores only with the loss it was trained with. No "
          "effect without a vector observation."),
      Bool("learner.vector_balance", &c->learner.vector_balance,
           "With learner.vector_loss binary on a grid observation: weight each channel's occupied "
           "cells by (1 - p) / p, p the share of that channel's cells occupied in the training "
           "batch, the weight clipped to [1, 100]: each channel's occupied cells weigh about as "
           "much in all as its empty ones, so a channel holding one object (Freeway's chicken, a "
           "player) pulls on the model as hard as one holding many. The decoder then paints "
           "unsure objects at 0.5 or more; the reports (openloop, foresight) map its values back "
           "to probabilities. Needs vector_loss binary and a grid vector (env.view symbolic or "
           "symbolic_egocentric)."),
      Str("learner.twohot", &c->learner.twohot, {"symlog", "raw"},
          "Reward head and critic: symlog = twohot interpolated and decoded in symlog space (the "
          "paper); raw = symexp-spaced bins, interpolated and averaged in raw space (today's "
          "official code; keeps the expectation of uncertain rewards)."),
      Real("learner.agc", &c->learner.agc, 0, 100,
           "Adaptive gradient clipping threshold; 0 = off."),
      Int("learner.warmup_updates", &c->learner.warmup_updates, 0, kBig,
          "Updates over which the learning rates ramp up linearly from 0 (official: 1000)."),
      Int("learner.imagination_horizon", &c->learner.imagination_horizon, 1, 1000,
          "Imagined steps per actor-critic update."),
      Real("learner.imagination_explore", &c->learner.imagination_explore, 0, 1,
           "Share of imagined rollouts (0-1) that open with one random action held for a random 1 "
           "to imagination_horizon steps before the policy takes over (0 = none, official). The "
           "actor imitates a held action where it beat the critic's value and ignores it "
           "elsewhere (the entropy bonus still applies); held steps do not train the critic or the "
           "return normaliser, and the "
           "replay value loss bootstraps from the critic at an explored rollout's start. A way "
           "out of habits where one changed action alone changes nothing (a ball the policy "
           "always misses needs several moves in a row). At 1 the replay value loss never "
           "bootstraps from imagination."),
      Real("learner.actor_grad_dynamics", &c->learner.actor_grad_dynamics, 0, 1,
           "Share (0-1) of the actor's objective that is the imagined lambda-return itself, "
           "differentiated through the world model's dynamics, reward, continue and critic heads "
           "along straight-through action and latent samples (DreamerV1/V2's dynamics gradient); "
           "the rest is DreamerV3's REINFORCE with advantages. 0 = REINFORCE only (official). "
           "Only the actor learns from it. The gradient says how changing every imagined action "
           "at once changes the return, which REINFORCE's one-action-at-a-time credit cannot (a "
           "rescue that needs several moves in a row). Costs a backward pass through the "
           "imagined rollout. With imagination_explore the held random actions' self-imitation is "
           "scaled by 1 - this share too (gone at 1); a held action carries no gradient, so the "
           "dynamics objective teaches the policy's actions after it."),
      Real("learner.disagreement_scale", &c->learner.disagreement_scale, 0, 1000,
           "Weight of an intrinsic reward for transitions the world model does not know yet "
           "(Plan2Explore's ensemble disagreement; 0 = off, official). An ensemble of "
           "learner.disagreement_models small MLPs learns to predict each replayed step's next "
           "latent state from the state and action; where they disagree, the transition is new. "
           "The reward added to every imagined step is this scale x (d - mean d) / mean d, d being "
           "the disagreement and the mean over the update's imagined steps: zero on average, so "
           "episode length is neither rewarded nor punished (replayed steps, for the replay value "
           "loss, against their own mean). For tasks whose "
           "reward random play rarely finds (a goal in another room, a road to cross). The "
           "learner only; actors run the same policy. A checkpoint resumes only with the same "
           "on/off and ensemble size."),
      Int("learner.disagreement_models", &c->learner.disagreement_models, 2, 64,
          "Ensemble size of learner.disagreement_scale's intrinsic reward (each member an MLP of "
          "learner.units (else the preset's units) and the encoder's layers; their standard "
          "deviation is the disagreement)."),
      Int("learner.imagination_starts", &c->learner.imagination_starts, 0, 1000000,
          "Posterior states the actor-critic imagines from per update, drawn at random from the "
          "batch's batch_size x batch_length (at most that many); 0 = all of them (official). "
          "Fewer make the actor-critic, most of an update's time on small models, "
          "proportionally cheaper; the replay value loss bootstraps from the critic where no "
          "imagination started."),
      Real("learner.horizon", &c->learner.horizon, 1, 1e6,
           "Return horizon; discount = 1 - 1/horizon."),
      Real("learner.lambda", &c->learner.lambda, 0, 1, "Lambda of the lambda-returns."),
      Real("learner.entropy", &c->learner.entropy, 0, 1, "Actor entropy regulariser scale."),
      Real("learner.replay_value_scale", &c->learner.replay_value_scale, 0, 1000,
           "Scale of the replay value loss, which trains the critic on the replayed posterior "
           "states towards lambda-returns of their real rewards, bootstrapped from the imagined "
           "returns (official: 0.3; the imagined value loss has scale 1)."),
      Int("learner.prefetch_batches", &c->learner.prefetch_batches, 1, 64,
          "Batches sampled ahead in background threads."),
      Int("learner.publish_every_updates", &c->learner.publish_every_updates, 1, kBig,
          "Publish weights to actors every N updates..."),
      Real("learner.publish_every_seconds", &c->learner.publish_every_seconds, 0, 86400,
           "...or every this many seconds, whichever comes first."),
      Real("learner.checkpoint_minutes", &c->learner.checkpoint_minutes, 0.01, 10000,
           "Minutes between learner checkpoints (also written on SIGTERM)."),
      Int("learner.max_updates", &c->learner.max_updates, 0, kBig,
          "Stop after N updates; 0 = unlimited."),
      Int("learner.eval_every_updates", &c->learner.eval_every_updates, 0, kBig,
          "Cluster learner: every N updates, play evaluation episodes with the current policy "
          "(greedy and sampled) on envs of its own that never feed replay; results on /metrics, "
          "the best agent in <run.dir>/best. 0 = none."),
      Int("learner.eval_episodes", &c->learner.eval_episodes, 1, 1000,
          "Evaluation episodes per mode (greedy, sampled)."),
      Int("learner.eval_max_steps", &c->learner.eval_max_steps, 1, kBig,
          "An evaluation episode still running after this many steps is cut (its return so far "
          "counts)."),

      Str("security.ca_file", &c->security.ca_file, {},
          "PEM CA certificate. Set: every client dials over TLS and verifies the server against "
          "it (and mTLS servers verify clients). \"\" = plaintext."),
      Str("security.cert_file", &c->security.cert_file, {},
          "PEM certificate chain this process serves over TLS (and shows as a client under "
          "mTLS). Its names must cover the hosts clients dial. deploy/certs.sh makes one."),
      Str("security.key_file", &c->security.key_file, {}, "PEM private key of security.cert_file."),
      Bool("security.require_client_cert", &c->security.require_client_cert,
           "mTLS: servers refuse clients without a certificate signed by security.ca_file."),
      Str("security.actor_token_file", &c->security.actor_token_file, {},
          "File holding the actor role's bearer token. With any token file set, servers refuse "
          "calls without a token of a role the method allows: actors insert and read weights."),
      Str("security.learner_token_file", &c->security.learner_token_file, {},
          "File holding the learner role's token: sample, update priorities, read."),
      Str("security.reader_token_file", &c->security.reader_token_file, {},
          "File holding the reader role's token (dreamfleet status, replay queries): read only."),
      Bool("security.insecure", &c->security.insecure,
           "Allow plaintext (no security.ca_file) when an address is not loopback. Anyone who "
           "reaches the ports can then read and write everything; a warning says so."),
  };
}

namespace {

// The host of "host:port", "[v6]:port" or a bare host.
std::string HostOf(absl::string_view address) {
  address = absl::StripAsciiWhitespace(address);
  if (absl::StartsWith(address, "[")) {
    const size_t end = address.find(']');
    return std::string(address.substr(1, end == absl::string_view::npos ? address.npos : end - 1));
  }
  const size_t colon = address.rfind(':');
  if (colon != absl::string_view::npos && address.find(':') == colon) {
    return std::string(address.substr(0, colon));
  }
  return std::string(address);
}

// TLS settings that belong together, and no plaintext on an address others can reach unless
// security.insecure says so.
absl::Status ValidateSecurity(const Config& config) {
  const SecurityConfig& security = config.security;
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError(
        "security.cert_file and security.key_file go together: set both or neither");
  }
  if (!security.cert_file.empty() && security.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "security.cert_file is set but security.ca_file is not: clients need the CA to verify "
        "the servers' certificate");
  }
  if (security.require_client_cert && security.cert_file.empty()) {
    return absl::InvalidArgumentError(
        "security.require_client_cert needs TLS: set security.ca_file, security.cert_file and "
        "security.key_file (the clients show that certificate)");
  }
  return absl::OkStatus();
}

// No plaintext on an address others can reach unless security.insecure says so (the processes
// of a cluster check it; offline tools that only read a run's config do not).
absl::Status ValidateTransport(const Config& config) {
  const SecurityConfig& security = config.security;
  if (!security.ca_file.empty() || security.insecure) return absl::OkStatus();
  std::string key, host;
  if (FirstNonLoopbackHost(config, &key, &host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        key, " '", host,
        "' is not a loopback address, and without TLS anyone who reaches it can read and "
        "write the cluster's data: set security.ca_file, security.cert_file and "
        "security.key_file (deploy/certs.sh makes them), or security.insecure: true to run "
        "in plaintext anyway"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsLoopbackHost(absl::string_view host) {
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

bool FirstNonLoopbackHost(const Config& config, std::string* key, std::string* host) {
  std::vector<std::pair<std::string, std::string>> hosts = {{"replay.host", config.replay.host},
                                                            {"learner.host", config.learner.host}};
  for (absl::string_view address :
       absl::StrSplit(config.replay.addresses, ',', absl::SkipWhitespace())) {
    hosts.emplace_back("replay.addresses", HostOf(address));
  }
  for (auto& [name, value] : hosts) {
    if (!IsLoopbackHost(value)) {
      *key = name;
      *host = value;
      return true;
    }
  }
  return false;
}

absl::Status Config::Validate() const {
  Config copy = *this;
  for (const ConfigField& field : ConfigFields(&copy)) {
    RETURN_IF_ERROR(CheckField(field, ""));
  }
  if (learner.batch_length != replay.sequence_length) {
    return absl::InvalidArgumentError(
        absl::StrCat("learner.batch_length (", learner.batch_length,
                     ") must equal replay.sequence_length (", replay.sequence_length, ")"));
  }
  if (learner.imagination_starts > learner.batch_size * learner.batch_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "learner.imagination_starts (", learner.imagination_starts,
        ") is more than the batch's posterior states, learner.batch_size x learner.batch_length (",
        learner.batch_size * learner.batch_length, ")"));
  }
  if (replay.capacity_steps < replay.sequence_length) {
    return absl::InvalidArgumentError(
        absl::StrCat("replay.capacity_steps (", replay.capacity_steps,
                     ") is smaller than one item of replay.sequence_length (",
                     replay.sequence_length, ") steps"));
  }
  // A stream over its share drops whole chunks, so it may be left with one chunk less one step
  // above the share; that must still hold an item.
  const int64_t share_needs = replay.sequence_length + actor.chunk_steps - 1;
  if (replay.max_actor_share > 0 &&
      std::floor(replay.max_actor_share * static_cast<double>(replay.capacity_steps)) <
          static_cast<double>(share_needs)) {
    return absl::InvalidArgumentError(
        absl::StrCat("replay.max_actor_share (", replay.max_actor_share,
                     ") of replay.capacity_steps (", replay.capacity_steps,
                     ") is less than replay.sequence_length + actor.chunk_steps - 1 (", share_needs,
                     ") steps: an actor that drops its oldest chunk to fit could be left without a "
                     "sampleable window"));
  }
  if (env.name.empty()) return absl::InvalidArgumentError("env.name is empty");
  return ValidateSecurity(*this);
}

int64_t InsertStreamPlaces(int64_t cap) {
  if (cap < 2) return cap;
  return cap - std::max<int64_t>(1, cap / 16);
}

absl::Status ValidateCluster(const Config& config) {
  RETURN_IF_ERROR(ValidateTransport(config));
  if (config.learner.replay_context != 0) {
    return absl::InvalidArgumentError(
        "learner.replay_context = 1 is not carried by the cluster yet (actors do not send their "
        "latents to replay); train it in one process with dreamfleet-train-local --config or "
        "bench_learning, or set learner.replay_context=0");
  }
  const ReplayConfig& replay = config.replay;
  std::string key, host;
  if (replay.max_streams_per_client > 0 && !FirstNonLoopbackHost(config, &key, &host)) {
    // On one machine every actor connects from the same address, and each env holds one Insert
    // stream (to one shard): they must fit in one client's share even if they land on one shard.
    const int64_t streams = config.actor.count * config.actor.envs_per_actor;
    const int64_t places = InsertStreamPlaces(replay.max_streams_per_client);
    if (streams > places) {
      return absl::InvalidArgumentError(absl::StrCat(
          "actor.count x actor.envs_per_actor (", streams,
          ") Insert streams would all come from this machine's one address, more than the ", places,
          " Insert streams replay.max_streams_per_client (", replay.max_streams_per_client,
          ") lets one client hold; raise it (0 = no limit)"));
    }
  }
  if (replay.samples_per_insert > 0) {
    // The limiter lets one side run ahead by at most the tolerance, so one chunk's worth of
    // sampling and one batch must each fit inside it, or that insert or sample waits forever.
    const double chunk_samples =
        static_cast<double>(config.actor.chunk_steps) * replay.samples_per_insert;
    const double batch_steps =
        static_cast<double>(config.learner.batch_size) * config.learner.batch_length;
    if (replay.limiter_tolerance < chunk_samples || replay.limiter_tolerance < batch_steps) {
      return absl::InvalidArgumentError(absl::StrCat(
          "replay.limiter_tolerance (", FormatDouble(replay.limiter_tolerance),
          ") must be at least actor.chunk_steps x replay.samples_per_insert (",
          FormatDouble(chunk_samples), ") and learner.batch_size x learner.batch_length (",
          FormatDouble(batch_steps), ")"));
    }
  }
  return absl::OkStatus();
}

absl::string_view DefaultConfigYaml() { return kDefaultConfigYaml; }

absl::StatusOr<Config> ParseConfig(absl::string_view yaml, absl::string_view source, Config base) {
  Config config = std::move(base);
  const std::vector<ConfigField> fields = ConfigFields(&config);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(source, e.mark), "invalid YAML: ", e.msg));
  }
  if (!root || root.IsNull()) return config;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(source, root.Mark()), "a config is a map of sections (run, replay, env, actor, learner)"));
  }
  for (const auto& section : root) {
    const std::string section_name = section.first.Scalar();
    const std::string where = Where(source, section.first.Mark());
    bool known = false;
    for (const auto& field : fields) known |= SectionOf(field.key) == section_name;
    if (!known) return UnknownKey(fields, section_name + ".", where);
    if (section.second.IsNull()) continue;
    if (!section.second.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "config section \"", section_name, "\" must be a map of keys"));
    }
    for (const auto& entry : section.second) {
      const std::string key = absl::StrCat(section_name, ".", entry.first.Scalar());
      const std::string where = Where(source, entry.first.Mark());
      const ConfigField* field = FindField(fields, key);
      if (field == nullptr) return UnknownKey(fields, key, where);
      if (!entry.second.IsScalar() && !entry.second.IsNull()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "config key \"", key, "\" expects a single value, got a ",
                         entry.second.IsMap() ? "map" : "list"));
      }
      const std::string text = entry.second.IsNull() ? "" : entry.second.Scalar();
      RETURN_IF_ERROR(SetField(*field, text, Where(source, entry.second.Mark())));
    }
  }
  return config;
}

absl::Status ApplyOverride(absl::string_view assignment, Config* config) {
  const std::string where = absl::StrCat("--set ", assignment, ": ");
  const size_t eq = assignment.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "expected section.key=value"));
  }
  const std::string key(absl::StripAsciiWhitespace(assignment.substr(0, eq)));
  const std::string value(absl::StripAsciiWhitespace(assignment.substr(eq + 1)));
  const std::vector<ConfigField> fields = ConfigFields(config);
  if (key.find('.') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(where, "expected section.key=value"));
  }
  const ConfigField* field = FindField(fields, key);
  if (field == nullptr) return UnknownKey(fields, key, where);
  return SetFieldChecked(*field, value, where);
}

absl::StatusOr<Config> LoadConfig(absl::string_view path,
                                  const std::vector<std::string>& overrides) {
  absl::StatusOr<Config> config;
  if (path.empty()) {
    config = ParseConfig(DefaultConfigYaml(), "<embedded configs/default.yaml>");
  } else {
    std::error_code error;
    if (std::filesystem::is_directory(std::string(path), error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("config file \"", path, "\" is a directory; name a YAML file in it"));
    }
    std::ifstream file{std::string(path)};
    if (!file) {
      return absl::NotFoundError(absl::StrCat("cannot read config file \"", path, "\""));
    }
    std::stringstream text;
    text << file.rdbuf();
    config = ParseConfig(text.str(), path);
  }
  if (!config.ok()) return config.status();
  for (const std::string& assignment : overrides) {
    RETURN_IF_ERROR(ApplyOverride(assignment, &*config));
  }
  if (absl::Status status = config->Validate(); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path.empty() ? "<embedded configs/default.yaml>" : std::string(path), ": ",
        status.message()));
  }
  return config;
}

std::string ConfigToYaml(const Config& config, bool with_docs) {
  Config copy = config;
  std::string out;
  std::string section;
  for (const ConfigField& field : ConfigFields(&copy)) {
    const std::string field_section = SectionOf(field.key);
    if (field_section != section) {
      if (!section.empty()) out += "\n";
      section = field_section;
      absl::StrAppend(&out, section, ":\n");
    }
    if (with_docs) absl::StrAppend(&out, "  # ", field.doc, "\n");
    absl::StrAppend(&out, "  ", field.key.substr(section.size() + 1), ": ", ValueText(field), "\n");
  }
  return out;
}

}  // namespace dreamfleet::services
