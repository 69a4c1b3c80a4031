// Presets, validation and key=value (de)serialisation of AgentConfig.
#include "dreamer/agent_config.h"

#include <functional>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/status_macros.h"

namespace dreamfleet::dreamer {
namespace {

// One entry per field: how to print it and how to parse it back.
struct Field {
  std::function<std::string(const AgentConfig&)> get;
  std::function<bool(const std::string&, AgentConfig*)> set;
};

template <typename T>
Field MakeField(T AgentConfig::*member) {
  Field f;
  f.get = [member](const AgentConfig& c) {
    if constexpr (std::is_same_v<T, std::string>) {
      return c.*member;
    } else if constexpr (std::is_same_v<T, bool>) {
      return std::string(c.*member ? "true" : "false");
    } else if constexpr (std::is_same_v<T, std::vector<int>>) {
      return absl::StrJoin(c.*member, ",");
    } else if constexpr (std::is_floating_point_v<T>) {
      std::ostringstream s;
      s.precision(9);
      s << c.*member;
      return s.str();
    } else {
      return absl::StrCat(c.*member);
    }
  };
  f.set = [member](const std::string& v, AgentConfig* c) {
    if constexpr (std::is_same_v<T, std::string>) {
      c->*member = v;
      return true;
    } else if constexpr (std::is_same_v<T, bool>) {
      if (v != "true" && v != "false") return false;
      c->*member = v == "true";
      return true;
    } else if constexpr (std::is_same_v<T, std::vector<int>>) {
      std::vector<int> out;
      for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        int x;
        if (!absl::SimpleAtoi(part, &x)) return false;
        out.push_back(x);
      }
      c->*member = out;
      return true;
    } else if constexpr (std::is_same_v<T, float>) {
      return absl::SimpleAtof(v, &(c->*member));
    } else if constexpr (std::is_same_v<T, uint64_t>) {
      return absl::SimpleAtoi(v, &(c->*member));
    } else {
      return absl::SimpleAtoi(v, &(c->*member));
    }
  };
  return f;
}

const std::map<std::string, Field>& Fields() {
  static const auto* fields = new std::map<std::string, Field>{
#define DF_FIELD(name) {#name, MakeField(&AgentConfig::name)}
      DF_FIELD(image_height),
      DF_FIELD(image_width),
      DF_FIELD(image_channels),
      DF_FIELD(vector_size),
      DF_FIELD(vector_grid_channels),
      DF_FIELD(vector_encoder),
      DF_FIELD(vector_decoder),
      DF_FIELD(vector_loss),
      DF_FIELD(vector_balance),
      DF_FIELD(text_length),
      DF_FIELD(text_vocab),
      DF_FIELD(num_actions),
      DF_FIELD(deter),
      DF_FIELD(hidden),
      DF_FIELD(stoch),
      DF_FIELD(classes),
      DF_FIELD(blocks),
      DF_FIELD(units),
      DF_FIELD(depth),
      DF_FIELD(cnn_mults),
      DF_FIELD(enc_layers),
      DF_FIELD(head_layers),
      DF_FIELD(ac_layers),
      DF_FIELD(bins),
      DF_FIELD(norm),
      DF_FIELD(cnn),
      DF_FIELD(decoder_upsample),
      DF_FIELD(channels_last),
      DF_FIELD(unimix),
      DF_FIELD(free_nats),
      DF_FIELD(scale_rec),
      DF_FIELD(scale_rew),
      DF_FIELD(scale_con),
      DF_FIELD(scale_dyn),
      DF_FIELD(scale_rep),
      DF_FIELD(twohot),
      DF_FIELD(replay_context),
      DF_FIELD(imag_horizon),
      DF_FIELD(imag_starts),
      DF_FIELD(imag_explore),
      DF_FIELD(actor_dynamics),
      DF_FIELD(disag_scale),
      DF_FIELD(disag_models),
      DF_FIELD(horizon),
      DF_FIELD(lambda),
      DF_FIELD(actent),
      DF_FIELD(policy_unimix),
      DF_FIELD(policy_outscale),
      DF_FIELD(slowreg),
      DF_FIELD(slow_rate),
      DF_FIELD(slow_every),
      DF_FIELD(retnorm_decay),
      DF_FIELD(retnorm_limit),
      DF_FIELD(retnorm_perclo),
      DF_FIELD(retnorm_perhi),
      DF_FIELD(scale_policy),
      DF_FIELD(scale_value),
      DF_FIELD(scale_repval),
      DF_FIELD(repval_grad),
      DF_FIELD(contdisc),
      DF_FIELD(lr),
      DF_FIELD(ac_lr),
      DF_FIELD(agc),
      DF_FIELD(eps),
      DF_FIELD(beta1),
      DF_FIELD(beta2),
      DF_FIELD(warmup),
      DF_FIELD(batch_size),
      DF_FIELD(batch_length),
      DF_FIELD(seed),
      DF_FIELD(threads),
      DF_FIELD(overlap_wm),
      DF_FIELD(preset),
#undef DF_FIELD
  };
  return *fields;
}

}  // namespace

