#include "learner/dreamer_agent.h"

#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "ATen/Parallel.h"
#include "ATen/record_function.h"
#include "absl/strings/str_cat.h"
#include "dreamer/compute_threads.h"
#include "learner/checkpoint.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

bool AllFinite(const torch::Tensor& t) {
  return !t.defined() || torch::isfinite(t).all().item<bool>();
}

// One call run on LibTorch's inter-op thread pool, which carries over the caller's thread-local
// state (grad mode); the caller's intra-op thread count is set there too, as OpenMP keeps one per
// thread. The destructor waits for the call, so that no return path (an exception, an early
// skip) leaves it running over the caller's tensors.
class BackgroundCall {
 public:
  explicit BackgroundCall(std::function<void()> fn) {
    auto promise = std::make_shared<std::promise<void>>();
    done_ = promise->get_future();
    at::launch([fn = std::move(fn), promise, threads = at::get_num_threads()] {
      try {
        if (at::get_num_threads() != threads) at::set_num_threads(threads);
        fn();
        promise->set_value();
      } catch (...) {
        promise->set_exception(std::current_exception());
      }
    });
  }
  BackgroundCall(const BackgroundCall&) = delete;
  BackgroundCall& operator=(const BackgroundCall&) = delete;
  ~BackgroundCall() {
    if (done_.valid()) done_.wait();
  }
  // Waits and rethrows what the call threw.
  void Wait() {
    if (done_.valid()) done_.get();
  }

 private:
  std::future<void> done_;
};

}  // namespace

DreamerAgent::DreamerAgent(const dreamer::AgentConfig& config, torch::Device device)
    : config_(config),
      device_(device),
      retnorm_(dreamer::ReturnNormalizerOptions{config.retnorm_decay, config.retnorm_perclo,
                                                config.retnorm_perhi, config.retnorm_limit, false},
               device),
      gen_(at::detail::createCPUGenerator(config.seed + 1)) {}

absl::StatusOr<std::unique_ptr<DreamerAgent>> DreamerAgent::Create(
    const dreamer::AgentConfig& config, torch::Device device) {
  RETURN_IF_ERROR(config.Validate());
  try {
    dreamer::SetComputeThreads(config.threads);
    torch::manual_seed(config.seed);  // initial weights
    std::unique_ptr<DreamerAgent> agent(new DreamerAgent(config, device));
    agent->wm_ = dreamer::WorldModel(config);
    agent->ac_ = dreamer::ActorCritic(config);
    agent->wm_->to(device);
    agent->ac_->to(device);
    if (config.disag_scale > 0) {
      agent->disag_ = dreamer::Disagreement(config);
      agent->disag_->to(device);
    }
    agent->policy_ =
        dreamer::Policy(config, agent->wm_->encoder(), agent->wm_->rssm(), agent->ac_->actor());
    auto options = [&](double lr) {
      return LaPropOptions(lr)
          .beta1(config.beta1)
          .beta2(config.beta2)
          .eps(config.eps)
          .agc(config.agc)
          .warmup_steps(config.warmup);
    };
    const double ac_lr = config.ac_lr > 0 ? config.ac_lr : config.lr;
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(agent->wm_->parameters(),
                        std::make_unique<LaPropOptions>(options(config.lr)));
    groups.emplace_back(agent->ac_->TrainableParameters(),
                        std::make_unique<LaPropOptions>(options(ac_lr)));
    if (agent->disag_) {
      // The ensemble learns at the world model's rate (it predicts the same latents).
      groups.emplace_back(agent->disag_->parameters(),
                          std::make_unique<LaPropOptions>(options(config.lr)));
    }
    agent->opt_ = std::make_unique<LaProp>(std::move(groups), options(config.lr));
    return agent;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("building the agent failed: ", e.what()));
  }
}

TrainMetrics DreamerAgent::Skip(TrainMetrics m, std::string reason) {
  opt_->zero_grad();
  ++skipped_;
  m.skipped = true;
  m.skip_reason = std::move(reason);
  std::cerr << "dreamfleet learner: skipped update " << updates_ << " (" << m.skip_reason
            << "); skipped so far: " << skipped_ << "\n";
  return m;
}

