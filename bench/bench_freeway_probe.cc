// bench_freeway_probe: what a trained MinAtar Freeway agent's critic and world model make of the
// cars that send the chicken back.
//
//   bench_freeway_probe --run runs/bench_learning/minatar_freeway/seed0 [--episodes=4]
//                       [--greedy=false] [--seed=5]
//
// The agent plays --episodes episodes (symbolic view). A car that hits the chicken sends it back
// to the bottom row (envs/minatar_freeway.cc): the probe counts a hit where the chicken was above
// the bottom row and is on it one step later without a crossing's reward (a step down from row 8,
// chosen or repeated by sticky actions, is left out as ambiguous). A hit on the first move up
// from the bottom row puts the chicken back there within the step, which the grid does not show:
// those are not counted. It prints
// 1. the crossings and hits, the hits by the row the chicken left and by the action the agent
//    chose (sticky actions may have repeated the one before);
// 2. the critic's mean value by the chicken's row, beside the discounted return that truly
//    followed those steps (the agent's own play, the agent's discount): a critic that sees
//    progress values the top rows above the bottom one as the returns do;
// 3. at the steps just before a hit, and at the other steps with the chicken above the bottom
//    row: the policy's probability of each action, the one-step lookahead (reward + continue x
//    value of the state the world model expects after the action, 16 samples) minus the value,
//    and the share of those samples whose decoded chicken is on the bottom row after the action
//    the agent took (the model foreseeing the hit), and the share that draw no chicken (no cell
//    of column 4 at 0.5 or more). A lookahead that prefers waiting before hits
//    where the policy goes up says the actor lags its critic; one that does not, with a model that
//    foresees the hit, says the critic does not value the rows; a model that does not foresee it
//    says the world model is the limit;
// 4. at every observed step with the chicken on the board, the chicken's true cell as the decoder
//    draws it from the posterior the policy acted on (its sampled latent) and from the posterior's
//    mode (each latent group's most likely class), and how sure the posterior's groups are (their
//    mean largest probability), apart for the steps where the chicken's row just changed: a mode
//    that draws the chicken where the samples do not says the posterior knows the row but is
//    unsure; one that does not either says the row never reached the posterior;
// 5. the chicken's row read linearly from the same latent (a softmax regression over the ten
//    rows, fitted on the first half of the episodes and scored on the rest), from the whole
//    latent, its deterministic part and its stochastic part: a row the regression reads where
//    the decoder does not draw it is in the latent, and the decoder is what misses it.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "dreamer/actor_critic.h"
#include "dreamer/distributions.h"
#include "dreamer/policy.h"
#include "dreamer/world_model.h"
#include "learner/agent_source.h"
#include "services/command_line.h"
#include "services/thread_env.h"