absl::Status ApplyPreset(const std::string& preset, AgentConfig* c) {
  // deter, hidden, classes, depth, units as in the official size presets.
  struct Size {
    int deter, hidden, classes, depth, units;
  };
  static const std::map<std::string, Size> kSizes = {
      {"1m", {512, 64, 4, 4, 64}},           {"12m", {2048, 256, 16, 16, 256}},
      {"25m", {3072, 384, 24, 24, 384}},     {"50m", {4096, 512, 32, 32, 512}},
      {"100m", {6144, 768, 48, 48, 768}},    {"200m", {8192, 1024, 64, 64, 1024}},
      {"400m", {12288, 1536, 96, 96, 1536}},
  };
  if (preset == "debug") {
    // Tiny and fast for tests (the official debug config is smaller still).
    c->deter = 32;
    c->hidden = 16;
    c->stoch = 4;
    c->classes = 4;
    c->blocks = 4;
    c->units = 16;
    c->depth = 2;
    c->enc_layers = 1;
    c->head_layers = 1;
    c->ac_layers = 1;
    c->preset = preset;
    return absl::OkStatus();
  }
  auto it = kSizes.find(preset);
  if (it == kSizes.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown preset \"", preset, "\"; known: debug, 1m, 12m, 25m, 50m, 100m, 200m, 400m"));
  }
  c->deter = it->second.deter;
  c->hidden = it->second.hidden;
  c->classes = it->second.classes;
  c->depth = it->second.depth;
  c->units = it->second.units;
  c->stoch = 32;
  c->blocks = 8;
  c->enc_layers = 3;
  c->head_layers = 1;
  c->ac_layers = 3;
  c->preset = preset;
  return absl::OkStatus();
}

