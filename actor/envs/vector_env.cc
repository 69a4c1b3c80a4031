// See vector_env.h.
#include "actor/envs/vector_env.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace dreamfleet::actor {

absl::StatusOr<std::unique_ptr<VectorEnv>> VectorEnv::Create(const EnvOptions& options,
                                                             int num_envs) {
  if (num_envs <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_envs must be > 0, got ", num_envs));
  }
  std::vector<std::unique_ptr<Environment>> envs;
  envs.reserve(num_envs);
  for (int i = 0; i < num_envs; ++i) {
    EnvOptions env_options = options;
    env_options.env_index = options.env_index + i;
    absl::StatusOr<std::unique_ptr<Environment>> env = MakeEnvironment(env_options);
    if (!env.ok()) return env.status();
    envs.push_back(*std::move(env));
  }
  return Create(std::move(envs), options.base_seed, options.env_index);
}

absl::StatusOr<std::unique_ptr<VectorEnv>> VectorEnv::Create(
    std::vector<std::unique_ptr<Environment>> envs, uint64_t base_seed, int first_env_index) {
  if (envs.empty()) return absl::InvalidArgumentError("VectorEnv needs at least one env");
  const EnvSpec& first = envs[0]->spec();
  for (size_t i = 0; i < envs.size(); ++i) {
    if (envs[i] == nullptr) return absl::InvalidArgumentError(absl::StrCat("env ", i, " is null"));
    const EnvSpec& s = envs[i]->spec();
    if (s.image_height != first.image_height || s.image_width != first.image_width ||
        s.image_channels != first.image_channels || s.vector_size != first.vector_size ||
        s.text_length != first.text_length || s.num_actions != first.num_actions) {
      return absl::InvalidArgumentError(absl::StrCat(
          "env ", i, " (\"", s.name, "\") observation [", s.image_height, ",", s.image_width, ",",
          s.image_channels, "] vector ", s.vector_size, " text ", s.text_length, " actions ",
          s.num_actions, " does not match env 0 (\"", first.name, "\") [", first.image_height,
          ",", first.image_width, ",", first.image_channels, "] vector ", first.vector_size,
          " text ", first.text_length, " actions ", first.num_actions));
    }
  }
  return std::unique_ptr<VectorEnv>(new VectorEnv(std::move(envs), base_seed, first_env_index));
}

VectorEnv::VectorEnv(std::vector<std::unique_ptr<Environment>> envs, uint64_t base_seed,
                     int first_env_index)
    : envs_(std::move(envs)), spec_(envs_[0]->spec()) {
  const size_t k = envs_.size();
  slots_.resize(k);
  for (size_t i = 0; i < k; ++i) slots_[i].seeds.Seed(EnvSeed(base_seed, first_env_index + i));
  image_.assign(k * spec_.image_bytes(), 0);
  reward_.assign(k, 0.0f);
  is_first_.assign(k, 0);
  is_last_.assign(k, 0);
  is_terminal_.assign(k, 0);
  success_.assign(k, 0);
  vector_.assign(k * spec_.vector_size, 0.0f);
  text_.assign(k * spec_.text_length, 0);
}

StepBuffer VectorEnv::Row(int i) {
  StepBuffer b;
  b.image = image_.data() + static_cast<int64_t>(i) * spec_.image_bytes();
  if (spec_.vector_size > 0) b.vector = vector_.data() + static_cast<int64_t>(i) * spec_.vector_size;
  if (spec_.text_length > 0) b.text = text_.data() + static_cast<int64_t>(i) * spec_.text_length;
  return b;
}

void VectorEnv::CopyFlags(int i, const StepBuffer& b) {
  reward_[i] = b.reward;
  is_first_[i] = b.is_first;
  is_last_[i] = b.is_last;
  is_terminal_[i] = b.is_terminal;
  success_[i] = b.success;
}

absl::Status VectorEnv::ResetOne(int i) {
  Slot& slot = slots_[i];
  StepBuffer b = Row(i);
  absl::Status status = envs_[i]->Reset(slot.seeds.Next(), &b);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("env ", i, " reset: ", status.message()));
  }
  // Some envs leave the flags to us on reset; enforce DreamerV3's first-step convention.
  b.reward = 0.0f;
  b.is_first = true;
  b.is_last = false;
  b.is_terminal = false;
  CopyFlags(i, b);
  slot.needs_reset = false;
  ++slot.episode;
  slot.episode_return = 0.0;
  slot.length = 0;
  slot.success = false;
  return absl::OkStatus();
}

absl::Status VectorEnv::Reset() {
  finished_.clear();
  for (int i = 0; i < num_envs(); ++i) {
    absl::Status status = ResetOne(i);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status VectorEnv::Step(absl::Span<const int> actions) {
  if (static_cast<int>(actions.size()) != num_envs()) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", actions.size(), " actions for ", num_envs(), " envs"));
  }
  finished_.clear();
  for (int i = 0; i < num_envs(); ++i) {
    Slot& slot = slots_[i];
    if (slot.needs_reset) {
      absl::Status status = ResetOne(i);
      if (!status.ok()) return status;
      continue;
    }
    StepBuffer b = Row(i);
    absl::Status status = envs_[i]->Step(actions[i], &b);
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("env ", i, " step: ", status.message()));
    }
    b.is_first = false;
    if (b.is_terminal) b.is_last = true;  // a terminal step always ends the episode
    CopyFlags(i, b);
    ++total_steps_;
    ++slot.length;
    slot.episode_return += b.reward;
    slot.success = slot.success || b.success;
    if (b.is_last) {
      slot.needs_reset = true;
      ++total_episodes_;
      finished_.push_back(EpisodeStats{i, slot.episode, slot.episode_return, slot.length,
                                       slot.success, b.is_terminal});
    }
  }
  return absl::OkStatus();
}

}  // namespace dreamfleet::actor