absl::StatusOr<TrainMetrics> DreamerAgent::Train(const dreamer::Batch& input) {
  RETURN_IF_ERROR(dreamer::ValidateBatch(input, config_));
  TrainMetrics m;
  // The return normaliser as it was before the actor-critic's loss moved it, for every exit that
  // leaves the update undone.
  std::optional<std::map<std::string, torch::Tensor>> retnorm_before;
  try {
    dreamer::Batch b = input.To(device_);
    if (!AllFinite(b.reward) || !AllFinite(b.vector)) {
      return Skip(std::move(m), "batch has non-finite reward or vector values");
    }
    wm_->train();
    ac_->train();
    opt_->zero_grad();

    // World model.
    auto start = std::chrono::steady_clock::now();
    std::optional<at::RecordFunction> phase;
    auto begin_phase = [&](const char* name) {
      // Named phases for `bench_learner --profile` (a no-op unless the profiler is on).
      phase.emplace(at::RecordScope::USER_SCOPE);
      if (phase->isActive()) phase->before(absl::StrCat(kProfilePhasePrefix, name));
    };
    begin_phase("world model loss");
    auto wm = wm_->Loss(b, Gen());
    if (!AllFinite(wm.loss)) return Skip(std::move(m), "world model loss is not finite");
    torch::Tensor model_loss = wm.loss;
    dreamer::DisagreementFit disag_fit;
    if (disag_) {
      // The ensemble learns the posterior's next latents (read detached: it never trains the
      // world model).
      disag_fit = disag_->Fit(wm.feat, b.action, wm.seq.stoch, b.is_first);
      if (!AllFinite(disag_fit.loss)) return Skip(std::move(m), "disagreement loss is not finite");
      wm.losses["disag"] = disag_fit.loss.detach();
      model_loss = model_loss + disag_fit.loss;
    }
    // The world model's backward pass, here or (overlap_wm, on the CPU) on a second thread while
    // the actor-critic below imagines and learns: both read the weights before this update's step
    // and write only gradients (LibTorch locks each gradient as it adds to it).
    const bool overlap = config_.overlap_wm && device_.is_cpu() && config_.actor_dynamics <= 0;
    double wm_backward_seconds = 0;
    bool wm_backward_elsewhere = false;  // it ran on another thread
    std::optional<BackgroundCall> wm_backward;
    if (overlap) {
      wm_backward.emplace([&model_loss, &wm_backward_seconds, &wm_backward_elsewhere,
                           caller = std::this_thread::get_id(), retain = config_.repval_grad] {
        auto begin = std::chrono::steady_clock::now();
        model_loss.backward({}, retain);
        wm_backward_seconds = Seconds(begin);
        wm_backward_elsewhere = std::this_thread::get_id() != caller;
      });
    } else {
      begin_phase("world model backward");
      model_loss.backward({}, /*retain_graph=*/config_.repval_grad);
    }
    m.world_model_seconds = Seconds(start);

    // Actor-critic on imagined rollouts from the posterior states (all, or imag_starts of them).
    start = std::chrono::steady_clock::now();
    begin_phase("imagination");
    dreamer::ImaginedTrajectory traj = ImagineFrom(wm, b);
    torch::Tensor replay_reward = b.reward;
    if (disag_) AddIntrinsicReward(disag_fit, b, traj, replay_reward, m);
    m.imagination_seconds = Seconds(start);
    dreamer::ReplayContext replay{config_.repval_grad ? wm.feat : wm.feat.detach(), replay_reward,
                                  b.is_last, b.is_terminal};
    retnorm_before = retnorm_.Save();
    begin_phase("actor-critic loss");
    auto ac = ac_->Loss(traj, replay, retnorm_);
    if (!ac.finite || !AllFinite(ac.loss)) {
      if (wm_backward) wm_backward->Wait();  // Skip clears the gradients it is writing
      RETURN_IF_ERROR(retnorm_.Load(*retnorm_before));
      return Skip(std::move(m), "actor-critic returns or loss are not finite");
    }
    begin_phase("actor-critic backward");
    // The dynamics objective trains the actor only: its gradient is taken for the actor's
    // parameters before the rest, so the world model and the critic never see it.
    std::vector<torch::Tensor> actor_params, dynamics_grads;
    if (ac.dynamics.defined()) {
      actor_params = ac_->actor()->parameters();
      dynamics_grads = torch::autograd::grad({config_.scale_policy * ac.dynamics}, actor_params,
                                             /*grad_outputs=*/{}, /*retain_graph=*/false,
                                             /*create_graph=*/false, /*allow_unused=*/true);
    }
    // Overlapped with the world model's backward, the replay value loss's path into the world
    // model (repval_grad) is the two passes' shared graph: neither may free it under the other.
    ac.loss.backward({}, /*retain_graph=*/overlap && config_.repval_grad);
    if (ac.dynamics.defined()) {
      // Norms of the two parts of the actor's gradient (the first with the entropy bonus).
      std::vector<torch::Tensor> reinforce_sq, dynamics_sq;
      for (size_t i = 0; i < actor_params.size(); ++i) {
        if (!dynamics_grads[i].defined()) continue;
        auto& p = actor_params[i];
        dynamics_sq.push_back(dynamics_grads[i].detach().pow(2).sum());
        if (p.grad().defined()) {
          reinforce_sq.push_back(p.grad().detach().pow(2).sum());
          p.mutable_grad().add_(dynamics_grads[i]);
        } else {
          p.mutable_grad() = dynamics_grads[i];
        }
      }
      auto norm = [](const std::vector<torch::Tensor>& sq) {
        return sq.empty() ? 0.0 : torch::stack(sq).sum().sqrt().item<double>();
      };
      m.metrics["reinforce_grad_norm"] = norm(reinforce_sq);
      m.metrics["dynamics_grad_norm"] = norm(dynamics_sq);
    }
    if (wm_backward) {
      wm_backward->Wait();
      m.world_model_seconds += wm_backward_seconds;
      m.world_model_overlapped = wm_backward_elsewhere;
    }
    for (const auto& group : opt_->param_groups()) {
      for (const auto& p : group.params()) {
        if (p.grad().defined() && !AllFinite(p.grad())) {
          RETURN_IF_ERROR(retnorm_.Load(*retnorm_before));
          return Skip(std::move(m), "gradients are not finite");
        }
      }
    }
    begin_phase("optimizer");
    opt_->step();
    retnorm_before.reset();  // the update is done
    phase.reset();
    ++updates_;
    if (config_.slow_every > 0 && updates_ % config_.slow_every == 0) ac_->UpdateSlowValue();
    m.actor_critic_seconds = Seconds(start);

    {
      auto per_sequence = wm.sequence_loss.to(torch::kCPU, torch::kDouble).contiguous();
      m.sequence_losses.assign(per_sequence.data_ptr<double>(),
                               per_sequence.data_ptr<double>() + per_sequence.numel());
    }
    if (config_.replay_context > 0) {
      // Computed with the weights before this update, as the official agent writes them back.
      m.posterior_deter = wm.seq.deter.detach().to(torch::kCPU, torch::kFloat).contiguous();
      m.posterior_stoch = wm.seq.stoch.detach().to(torch::kCPU, torch::kFloat).contiguous();
    }
    for (const auto& [k, v] : wm.losses) m.losses[k] = v.item<double>();
    for (const auto& [k, v] : ac.losses) m.losses[k] = v.item<double>();
    for (const auto& [k, v] : wm.metrics) m.metrics[k] = v.item<double>();
    for (const auto& [k, v] : ac.metrics) m.metrics[k] = v.item<double>();
    return m;
  } catch (const std::exception& e) {
    // An update that fails before its step leaves the normaliser as it was (the world model's
    // backward under overlap_wm reports its failure only after the actor-critic's loss moved it).
    if (retnorm_before) (void)retnorm_.Load(*retnorm_before);
    opt_->zero_grad();
    return absl::InternalError(absl::StrCat("training step failed: ", e.what()));
  }
}