absl::Status AgentConfig::Validate() const {
  if (num_actions <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_actions must be > 0, got ", num_actions));
  }
  if (image_channels == 0 && vector_size == 0 && text_length == 0) {
    return absl::InvalidArgumentError("config has no observation (image, vector or text)");
  }
  if (deter % blocks != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("deter ", deter, " is not divisible by blocks ", blocks));
  }
  if (image_channels > 0) {
    const int factor = 1 << cnn_mults.size();
    if (image_height % factor != 0 || image_width % factor != 0 || minres() < 2) {
      return absl::InvalidArgumentError(absl::StrCat("image ", image_height, "x", image_width,
                                                     " is not divisible into ", cnn_mults.size(),
                                                     " stride-2 stages"));
    }
  }
  for (const auto& [name, value] :
       {std::pair<std::string, std::string>{"vector_encoder", vector_encoder},
        {"vector_decoder", vector_decoder}}) {
    if (value != "mlp" && value != "grid") {
      return absl::InvalidArgumentError(absl::StrCat(name, " must be mlp or grid, got ", value));
    }
    if (value == "grid" && vector_size > 0 && vector_grid_side() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " grid needs a square grid of cells as the vector observation, but the vector of ",
          vector_size, " entries ",
          vector_grid_channels > 0
              ? absl::StrCat("is not a square of ", vector_grid_channels, "-channel cells")
              : std::string("is a plain vector (the env does not lay it out as a grid)"),
          "; use ", name, " mlp"));
    }
  }
  if (vector_loss != "symlog_mse" && vector_loss != "binary") {
    return absl::InvalidArgumentError(
        absl::StrCat("vector_loss must be symlog_mse or binary, got ", vector_loss));
  }
  if (vector_balance && (vector_loss != "binary" || vector_grid_side() == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "learner.vector_balance needs learner.vector_loss binary and a square grid vector "
        "observation (env.view symbolic or symbolic_egocentric); got learner.vector_loss ",
        vector_loss, vector_grid_side() > 0 ? "" : " and no square grid vector"));
  }
  if (norm != "rms" && norm != "layer") {
    return absl::InvalidArgumentError(absl::StrCat("norm must be rms or layer, got ", norm));
  }
  if (cnn != "strided" && cnn != "official") {
    return absl::InvalidArgumentError(absl::StrCat("cnn must be strided or official, got ", cnn));
  }
  if (decoder_upsample != "upsample" && decoder_upsample != "transpose") {
    return absl::InvalidArgumentError(
        absl::StrCat("decoder_upsample must be upsample or transpose, got ", decoder_upsample));
  }
  if (replay_context != 0 && replay_context != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("replay_context must be 0 or 1, got ", replay_context));
  }
  if (twohot != "symlog" && twohot != "raw") {
    return absl::InvalidArgumentError(absl::StrCat("twohot must be symlog or raw, got ", twohot));
  }
  if (text_length > 0 && text_vocab <= 0) {
    return absl::InvalidArgumentError("text_length > 0 needs text_vocab > 0");
  }
  if (!(imag_explore >= 0.0f && imag_explore <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("imagination explore share ", imag_explore, " must be in [0, 1]"));
  }
  if (!(actor_dynamics >= 0.0f && actor_dynamics <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("actor dynamics gradient share ", actor_dynamics, " must be in [0, 1]"));
  }
  if (!(disag_scale >= 0.0f && disag_scale <= 1000.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("disagreement (intrinsic reward) scale ",
                                                   disag_scale, " must be in [0, 1000]"));
  }
  if (disag_scale > 0.0f && (disag_models < 2 || disag_models > 64)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "disagreement needs an ensemble of 2 to 64 models to disagree, got ", disag_models));
  }
  if (bins < 3 || imag_horizon < 1 || batch_size < 1 || batch_length < 2) {
    return absl::InvalidArgumentError(
        "bins >= 3, imag_horizon >= 1, batch_size >= 1 and "
        "batch_length >= 2 are required");
  }
  if (imag_starts < 0 || imag_starts > static_cast<int64_t>(batch_size) * batch_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "imagination starts ", imag_starts, " must be in [0, batch_size x batch_length = ",
        static_cast<int64_t>(batch_size) * batch_length, "] (0 = all posterior states)"));
  }
  return absl::OkStatus();
}

std::string AgentConfig::Serialize() const {
  std::string out;
  for (const auto& [name, field] : Fields())
    absl::StrAppend(&out, name, "=", field.get(*this), "\n");
  return out;
}

absl::StatusOr<AgentConfig> AgentConfig::Parse(const std::string& text) {
  AgentConfig config;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    std::string key(absl::StripAsciiWhitespace(kv.first));
    std::string value(absl::StripAsciiWhitespace(kv.second));
    RETURN_IF_ERROR(config.Set(key, value));
  }
  return config;
}

absl::Status AgentConfig::Set(const std::string& key, const std::string& value) {
  auto it = Fields().find(key);
  if (it == Fields().end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown agent config key \"", key, "\""));
  }
  AgentConfig changed = *this;  // a failed parse may have written a partial value
  if (!it->second.set(value, &changed)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad value \"", value, "\" for agent config key \"", key, "\""));
  }
  *this = std::move(changed);
  return absl::OkStatus();
}

