// AgentConfig: every DreamerV3 hyperparameter of the learner in one typed struct, with the official
// size presets (danijar/dreamerv3 configs.yaml: size1m ... size400m) and a tiny `debug` preset for
// tests. Serialised as `key=value` lines so checkpoints carry the config they were trained with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "envs/environment.h"
#include "services/config.h"

namespace dreamfleet::dreamer {

struct AgentConfig {
  // Observation and action spaces (from the env spec).
  int image_height = 64;
  int image_width = 64;
  int image_channels = 3;  // 0 = no image observation
  int vector_size = 0;     // 0 = no `vector` observation
  int vector_grid_channels = 0;  // > 0: the vector is a square grid of cells (EnvSpec's)
  int text_length = 0;     // 0 = no `text` observation
  int text_vocab = 0;
  int num_actions = 0;  // discrete actions

  // Sizes (preset-controlled). Names follow the official config.
  int deter = 512;
  int hidden = 64;
  int stoch = 32;
  int classes = 4;
  int blocks = 8;
  int units = 64;
  int depth = 4;  // CNN base depth; stage depths are depth * cnn_mults
  std::vector<int> cnn_mults = {2, 3, 4, 4};
  int enc_layers = 3;   // vector encoder / decoder MLP layers
  int head_layers = 1;  // reward and continue heads
  int ac_layers = 3;    // policy and value MLPs
  int bins = 255;
  std::string norm = "rms";  // "rms" (official today) or "layer" (the paper)
  // "strided": kernel-4 stride-2 convs (the paper; ~6x fewer FLOPs on CPU). "official": kernel-5
  // stride-1 convs with 2x2 max-pool / nearest-upsample (current danijar/dreamerv3).
  std::string cnn = "strided";
  // Decoder upsampling for cnn=strided: "transpose" (ConvTranspose2d k4 s2, the paper) or
  // "upsample" (nearest x2 + conv k3). On this CPU LibTorch the transposed conv is ~1.7x faster
  // (fewer FLOPs; bench_learner --decoder, BENCHMARKS.md), so it is the default.
  std::string decoder_upsample = "transpose";
  // Run the CNNs in channels-last (NHWC) memory format: the observations arrive NHWC and oneDNN
  // convolutions prefer it (bench_learner --channels-last=false to compare).
  bool channels_last = true;
  // How the `vector` observation is encoded: "mlp" (the official MLP) or "grid" (two 3x3
  // convolutions over the cells, then the MLP; needs vector_grid_channels > 0: GridEncoder).
  std::string vector_encoder = "mlp";
  // How the `vector` observation is decoded: "mlp" (the official MLP) or "grid" (the MLP to a map
  // of cells, then two 3x3 convolutions: GridDecoder; needs vector_grid_channels > 0).
  std::string vector_decoder = "mlp";
  // The vector decoder's likelihood: "symlog_mse" (the official: squared error in symlog space,
  // summed over entries) or "binary" (Bernoulli cross-entropy on logits, summed over entries; for
  // 0/1 grids such as MinAtar's, whose targets it checks lie in [0, 1]).
  std::string vector_loss = "symlog_mse";
  // With vector_loss "binary" on a grid: the occupied cells of channel c weigh (1 - p_c) / p_c,
  // p_c the share of c's cells occupied in the batch, the weight clipped to [1, 100]
  // (class-balanced cross-entropy), so a channel with one object pulls as hard as one with many.
  bool vector_balance = false;

  // RSSM and world-model loss.
  float unimix = 0.01f;
  float free_nats = 1.0f;
  float scale_rec = 1.0f;
  float scale_rew = 1.0f;
  float scale_con = 1.0f;
  float scale_dyn = 0.5f;  // the paper; the official config now uses 1.0
  float scale_rep = 0.1f;
  // Reward head and critic twohot: "symlog" (the paper: interpolate and decode in symlog space)
  // or "raw" (today's official code: symexp-spaced bins, raw-space interpolation and mean).
  std::string twohot = "symlog";
  // 1: every training window starts from the latent the actor stored with the step before it
  // (official DreamerV3's replay_context), and the posterior latents computed in training are
  // written back to replay. 0: windows start from the zero state.
  int replay_context = 0;