namespace {

using namespace dreamfleet;

constexpr int kSide = 10, kChannels = 7, kColumn = 4, kBottom = 9;
constexpr int64_t kSamples = 16;

// The chicken's row in a symbolic grid [10, 10, 7] (channel 0 at column 4); -1 if absent.
int ChickenRow(const float* grid) {
  for (int y = 0; y < kSide; ++y) {
    if (grid[(y * kSide + kColumn) * kChannels] > 0.5f) return y;
  }
  return -1;
}

// The actor, the critic and the world model at one posterior state: per agent action the policy's
// probability, the one-step lookahead value, and the share of samples whose decoded chicken
// (the largest chicken cell of column 4, drawn at 0.5 or more) is on the bottom row after it, and
// of those that draw no chicken.
struct View {
  std::vector<double> p, q, bottom, undrawn;
  double value = 0;
};

// The lookahead (p, q, bottom, undrawn) only where `lookahead`; the value always. All actions'
// samples are imagined in one batch by WorldModel::ImagineActions and read by Predict.
View Inspect(learner::DreamerAgent& agent, const dreamer::PolicyState& state, bool lookahead) {
  torch::NoGradGuard no_grad;
  auto wm = agent.world_model();
  auto ac = agent.actor_critic();
  const auto space = dreamer::TwoHotSpaceNamed(agent.config().twohot);
  const int64_t actions = agent.config().num_actions;
  View out;
  auto feat = dreamer::RssmImpl::Feat(state.deter, state.stoch);
  out.value = dreamer::TwoHotMean(ac->value()->forward(feat), space).mean().item<double>();
  if (!lookahead) return out;
  auto probs = ac->PolicyLogits(feat).exp().reshape({-1}).contiguous();
  // Rows a * kSamples .. (a + 1) * kSamples - 1 take action a.
  const int64_t rows = actions * kSamples;
  const auto taken = torch::arange(actions, torch::kLong).repeat_interleave(kSamples).unsqueeze(1);
  const dreamer::Imagination imagined = wm->ImagineActions(
      {state.deter.expand({rows, -1}), state.stoch.expand({rows, -1, -1})}, taken, std::nullopt);
  auto next = dreamer::RssmImpl::Feat(imagined.deter.select(1, 1), imagined.stoch.select(1, 1));
  // Predict decodes into the observation's own space under either learner.vector_loss.
  const dreamer::OpenLoopPrediction predicted =
      wm->Predict(next.unsqueeze(1), /*decode_observations=*/true);
  // With contdisc the continue probability already includes the discount.
  const double gamma = 1.0 - 1.0 / agent.config().horizon;
  auto cont = predicted.cont.reshape({rows}) * (agent.config().contdisc ? 1.0 : gamma);
  auto v = dreamer::TwoHotMean(ac->value()->forward(next), space);
  auto q = (predicted.reward.reshape({rows}) + cont * v).view({actions, kSamples}).mean(1);
  auto grid = predicted.vector.reshape({actions, kSamples, kSide, kSide, kChannels});
  const auto [largest, chicken] = grid.select(-1, 0).select(-1, kColumn).max(2);  // [A, samples]
  const auto drawn = largest.ge(0.5);
  auto bottom = chicken.eq(kBottom).logical_and(drawn).to(torch::kFloat).mean(1);
  auto undrawn = drawn.logical_not().to(torch::kFloat).mean(1);
  for (int64_t a = 0; a < actions; ++a) {
    out.p.push_back(probs[a].item<double>());
    out.q.push_back(q[a].item<double>());
    out.bottom.push_back(bottom[a].item<double>());
    out.undrawn.push_back(undrawn[a].item<double>());
  }
  return out;
}

struct ViewStats {
  int64_t n = 0;
  std::vector<double> p, q_minus_v, bottom, undrawn;
  double taken_bottom = 0, taken_undrawn = 0;  // the samples after the action taken
  void Add(const View& v, int taken) {
    if (p.empty()) {
      for (auto* sums : {&p, &q_minus_v, &bottom, &undrawn}) sums->assign(v.p.size(), 0.0);
    }
    ++n;
    for (size_t a = 0; a < v.p.size(); ++a) {
      p[a] += v.p[a];
      q_minus_v[a] += v.q[a] - v.value;
      bottom[a] += v.bottom[a];
      undrawn[a] += v.undrawn[a];
    }
    taken_bottom += v.bottom[taken];
    taken_undrawn += v.undrawn[taken];
  }
  void Print(const char* what, const std::vector<std::string>& names) const {
    if (n == 0) {
      std::printf("  %s: none\n", what);
      return;
    }
    std::printf("  %s (%lld):\n", what, static_cast<long long>(n));
    std::printf("    %-34s", "policy's probability");
    for (size_t a = 0; a < p.size(); ++a) std::printf(" %s %.3f", names[a].c_str(), p[a] / n);
    std::printf("\n    %-34s", "one-step lookahead minus value");
    for (size_t a = 0; a < p.size(); ++a) {
      std::printf(" %s %+.3f", names[a].c_str(), q_minus_v[a] / n);
    }
    std::printf("\n    %-34s", "imagined chicken on the bottom row");
    for (size_t a = 0; a < p.size(); ++a) std::printf(" %s %.3f", names[a].c_str(), bottom[a] / n);
    std::printf(" (after the action taken: %.3f)", taken_bottom / n);
    std::printf("\n    %-34s", "imagined chicken not drawn");
    for (size_t a = 0; a < p.size(); ++a) std::printf(" %s %.3f", names[a].c_str(), undrawn[a] / n);
    std::printf(" (after the action taken: %.3f)\n", taken_undrawn / n);
  }
};

// The chicken's true cell at an observed step, decoded from the posterior's sample and its mode.
struct PosteriorStats {
  int64_t n = 0;
  double sample_value = 0, mode_value = 0, sure = 0;
  int64_t sample_drawn = 0, mode_drawn = 0;
  void Print(const char* what) const {
    if (n == 0) {
      std::printf("  %s: none\n", what);
      return;
    }
    std::printf(
        "  %-46s %6lld steps: sample %.3f (drawn %5.1f%%), mode %.3f (drawn %5.1f%%); groups' "
        "largest probability %.3f\n",
        what, static_cast<long long>(n), sample_value / n, 100.0 * sample_drawn / n, mode_value / n,
        100.0 * mode_drawn / n, sure / n);
  }
};

// Reads the posterior of the observation the policy just acted on (state: after Act) at the
// chicken's true cell (row, column 4); adds it to *stats.
void ReadPosterior(learner::DreamerAgent& agent, const envs::VectorEnv& env,
                   const dreamer::PolicyState& state, int row, PosteriorStats* stats) {
  torch::NoGradGuard no_grad;
  auto wm = agent.world_model();
  const dreamer::Observation obs =
      dreamer::WrapEnvObservations(env.spec(), 1, env.image(), env.vector(), env.text());
  const auto logit = wm->rssm()->PosteriorLogit(state.deter, wm->encoder()->forward(obs));
  const auto mode =
      torch::one_hot(logit.argmax(-1), logit.size(-1)).to(state.stoch.dtype());  // [1, S, C]
  auto feat = torch::cat({dreamer::RssmImpl::Feat(state.deter, state.stoch),
                          dreamer::RssmImpl::Feat(state.deter, mode)});
  // Predict decodes into the observation's own space under either learner.vector_loss.
  const auto grid =
      wm->Predict(feat.unsqueeze(1), /*decode_observations=*/true).vector.reshape({2, -1});
  const int64_t cell = (row * kSide + kColumn) * kChannels;
  const double sample = grid[0][cell].item<double>(), from_mode = grid[1][cell].item<double>();
  ++stats->n;
  stats->sample_value += sample;
  stats->mode_value += from_mode;
  stats->sample_drawn += sample >= 0.5 ? 1 : 0;
  stats->mode_drawn += from_mode >= 0.5 ? 1 : 0;
  stats->sure += logit.exp().amax(-1).mean().item<double>();
}

// The share of `test` rows a softmax regression fitted on `train` (features standardised by the
// training set's statistics, 300 full-batch Adam steps from zero weights, L2 weight 0.01: weaker
// fits the two fitted episodes' 640 features to 100% and scores lower) gets right; and the same
// on its own training set.
std::pair<double, double> RowReadout(const torch::Tensor& x_train, const torch::Tensor& y_train,
                                     const torch::Tensor& x_test, const torch::Tensor& y_test) {
  const auto mean = x_train.mean(0);
  const auto spread = x_train.std(0).clamp_min(1e-4);
  const auto train = (x_train - mean) / spread, test = (x_test - mean) / spread;
  auto w = torch::zeros({train.size(1), kSide}, torch::requires_grad());
  auto b = torch::zeros({kSide}, torch::requires_grad());
  torch::optim::Adam opt({w, b}, torch::optim::AdamOptions(0.05));
  for (int i = 0; i < 300; ++i) {
    opt.zero_grad();
    auto loss =
        torch::nn::functional::cross_entropy(train.mm(w) + b, y_train) + 1e-2 * w.pow(2).sum();
    loss.backward();
    opt.step();
  }
  torch::NoGradGuard no_grad;
  auto right = [&](const torch::Tensor& x, const torch::Tensor& y) {
    return (x.mm(w) + b).argmax(1).eq(y).to(torch::kFloat).mean().item<double>();
  };
  return {right(test, y_test), right(train, y_train)};
}

int Main(int argc, char** argv) {
  int64_t episodes = 4, seed = 5;
  bool greedy = false;
  services::CommandLine command_line(
      "bench_freeway_probe [--run RUN_DIR | --checkpoint DIR --config FILE] [flags]",
      "What a trained MinAtar Freeway agent (symbolic view) makes of the cars: its hits by row and "
      "action, its critic's value by the chicken's row, and before each hit the policy, a one-step "
      "lookahead per action and whether the world model foresees the chicken sent back; and how "
      "the decoder draws the chicken from each observed step's posterior, sampled and its mode, "
      "and how well a linear read-out finds its row in the latent.");
  learner::AgentFlags agent_flags;
  agent_flags.Register(&command_line);
  command_line.AddInt("episodes", &episodes, "agent episodes to play (2,501 steps each)");
  command_line.AddBool("greedy", &greedy, "the policy's most likely action (false: sample)");
  command_line.AddInt("seed", &seed, "seed of the episodes, the policy's and the model's samples");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (episodes < 1 || episodes > 1000 || seed < 0) {
    std::cerr << "bench_freeway_probe: need 1 <= --episodes <= 1000 and --seed >= 0\n";
    return 2;
  }
  std::optional<learner::ResolvedAgent> resolved =
      learner::ResolveAgentOrExit(command_line, agent_flags, "bench_freeway_probe", &exit_code);
  if (!resolved) return exit_code;
  if (resolved->config.env.name != "minatar_freeway" || resolved->config.env.view != "symbolic") {
    std::cerr << "bench_freeway_probe: the agent was trained on env " << resolved->config.env.name
              << " with view " << resolved->config.env.view
              << "; the probe reads the board of minatar_freeway with view symbolic\n";
    return 2;
  }
  torch::manual_seed(static_cast<uint64_t>(seed));  // the model's samples (global generator)
  auto loaded = learner::LoadAgent(resolved->config, resolved->checkpoint_dir,
                                   static_cast<uint64_t>(seed), 1 << 22);
  if (!loaded.ok()) {
    std::cerr << "bench_freeway_probe: " << loaded.status() << "\n";
    return 1;
  }
  envs::VectorEnv& env = *loaded->envs;
  learner::DreamerAgent& agent = *loaded->agent;
  const std::vector<std::string>& names = env.spec().action_names;
  if (agent.config().vector_balance) {
    std::cerr << "bench_freeway_probe: note: this agent was trained with learner.vector_balance, "
                 "whose decoder paints unsure objects at 0.5 or more; the 'drawn' counts below "
                 "read its values as they are (dreamfleet report foresight maps them back to "
                 "probabilities)\n";
  }
  if (env.spec().vector_size != kSide * kSide * kChannels) {
    std::cerr << "bench_freeway_probe: the observation has " << env.spec().vector_size
              << " entries, not Freeway's 10x10x7\n";
    return 1;
  }
  dreamer::Policy policy = agent.policy();
  torch::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  if (auto s = env.Reset(); !s.ok()) {
    std::cerr << "bench_freeway_probe: " << s << "\n";
    return 1;
  }
  dreamer::PolicyState state = policy->Initial(1);
  std::vector<int> action;
  std::vector<int64_t> taken(names.size(), 0), hits_after(names.size(), 0);
  std::vector<int64_t> hits_by_row(kSide, 0), steps_by_row(kSide, 0);
  std::vector<double> value_by_row(kSide, 0), return_by_row(kSide, 0);
  const double gamma = 1.0 - 1.0 / agent.config().horizon;
  std::vector<int> episode_rows;       // this episode's chicken row per step (-1: none)
  std::vector<float> episode_rewards;  // the reward that followed each step
  ViewStats before_hit, elsewhere;
  PosteriorStats row_changed, row_kept;
  int last_row = -1;  // the chicken's row at the step before (-1: none, or a new episode)
  // The latent the policy acted on at each observed step with the chicken on the board, its row
  // and its episode (for the linear read-out).
  std::vector<torch::Tensor> readout_deter, readout_stoch;
  std::vector<int64_t> readout_row, readout_episode;
  int64_t done = 0, steps = 0, crossings = 0, hits = 0, ambiguous = 0;
  double total = 0, episode_return = 0;
  const auto down = std::find(names.begin(), names.end(), "down");
  const int down_action = down == names.end() ? -1 : static_cast<int>(down - names.begin());
  int previous_action = -1;
  while (done < episodes) {
    const int row = ChickenRow(env.vector());
    if (auto s = dreamer::ActOnEnvs(policy, env, &state, generator, &action, greedy); !s.ok()) {
      std::cerr << "bench_freeway_probe: " << s << "\n";
      return 1;
    }
    ++taken[action[0]];
    if (row >= 0) {
      ReadPosterior(agent, env, state, row, row != last_row ? &row_changed : &row_kept);
      // Copies outside inference mode: the regression differentiates through them.
      torch::NoGradGuard no_grad;
      readout_deter.push_back(state.deter.reshape({-1}).clone());
      readout_stoch.push_back(state.stoch.reshape({-1}).clone());
      readout_row.push_back(row);
      readout_episode.push_back(done);
    }
    last_row = row;
    // The lookahead only where it is read: the chicken above the bottom row.
    const View view = Inspect(agent, state, row >= 0 && row < kBottom);
    if (row >= 0) {
      value_by_row[row] += view.value;
      ++steps_by_row[row];
    }
    if (auto s = env.Step(action); !s.ok()) {
      std::cerr << "bench_freeway_probe: " << s << "\n";
      return 1;
    }
    ++steps;
    const float reward = env.reward()[0];
    episode_rows.push_back(row);
    episode_rewards.push_back(reward);
    total += reward;
    episode_return += reward;
    crossings += reward > 0 ? 1 : 0;
    const bool stepped_down =
        row == kBottom - 1 && (action[0] == down_action || previous_action == down_action);
    previous_action = action[0];
    if (row >= 0 && row < kBottom && stepped_down) {
      ++ambiguous;
    } else if (row >= 0 && row < kBottom) {
      const bool hit = reward == 0 && ChickenRow(env.vector()) == kBottom;
      if (hit) {
        ++hits;
        ++hits_by_row[row];
        ++hits_after[action[0]];
        before_hit.Add(view, action[0]);
      } else {
        elsewhere.Add(view, action[0]);
      }
    }
    if (env.is_last()[0] != 0) {
      // The discounted return after each step, back from the episode's end (a real termination
      // in Freeway, so nothing follows it).
      double g = 0;
      for (size_t t = episode_rows.size(); t-- > 0;) {
        g = episode_rewards[t] + gamma * g;
        if (episode_rows[t] >= 0) return_by_row[episode_rows[t]] += g;
      }
      episode_rows.clear();
      episode_rewards.clear();
      ++done;
      std::printf("episode %lld: return %.0f, %lld hits so far\n", static_cast<long long>(done),
                  episode_return, static_cast<long long>(hits));
      std::fflush(stdout);
      episode_return = 0;
      previous_action = -1;
      last_row = -1;
      state = policy->Initial(1);
      if (auto s = env.Step(std::vector<int>(1, 0)); !s.ok()) {  // auto-reset
        std::cerr << "bench_freeway_probe: " << s << "\n";
        return 1;
      }
    }
  }
  std::printf(
      "agent (%s, %s): mean return %.2f over %lld episodes, %lld steps; %lld crossings, "
      "%lld hits (%lld steps down from row 8 left out)\n",
      resolved->checkpoint_dir.c_str(), greedy ? "greedy" : "sampled", total / done,
      static_cast<long long>(done), static_cast<long long>(steps),
      static_cast<long long>(crossings), static_cast<long long>(hits),
      static_cast<long long>(ambiguous));
  std::printf("actions chosen (hits after them):");
  for (size_t a = 0; a < names.size(); ++a) {
    std::printf(" %s %lld (%lld)", names[a].c_str(), static_cast<long long>(taken[a]),
                static_cast<long long>(hits_after[a]));
  }
  std::printf(
      "\nby the chicken's row (0 top, 9 bottom): steps, hits from there, the critic's mean value "
      "and the mean discounted return that followed (discount %.4f)\n",
      gamma);
  for (int y = 0; y < kSide; ++y) {
    if (steps_by_row[y] == 0) continue;
    std::printf("  row %d: %6lld steps, %4lld hits from there, value %.3f, return %.3f\n", y,
                static_cast<long long>(steps_by_row[y]), static_cast<long long>(hits_by_row[y]),
                value_by_row[y] / steps_by_row[y], return_by_row[y] / steps_by_row[y]);
  }
  std::printf("the actor, the critic and the world model (one step, %lld samples):\n",
              static_cast<long long>(kSamples));
  before_hit.Print("the steps just before a hit", names);
  elsewhere.Print("the other steps with the chicken above the bottom row", names);
  std::printf(
      "the chicken's true cell decoded from the posterior at the observed step (0.5 or more: "
      "drawn), from the sampled latent the policy acted on and from the posterior's mode:\n");
  row_changed.Print("steps where its row just changed (or began)");
  row_kept.Print("steps where it stayed on its row");
  if (done < 2) {
    std::printf("the row read linearly from the latent: needs --episodes 2 or more\n");
    return 0;
  }
  // Fitted on the first half of the episodes, scored on the rest.
  const auto rows = torch::tensor(readout_row, torch::kLong);
  const auto in_train = torch::tensor(readout_episode, torch::kLong).lt(done / 2);
  const auto in_test = in_train.logical_not();
  const auto deter = torch::stack(readout_deter), stoch = torch::stack(readout_stoch);
  const auto y_train = rows.index({in_train}), y_test = rows.index({in_test});
  const auto counts = torch::bincount(y_test, {}, kSide);
  std::printf(
      "the chicken's row read linearly from the latent the policy acted on (softmax regression "
      "fitted on episodes 1-%lld, %lld steps; scored on the other %lld steps, where the most "
      "common row is %.1f%% of them): right on the scored steps (on the fitted ones)\n",
      static_cast<long long>(done / 2), static_cast<long long>(y_train.size(0)),
      static_cast<long long>(y_test.size(0)),
      100.0 * counts.max().item<double>() / std::max<int64_t>(1, y_test.size(0)));
  const std::pair<const char*, torch::Tensor> parts[] = {
      {"deterministic and stochastic", torch::cat({deter, stoch}, 1)},
      {"deterministic only", deter},
      {"stochastic only", stoch}};
  for (const auto& [name, x] : parts) {
    const auto [test, train] = RowReadout(x.index({in_train}), y_train, x.index({in_test}), y_test);
    std::printf("  %-30s %5.1f%% (%5.1f%%)\n", name, 100.0 * test, 100.0 * train);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dreamfleet::services::EnsureThreadEnvironment(argc, argv);
  return Main(argc, argv);
}
