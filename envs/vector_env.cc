// See vector_env.h.
#include "envs/vector_env.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/status_macros.h"

namespace dreamfleet::envs {

absl::StatusOr<std::unique_ptr<VectorEnv>> VectorEnv::Create(const EnvOptions& options,
                                                             int num_envs, int num_threads) {
  if (num_envs <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_envs must be > 0, got ", num_envs));
  }
  std::vector<std::unique_ptr<Environment>> envs;
  envs.reserve(num_envs);
  for (int i = 0; i < num_envs; ++i) {
    EnvOptions env_options = options;
    env_options.env_index = options.env_index + i;
    ASSIGN_OR_RETURN(std::unique_ptr<Environment> env, MakeEnvironment(env_options));
    envs.push_back(std::move(env));
  }
  return Create(std::move(envs), options.base_seed, options.env_index, num_threads);
}

absl::StatusOr<std::unique_ptr<VectorEnv>> VectorEnv::Create(
    std::vector<std::unique_ptr<Environment>> envs, uint64_t base_seed, int first_env_index,
    int num_threads) {
  if (envs.empty()) return absl::InvalidArgumentError("VectorEnv needs at least one env");
  if (num_threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_threads must be >= 1, got ", num_threads));
  }
  for (size_t i = 0; i < envs.size(); ++i) {
    if (envs[i] == nullptr) return absl::InvalidArgumentError(absl::StrCat("env ", i, " is null"));
  }
  const EnvSpec& first = envs[0]->spec();
  for (size_t i = 1; i < envs.size(); ++i) {
    const EnvSpec& s = envs[i]->spec();
    if (s.image_height != first.image_height || s.image_width != first.image_width ||
        s.image_channels != first.image_channels || s.vector_size != first.vector_size ||
        s.text_length != first.text_length || s.num_actions != first.num_actions) {
      return absl::InvalidArgumentError(absl::StrCat(
          "env ", i, " (\"", s.name, "\") observation [", s.image_height, ",", s.image_width, ",",
          s.image_channels, "] vector ", s.vector_size, " text ", s.text_length, " actions ",
          s.num_actions, " does not match env 0 (\"", first.name, "\") [", first.image_height, ",",
          first.image_width, ",", first.image_channels, "] vector ", first.vector_size, " text ",
          first.text_length, " actions ", first.num_actions));
    }
  }
  num_threads = std::min<int>(num_threads, static_cast<int>(envs.size()));
  return std::unique_ptr<VectorEnv>(
      new VectorEnv(std::move(envs), base_seed, first_env_index, num_threads));
}

VectorEnv::VectorEnv(std::vector<std::unique_ptr<Environment>> envs, uint64_t base_seed,
                     int first_env_index, int num_threads)
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
  for (int b = 1; b < num_threads; ++b) workers_.emplace_back([this, b] { WorkerLoop(b); });
}

VectorEnv::~VectorEnv() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& t : workers_) t.join();
}

StepBuffer VectorEnv::Row(int i) {
  StepBuffer b;
  b.image = image_.data() + static_cast<int64_t>(i) * spec_.image_bytes();
  if (spec_.vector_size > 0) {
    b.vector = vector_.data() + static_cast<int64_t>(i) * spec_.vector_size;
  }
  if (spec_.text_length > 0) {
    b.text = text_.data() + static_cast<int64_t>(i) * spec_.text_length;
  }
  return b;
}

absl::Status VectorEnv::ResetOne(int i) {
  Slot& slot = slots_[i];
  StepBuffer b = Row(i);
  absl::Status status = envs_[i]->Reset(slot.seeds.Next(), &b);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("env ", i, " reset: ", status.message()));
  }
  // DreamerV3's first-step convention, whatever the env left in the flags.
  reward_[i] = 0.0f;
  is_first_[i] = 1;
  is_last_[i] = 0;
  is_terminal_[i] = 0;
  success_[i] = 0;
  slot.needs_reset = false;
  ++slot.episode;
  slot.episode_return = 0.0;
  slot.length = 0;
  slot.success = false;
  return absl::OkStatus();
}

void VectorEnv::StepOne(int i, int action) {
  Slot& slot = slots_[i];
  slot.stepped = false;
  slot.finished = false;
  if (slot.needs_reset) {
    slot.status = ResetOne(i);
    return;
  }
  StepBuffer b = Row(i);
  absl::Status status = envs_[i]->Step(action, &b);
  if (!status.ok()) {
    slot.status = absl::Status(status.code(), absl::StrCat("env ", i, " step: ", status.message()));
    return;
  }
  slot.status = absl::OkStatus();
  const bool is_last = b.is_last || b.is_terminal;  // a terminal step always ends the episode
  reward_[i] = b.reward;
  is_first_[i] = 0;
  is_last_[i] = is_last;
  is_terminal_[i] = b.is_terminal;
  success_[i] = b.success;
  slot.stepped = true;
  ++slot.length;
  slot.episode_return += b.reward;
  slot.success = slot.success || b.success;
  if (is_last) {
    slot.needs_reset = true;
    slot.finished = true;
  }
}

void VectorEnv::StepBlock(int block, absl::Span<const int> actions) {
  const int k = num_envs();
  const int t = num_threads();
  const int begin = static_cast<int>(static_cast<int64_t>(k) * block / t);
  const int end = static_cast<int>(static_cast<int64_t>(k) * (block + 1) / t);
  for (int i = begin; i < end; ++i) StepOne(i, actions[i]);
}

void VectorEnv::WorkerLoop(int block) {
  int64_t seen = 0;
  while (true) {
    absl::Span<const int> actions;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || generation_ != seen; };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      seen = generation_;
      actions = actions_;
    }
    StepBlock(block, actions);
    absl::MutexLock lock(&mu_);
    --pending_;
  }
}

absl::Status VectorEnv::Reset() {
  finished_.clear();
  for (int i = 0; i < num_envs(); ++i) {
    RETURN_IF_ERROR(ResetOne(i));
  }
  return absl::OkStatus();
}

absl::Status VectorEnv::Step(absl::Span<const int> actions) {
  if (static_cast<int>(actions.size()) != num_envs()) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", actions.size(), " actions for ", num_envs(), " envs"));
  }
  finished_.clear();
  if (workers_.empty()) {
    StepBlock(0, actions);
  } else {
    {
      absl::MutexLock lock(&mu_);
      actions_ = actions;
      pending_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    StepBlock(0, actions);
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
    mu_.Await(absl::Condition(&done));
  }
  // Gather in env order, so the result does not depend on the threads.
  for (int i = 0; i < num_envs(); ++i) {
    Slot& slot = slots_[i];
    if (!slot.status.ok()) return slot.status;
    if (slot.stepped) ++total_steps_;
    if (slot.finished) {
      ++total_episodes_;
      finished_.push_back(EpisodeStats{i, slot.episode, slot.episode_return, slot.length,
                                       slot.success, is_terminal_[i] != 0});
    }
  }
  return absl::OkStatus();
}

services::StepRecord VectorEnv::Record(int i, int action) const {
  services::StepRecord step;
  if (spec_.image_bytes() > 0) step.image = image() + i * spec_.image_bytes();
  if (spec_.vector_size > 0) step.vector = vector() + i * spec_.vector_size;
  if (spec_.text_length > 0) step.text = text() + i * spec_.text_length;
  step.action = action;
  step.reward = reward()[i];
  step.is_first = is_first()[i];
  step.is_last = is_last()[i];
  step.is_terminal = is_terminal()[i];
  return step;
}

}  // namespace dreamfleet::envs