  // Actor-critic.
  int imag_horizon = 15;
  // Posterior states imagined from per update, drawn at random without replacement; 0 = all
  // batch_size x batch_length of them (official).
  int imag_starts = 0;
  // Share of imagined rollouts that open with one uniformly random action held for a uniformly
  // random 1..imag_horizon steps; the actor imitates a held action where it beat the critic's
  // value, the critic does not learn from held steps (0 = none, official; ActorCriticImpl::Loss).
  float imag_explore = 0.0f;
  // Share of the actor's objective that is the imagined lambda-return differentiated through the
  // world model along straight-through samples (DreamerV1/V2 "dynamics" gradient); the rest is
  // REINFORCE. 0 = REINFORCE only (official DreamerV3). Only the actor's parameters learn from it.
  float actor_dynamics = 0.0f;
  // Plan2Explore's intrinsic reward (Disagreement): its weight against the task's reward (0 = off,
  // official DreamerV3) and the ensemble's size. Learner-only; the actors' policy is the same.
  float disag_scale = 0.0f;
  int disag_models = 8;
  float horizon = 333.0f;  // gamma = 1 - 1/horizon
  float lambda = 0.95f;
  float actent = 3e-4f;
  float policy_unimix = 0.01f;
  float policy_outscale = 0.01f;
  float slowreg = 1.0f;
  float slow_rate = 0.02f;
  int slow_every = 1;
  float retnorm_decay = 0.99f;
  float retnorm_limit = 1.0f;
  float retnorm_perclo = 5.0f;
  float retnorm_perhi = 95.0f;
  float scale_policy = 1.0f;
  float scale_value = 1.0f;
  float scale_repval = 0.3f;
  bool repval_grad = true;  // official: the replay value loss also trains the world model
  bool contdisc = true;     // continue target is (1 - terminal) * gamma

  // Optimiser (LaProp + adaptive gradient clipping).
  float lr = 4e-5f;
  // Learning rate of the actor and critic; 0 = lr (the official agent uses one rate). A lower rate
  // than the world model's keeps the policy from drifting on a world model that has not learned
  // rewards yet, which matters when a small CPU budget calls for a high world-model rate.
  float ac_lr = 0.0f;
  float agc = 0.3f;
  float eps = 1e-20f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  int warmup = 1000;

  // Training.
  int batch_size = 16;
  int batch_length = 64;
  uint64_t seed = 0;
  int threads = 0;  // 0 = LibTorch default
  // The world model's backward pass on a second thread, beside the actor-critic (CPU only; the
  // same update, bit for bit).
  bool overlap_wm = false;
  std::string preset = "1m";

  int feat_size() const { return deter + stoch * classes; }
  // Cells per side of a grid vector (0 without one).
  int vector_grid_side() const;
  int minres() const { return image_height >> static_cast<int>(cnn_mults.size()); }

  absl::Status Validate() const;
  std::string Serialize() const;
  static absl::StatusOr<AgentConfig> Parse(const std::string& text);
  // Sets one field by its Serialize() name, e.g. Set("scale_rec", "10").
  absl::Status Set(const std::string& key, const std::string& value);
};

// Sets the observation and action spaces (image, vector, text, actions) from an env's spec.
void ApplyEnvSpec(const envs::EnvSpec& spec, AgentConfig* config);

// The agent a dreamfleet config trains on an env of this spec: the `learner` section's preset,
// rates, loss scales and batch shape, seeded from run.seed. INVALID_ARGUMENT names a bad value.
absl::StatusOr<AgentConfig> AgentConfigFromConfig(const services::Config& config,
                                                  const envs::EnvSpec& spec);

// Applies a size preset ("debug", "1m", "12m", "25m", "50m", "100m", "200m", "400m") to config.
absl::Status ApplyPreset(const std::string& preset, AgentConfig* config);

}  // namespace dreamfleet::dreamer