int AgentConfig::vector_grid_side() const {
  if (vector_grid_channels <= 0 || vector_size <= 0 || vector_size % vector_grid_channels != 0) {
    return 0;
  }
  const int cells = vector_size / vector_grid_channels;
  int side = 1;
  while (side * side < cells) ++side;
  return side * side == cells ? side : 0;
}

void ApplyEnvSpec(const envs::EnvSpec& spec, AgentConfig* config) {
  config->image_height = spec.image_height;
  config->image_width = spec.image_width;
  config->image_channels = spec.image_channels;
  config->vector_size = spec.vector_size;
  config->vector_grid_channels = spec.vector_grid_channels;
  config->text_length = spec.text_length;
  config->text_vocab = spec.text_vocab;
  config->num_actions = spec.num_actions;
}

absl::StatusOr<AgentConfig> AgentConfigFromConfig(const services::Config& config,
                                                  const envs::EnvSpec& spec) {
  AgentConfig agent;
  RETURN_IF_ERROR(ApplyPreset(config.learner.preset, &agent));
  if (config.learner.units > 0) agent.units = static_cast<int>(config.learner.units);
  if (config.learner.hidden > 0) agent.hidden = static_cast<int>(config.learner.hidden);
  if (config.learner.stoch > 0) agent.stoch = static_cast<int>(config.learner.stoch);
  if (config.learner.classes == 1) {
    return absl::InvalidArgumentError(
        "learner.classes: 1 class carries no information; set 0 (the preset's) or 2..256");
  }
  if (config.learner.classes > 0) agent.classes = static_cast<int>(config.learner.classes);
  ApplyEnvSpec(spec, &agent);
  agent.lr = static_cast<float>(config.learner.lr);
  agent.ac_lr = static_cast<float>(config.learner.actor_critic_lr);
  agent.scale_rec = static_cast<float>(config.learner.reconstruction_scale);
  agent.scale_con = static_cast<float>(config.learner.continue_scale);
  agent.scale_dyn = static_cast<float>(config.learner.kl_dyn_scale);
  agent.scale_rep = static_cast<float>(config.learner.kl_rep_scale);
  agent.twohot = config.learner.twohot;
  agent.vector_encoder = config.learner.vector_encoder;
  agent.vector_decoder = config.learner.vector_decoder;
  agent.vector_loss = config.learner.vector_loss;
  agent.vector_balance = config.learner.vector_balance;
  agent.replay_context = static_cast<int>(config.learner.replay_context);
  agent.agc = static_cast<float>(config.learner.agc);
  agent.warmup = static_cast<int>(config.learner.warmup_updates);
  agent.imag_horizon = static_cast<int>(config.learner.imagination_horizon);
  agent.imag_starts = static_cast<int>(config.learner.imagination_starts);
  agent.imag_explore = static_cast<float>(config.learner.imagination_explore);
  agent.actor_dynamics = static_cast<float>(config.learner.actor_grad_dynamics);
  agent.disag_scale = static_cast<float>(config.learner.disagreement_scale);
  agent.disag_models = static_cast<int>(config.learner.disagreement_models);
  agent.horizon = static_cast<float>(config.learner.horizon);
  agent.lambda = static_cast<float>(config.learner.lambda);
  agent.actent = static_cast<float>(config.learner.entropy);
  agent.scale_repval = static_cast<float>(config.learner.replay_value_scale);
  agent.batch_size = static_cast<int>(config.learner.batch_size);
  agent.batch_length = static_cast<int>(config.learner.batch_length);
  agent.seed = static_cast<uint64_t>(config.run.seed);
  agent.threads = static_cast<int>(config.learner.threads);
  agent.overlap_wm = config.learner.overlap_world_model;
  RETURN_IF_ERROR(agent.Validate());
  return agent;
}

}  // namespace dreamfleet::dreamer