dreamer::ImaginedTrajectory DreamerAgent::ImagineFrom(const dreamer::WorldModelOutput& wm,
                                                      const dreamer::Batch& b) {
  // With actor_dynamics the rollout keeps its graph (from detached starts) for the actor's
  // dynamics gradient; otherwise imagination needs none.
  std::optional<torch::NoGradGuard> no_grad;
  const bool dynamics = config_.actor_dynamics > 0;
  if (!dynamics) no_grad.emplace();
  const int64_t all = wm.seq.deter.size(0) * wm.seq.deter.size(1);
  dreamer::RssmState begin{wm.seq.deter.reshape({all, -1}).detach(),
                           wm.seq.stoch.reshape({all, config_.stoch, config_.classes}).detach()};
  auto first_cont = (~b.is_terminal).to(torch::kFloat32).reshape({all}).detach();
  // The draws below take LibTorch's optional generator (the agent's own on the CPU).
  c10::optional<at::Generator> gen;
  if (auto g = Gen(); g.has_value()) gen = *g;
  torch::Tensor start_index;
  if (config_.imag_starts > 0 && config_.imag_starts < all) {
    start_index = torch::randperm(all, gen, torch::TensorOptions(torch::kLong))
                      .narrow(0, 0, config_.imag_starts)
                      .to(begin.deter.device());
    begin.deter = begin.deter.index_select(0, start_index);
    begin.stoch = begin.stoch.index_select(0, start_index);
    first_cont = first_cont.index_select(0, start_index.to(first_cont.device()));
  }
  // imag_explore: some rows open with one random action held for a random number of steps.
  torch::Tensor held_action, held_steps;
  if (config_.imag_explore > 0) {
    const int64_t n = begin.deter.size(0);
    auto opts = torch::TensorOptions(torch::kLong);
    auto explore =
        torch::rand({n}, gen, torch::TensorOptions(torch::kFloat32)) < config_.imag_explore;
    held_action = torch::randint(0, config_.num_actions, {n}, gen, opts);
    held_steps = torch::randint(1, config_.imag_horizon + 1, {n}, gen, opts) * explore;
    held_action = held_action.to(begin.deter.device());
    held_steps = held_steps.to(begin.deter.device());
  }
  const torch::Tensor held = held_steps.defined() ? held_steps.clone() : torch::Tensor();
  auto img = wm_->rssm()->Imagine(
      begin,
      [&](const torch::Tensor& feat) {
        // A straight-through one-hot when the actor learns through the dynamics.
        auto action = dynamics ? ac_->SampleOneHot(feat, Gen()) : ac_->SampleAction(feat, Gen());
        if (!held_steps.defined()) return action;
        if (dynamics) {
          auto held_onehot = torch::one_hot(held_action, config_.num_actions).to(action.dtype());
          action = torch::where((held_steps > 0).unsqueeze(-1), held_onehot, action);
        } else {
          action = torch::where(held_steps > 0, held_action, action);
        }
        held_steps = (held_steps - 1).clamp_min(0);
        return action;
      },
      config_.imag_horizon, Gen());
  dreamer::ImaginedTrajectory traj;
  traj.feat = dreamer::RssmImpl::Feat(img.deter, img.stoch);
  traj.action = img.action;
  traj.reward = wm_->RewardMean(traj.feat);
  traj.cont = wm_->ContinueProb(traj.feat);
  traj.start_index = start_index;
  traj.held = held;
  // The first state is real: its continue flag comes from the data.
  if (config_.contdisc) first_cont = first_cont * (1.0 - 1.0 / config_.horizon);
  traj.cont =
      torch::cat({first_cont.unsqueeze(1), traj.cont.narrow(1, 1, traj.cont.size(1) - 1)}, 1);
  return traj;
}

void DreamerAgent::AddIntrinsicReward(const dreamer::DisagreementFit& fit, const dreamer::Batch& b,
                                      dreamer::ImaginedTrajectory& traj,
                                      torch::Tensor& replay_reward, TrainMetrics& m) {
  auto pad_first = [](const torch::Tensor& x) {
    return torch::cat({torch::zeros_like(x.narrow(1, 0, 1)), x}, 1);
  };
  torch::Tensor imagined_bonus, replayed_bonus;
  {
    torch::NoGradGuard no_grad;
    // Imagined: the transition out of state t is rewarded on entering t+1 (the first state's
    // reward is the data's and is never used).
    const int64_t h1 = traj.feat.size(1);
    auto imagined = disag_->Disagree(traj.feat.narrow(1, 0, h1 - 1).detach(),
                                     traj.action.narrow(1, 0, h1 - 1));  // [N, H]
    auto mean = imagined.mean();
    imagined_bonus = pad_first(dreamer::IntrinsicReward(imagined, mean, config_.disag_scale));
    // Replayed: the window's transitions, none into an episode's first step, each against the
    // mean of the replayed ones (the ensemble trains on these very windows, so they are familiar
    // on average; against the imagined mean the replay value loss would see a negative reward
    // where imagination sees none on average). The fit's forward pass measured them already.
    const auto& keep = fit.keep;  // [B, T-1]
    auto replayed_mean = (fit.disag * keep).sum() / keep.sum().clamp_min(1.0);
    replayed_bonus =
        pad_first(dreamer::IntrinsicReward(fit.disag, replayed_mean, config_.disag_scale) * keep);
    m.metrics["disag"] = mean.item<double>();
    m.metrics["disag_replay"] = replayed_mean.item<double>();
  }
  // Outside the no-grad scope: with actor_dynamics the imagined reward keeps its graph.
  traj.reward = traj.reward + imagined_bonus;
  replay_reward = b.reward + replayed_bonus;
}

absl::Status DreamerAgent::Save(const std::string& dir, int keep_last, int64_t step) {
  try {
    CheckpointContents contents;
    contents.modules["world_model"] = wm_.get();
    contents.modules["actor_critic"] = ac_.get();
    if (disag_) contents.modules["disagreement"] = disag_.get();
    contents.optimizers["opt"] = opt_.get();
    contents.counters = counters_;
    contents.counters["updates"] = updates_;
    contents.counters["skipped_updates"] = skipped_;
    for (const auto& [k, v] : retnorm_.Save()) contents.tensors["retnorm." + k] = v;
    contents.tensors["generator_state"] = gen_.get_state();
    contents.config_text = config_.Serialize();
    CheckpointOptions options;
    options.keep_last = keep_last;
    return WriteCheckpoint(dir, step < 0 ? updates_ : step, contents, options);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("saving a checkpoint to ", dir, " failed: ", e.what()));
  }
}

absl::Status DreamerAgent::Restore(const std::string& dir) {
  ASSIGN_OR_RETURN(auto loaded, LoadLatestCheckpoint(dir));
  ASSIGN_OR_RETURN(dreamer::AgentConfig saved, dreamer::AgentConfig::Parse(loaded.config_text()));
  if (saved.num_actions != config_.num_actions) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint ", loaded.path(), " was trained with ", saved.num_actions,
                     " actions but this env has ", config_.num_actions,
                     " (a different env, or MinAtar's env.action_set full against minimal?)"));
  }
  auto other_preset = [&] {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint ", loaded.path(), " was trained with preset ", saved.preset,
                     " which does not match this agent's preset ", config_.preset));
  };
  if (saved.preset != config_.preset &&
      (saved.feat_size() != config_.feat_size() || saved.depth != config_.depth ||
       saved.units != config_.units || saved.hidden != config_.hidden)) {
    return other_preset();
  }
  auto other_setting = [&](const char* key, const std::string& saved_value,
                           const std::string& value) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint ", loaded.path(), " was trained with ", key, ": ", saved_value,
        " but this run sets ", value, "; resume with the same setting or start afresh"));
  };
  // Sizes set on top of the same preset: the widths and the latent by their config keys, the
  // others by train-local's --agent flags.
  for (const auto& [key, size] : {std::pair{"learner.units", &dreamer::AgentConfig::units},
                                  std::pair{"learner.hidden", &dreamer::AgentConfig::hidden},
                                  std::pair{"learner.stoch", &dreamer::AgentConfig::stoch},
                                  std::pair{"learner.classes", &dreamer::AgentConfig::classes},
                                  std::pair{"deter", &dreamer::AgentConfig::deter},
                                  std::pair{"depth", &dreamer::AgentConfig::depth}}) {
    if (saved.*size != config_.*size) {
      return other_setting(key, absl::StrCat(saved.*size), absl::StrCat(config_.*size));
    }
  }
  // The reward, value and return heads' bins mean different numbers in the two spaces: weights
  // from one would decode nonsense in the other.
  if (saved.twohot != config_.twohot) {
    return other_setting("learner.twohot", saved.twohot, config_.twohot);
  }
  // Only a vector observation is encoded and decoded differently (the decoder's outputs are logits
  // under one vector_loss and symlog values under the other); image-only checkpoints load either
  // way.
  if (config_.vector_size > 0) {
    for (const auto& [key, member] :
         {std::pair{"learner.vector_encoder", &dreamer::AgentConfig::vector_encoder},
          {"learner.vector_decoder", &dreamer::AgentConfig::vector_decoder},
          {"learner.vector_loss", &dreamer::AgentConfig::vector_loss}}) {
      if (saved.*member != config_.*member) {
        return other_setting(key, saved.*member, config_.*member);
      }
    }
  }
  // The ensemble is a module and a group of the optimiser: on, off and its size must match.
  auto ensemble = [](const dreamer::AgentConfig& c) {
    return c.disag_scale > 0 ? absl::StrCat(c.disag_models, " models") : std::string("off");
  };
  if (ensemble(saved) != ensemble(config_)) {
    return other_setting("the disagreement ensemble (learner.disagreement_scale, _models)",
                         ensemble(saved), ensemble(config_));
  }
  try {
    RETURN_IF_ERROR(loaded.RestoreModule("world_model", *wm_));
    RETURN_IF_ERROR(loaded.RestoreModule("actor_critic", *ac_));
    if (disag_) RETURN_IF_ERROR(loaded.RestoreModule("disagreement", *disag_));
    RETURN_IF_ERROR(loaded.RestoreOptimizer("opt", *opt_, device_));
    std::map<std::string, torch::Tensor> retnorm;
    for (const auto& [k, v] : loaded.tensors()) {
      if (k.rfind("retnorm.", 0) == 0) retnorm[k.substr(8)] = v;
    }
    RETURN_IF_ERROR(retnorm_.Load(retnorm));
    auto gen = loaded.tensors().find("generator_state");
    if (gen == loaded.tensors().end()) {
      return absl::DataLossError(
          absl::StrCat("checkpoint ", loaded.path(), " has no generator_state"));
    }
    gen_.set_state(gen->second);
    counters_ = loaded.counters();
    updates_ = counters_["updates"];
    skipped_ = counters_["skipped_updates"];
    counters_.erase("updates");
    counters_.erase("skipped_updates");
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("restoring ", loaded.path(), " failed: ", e.what()));
  }
}

absl::StatusOr<StartedFrom> RestoreOrInitialize(DreamerAgent& agent,
                                                const std::string& checkpoint_dir,
                                                const std::string& init_from) {
  if (!checkpoint_dir.empty()) {
    // Only a directory without checkpoints is "none yet": a damaged one is an error, never a
    // reason to start over (from init_from or fresh, which would also clear the best agent).
    absl::StatusOr<std::vector<int64_t>> saved = ListCheckpoints(checkpoint_dir);
    if (saved.ok() && !saved->empty()) {
      RETURN_IF_ERROR(agent.Restore(checkpoint_dir));
      return StartedFrom::kCheckpoint;
    }
  }
  if (init_from.empty()) return StartedFrom::kFresh;
  const absl::Status initialized = agent.Restore(init_from);
  if (absl::IsNotFound(initialized)) {
    return absl::NotFoundError(absl::StrCat("the agent to start from, ", init_from,
                                            ", holds no checkpoint (", initialized.message(), ")"));
  }
  RETURN_IF_ERROR(initialized);
  return StartedFrom::kInitFrom;
}

}  // namespace dreamfleet::learner
