#include "learner/foresight.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dreamer/policy.h"
#include "dreamer/world_model.h"
#include "learner/agent_source.h"
#include "learner/dreamer_agent.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {
namespace {

constexpr int kForesightEnvIndex = (1 << 22) + 1;  // no training env, nor the open-loop report's

absl::Status CheckOptions(const ForesightOptions& o) {
  if (o.episodes < 1 || o.episodes > 1000 || o.context < 0 || o.context > 1000 || o.horizon < 1 ||
      o.horizon > 100 || o.max_steps < 1 || o.max_steps > 100000 || o.chunk_steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("need 1 <= episodes <= 1000, 0 <= context <= 1000, 1 <= horizon <= 100 and "
                     "1 <= max steps <= 100000 and chunk steps >= 1; got episodes ",
                     o.episodes, ", context ", o.context, ", horizon ", o.horizon, ", max steps ",
                     o.max_steps, ", chunk steps ", o.chunk_steps));
  }
  return absl::OkStatus();
}

// Every step the policy played, episode after episode: observation, the action taken in it (0 at
// an episode's last step), the reward on arriving in it and its flags.
struct Played {
  std::vector<uint8_t> images;
  std::vector<float> vectors;
  std::vector<int64_t> texts;
  std::vector<int64_t> actions;
  std::vector<float> rewards;
  std::vector<uint8_t> firsts, terminals;
  std::vector<std::pair<int64_t, int64_t>> episodes;  // [first step, last step]
  int64_t steps() const { return static_cast<int64_t>(actions.size()); }
};

absl::StatusOr<Played> Play(envs::VectorEnv& envs, DreamerAgent& agent, const ForesightOptions& o,
                            ForesightReport* report) {
  const dreamer::AgentConfig& c = agent.config();
  const int64_t image_bytes = int64_t{c.image_height} * c.image_width * c.image_channels;
  Played p;
  dreamer::Policy policy = agent.policy();
  torch::Generator generator = at::detail::createCPUGenerator(o.seed);
  std::vector<int> action;
  double total_return = 0;
  for (int64_t e = 0; e < o.episodes; ++e) {
    RETURN_IF_ERROR(envs.Reset());
    dreamer::PolicyState state = policy->Initial(1);
    const int64_t first = p.steps();
    ForesightEpisode played;
    for (int64_t t = 0;; ++t) {
      if (c.image_channels > 0) {
        p.images.insert(p.images.end(), envs.image(), envs.image() + image_bytes);
      }
      if (c.vector_size > 0) {
        p.vectors.insert(p.vectors.end(), envs.vector(), envs.vector() + c.vector_size);
      }
      if (c.text_length > 0) {
        p.texts.insert(p.texts.end(), envs.text(), envs.text() + c.text_length);
      }
      p.rewards.push_back(envs.reward()[0]);
      p.firsts.push_back(envs.is_first()[0]);
      p.terminals.push_back(envs.is_terminal()[0]);
      if (t > 0) played.episode_return += envs.reward()[0];
      if (envs.is_last()[0] || t == o.max_steps) {
        p.actions.push_back(0);
        played.length = t;
        played.terminal = envs.is_terminal()[0] != 0;
        report->ends += played.terminal ? 1 : 0;
        total_return += played.episode_return;
        report->played.push_back(played);
        break;
      }
      RETURN_IF_ERROR(dreamer::ActOnEnvs(policy, envs, &state, generator, &action, o.greedy));
      p.actions.push_back(action[0]);
      RETURN_IF_ERROR(envs.Step(action));
    }
    p.episodes.emplace_back(first, p.steps() - 1);
  }
  report->episodes = o.episodes;
  report->steps = p.steps() - o.episodes;  // actions taken
  report->mean_return = total_return / static_cast<double>(o.episodes);
  return p;
}

absl::StatusOr<ForesightReport> Report(envs::VectorEnv& envs, DreamerAgent& agent,
                                       const ForesightOptions& o) {
  const dreamer::AgentConfig& c = agent.config();
  ForesightReport report;
  ASSIGN_OR_RETURN(Played p, Play(envs, agent, o, &report));
  const int64_t g = p.steps();
  const auto i64 = torch::TensorOptions(torch::kInt64);
  torch::Tensor images, vectors, texts;
  if (c.image_channels > 0) {
    images = torch::from_blob(p.images.data(), {g, c.image_height, c.image_width, c.image_channels},
                              torch::kUInt8);
  }
  if (c.vector_size > 0) vectors = torch::from_blob(p.vectors.data(), {g, c.vector_size});
  if (c.text_length > 0) texts = torch::from_blob(p.texts.data(), {g, c.text_length}, i64);
  const torch::Tensor actions = torch::from_blob(p.actions.data(), {g}, i64);
  const torch::Tensor rewards = torch::from_blob(p.rewards.data(), {g});
  const torch::Tensor firsts = torch::from_blob(p.firsts.data(), {g}, torch::kUInt8);

  const int64_t leads = o.horizon + 1;  // 0 (observed) .. horizon
  std::vector<double> end_at_ends(leads, 0), end_elsewhere(leads, 0);
  std::vector<double> reward_at_rewarded(leads, 0), true_at_rewarded(leads, 0),
      reward_elsewhere(leads, 0);
  std::vector<int64_t> ends(leads, 0), others(leads, 0), rewarded(leads, 0), unrewarded(leads, 0);
  // Grid cells per lead and channel: counts of occupied, kept, arrived, arrived kept, spurious.
  const int64_t channels = c.vector_size > 0 ? c.vector_grid_channels : 0;
  const bool grid = channels > 0 && c.vector_size % channels == 0;
  std::vector<std::array<int64_t, 5>> cells(grid ? leads * channels : 0, {0, 0, 0, 0, 0});
  std::vector<double> probability_sums(cells.size(), 0.0);  // decoded values at occupied cells
  // A balanced likelihood's decoder paints unsure objects at 0.5 or more: count what it draws in
  // probabilities, with the weights of the steps played here.
  const torch::Tensor balance_weight = grid && c.vector_balance
                                           ? dreamer::BalancedChannelWeight(vectors, channels)
                                           : torch::Tensor();

  // Scores predictions [n, columns]: row w was made from last observed step starts[w] of an
  // episode whose last step is lasts[w]; its lead k is column offset + k.
  auto score = [&](const dreamer::OpenLoopPrediction& predicted, const int64_t* starts,
                   const int64_t* lasts, int64_t n, int64_t offset) {
    const int64_t columns = predicted.cont.size(1);
    torch::Tensor imagined_grid, decoded;
    if (grid) {
      decoded = predicted.vector.to(torch::kCPU).to(torch::kFloat32);
      if (balance_weight.defined())
        decoded = dreamer::UnbalancedProbability(decoded, balance_weight);
      decoded = decoded.contiguous();
      imagined_grid = decoded.ge(0.5).to(torch::kUInt8).contiguous();
    }
    const uint8_t* gp = grid ? imagined_grid.data_ptr<uint8_t>() : nullptr;
    const float* dp = grid ? decoded.data_ptr<float>() : nullptr;
    const torch::Tensor cont = predicted.cont.to(torch::kCPU).to(torch::kFloat32).contiguous();
    const torch::Tensor reward = predicted.reward.to(torch::kCPU).to(torch::kFloat32).contiguous();
    const float* cp = cont.data_ptr<float>();
    const float* rp = reward.data_ptr<float>();
    for (int64_t w = 0; w < n; ++w) {
      const int64_t s = starts[w];
      // Lead 0 is the last observed step itself: the heads on the posterior.
      for (int64_t k = 0; k <= o.horizon && s + k <= lasts[w]; ++k) {
        const int64_t j = w * columns + offset + k;  // the prediction of step s + k
        if (grid) {
          const float* truth = p.vectors.data() + (s + k) * c.vector_size;
          const float* before = p.vectors.data() + s * c.vector_size;
          const uint8_t* imagined = gp + j * c.vector_size;
          const float* values = dp + j * c.vector_size;
          for (int64_t e = 0; e < c.vector_size; ++e) {
            std::array<int64_t, 5>& cell = cells[k * channels + e % channels];
            if (truth[e] >= 0.5f) {
              ++cell[0];
              cell[1] += imagined[e];
              probability_sums[k * channels + e % channels] += values[e];
              if (before[e] < 0.5f) {
                ++cell[2];
                cell[3] += imagined[e];
              }
            } else {
              cell[4] += imagined[e];
            }
          }
        }
        const double end_chance = 1.0 - cp[j];
        if (p.terminals[s + k]) {
          end_at_ends[k] += end_chance;
          ++ends[k];
        } else {
          end_elsewhere[k] += end_chance;
          ++others[k];
        }
        if (p.rewards[s + k] != 0) {
          reward_at_rewarded[k] += rp[j];
          true_at_rewarded[k] += p.rewards[s + k];
          ++rewarded[k];
        } else {
          reward_elsewhere[k] += rp[j];
          ++unrewarded[k];
        }
      }
    }
  };

  const torch::Device device = agent.device();
  std::optional<torch::Generator> latent_generator;
  if (device.is_cpu()) latent_generator = at::detail::createCPUGenerator(o.seed + 1);
  // The played steps `idx` (int64 [n * width]) as a batch of n windows of `width` steps.
  auto gather_batch = [&](const torch::Tensor& idx, int64_t n, int64_t width) {
    auto gather = [&](const torch::Tensor& all) {
      auto sizes = all.sizes().vec();
      sizes[0] = width;
      sizes.insert(sizes.begin(), n);
      return all.index_select(0, idx).view(sizes);
    };
    dreamer::Batch batch;
    if (images.defined()) batch.image = gather(images);
    if (vectors.defined()) batch.vector = gather(vectors);
    if (texts.defined()) batch.text = gather(texts);
    batch.action = gather(actions);
    batch.reward = gather(rewards);
    batch.is_first = gather(firsts).to(torch::kBool);
    return batch.To(device);
  };
  dreamer::WorldModel world_model = agent.world_model();

  if (o.context == 0) {
    // Each episode observed once, a chunk of steps at a time (each carrying on from the state
    // the one before left); from the posterior at each step, horizon imagined steps with the
    // actions taken next.
    const int64_t rows_per_chunk = std::max<int64_t>(1, o.chunk_steps / leads);
    for (const auto& [first, last] : p.episodes) {
      std::optional<dreamer::RssmState> state;
      for (int64_t begin = first; begin <= last; begin += rows_per_chunk) {
        const int64_t n = std::min(rows_per_chunk, last - begin + 1);
        const dreamer::RssmSequence seq = world_model->Posterior(
            gather_batch(torch::arange(begin, begin + n, i64), 1, n), n, latent_generator, state,
            state ? torch::full({1}, p.actions[begin - 1], i64).to(device) : torch::Tensor());
        state = seq.last;
        std::vector<int64_t> starts(n), lasts(n, last), taken(n * o.horizon);
        for (int64_t w = 0; w < n; ++w) {
          starts[w] = begin + w;
          for (int64_t h = 0; h < o.horizon; ++h) {
            taken[w * o.horizon + h] = p.actions[std::min(starts[w] + h, last)];
          }
        }
        const dreamer::Imagination imagined = world_model->ImagineActions(
            {seq.deter.select(0, 0), seq.stoch.select(0, 0)},
            torch::from_blob(taken.data(), {n, o.horizon}, i64).to(device), latent_generator);
        score(world_model->Predict(dreamer::RssmImpl::Feat(imagined.deter, imagined.stoch), grid),
              starts.data(), lasts.data(), n, /*offset=*/0);
      }
    }
  } else {
    // Windows: the last observed step s of each (every step of every episode), and the steps
    // [s - context + 1, s + horizon] (past the episode's last step, that step again: never
    // scored; before its first, that step again: each copy is_first and resets the model, so a
    // window near the start observes the episode from its start).
    const int64_t width = o.context + o.horizon;
    std::vector<int64_t> starts, firsts_of, lasts;
    for (const auto& [first, last] : p.episodes) {
      for (int64_t s = first; s <= last; ++s) {
        starts.push_back(s);
        firsts_of.push_back(first);
        lasts.push_back(last);
      }
    }
    const int64_t windows = static_cast<int64_t>(starts.size());
    const int64_t windows_per_chunk = std::max<int64_t>(1, o.chunk_steps / width);
    std::vector<int64_t> index;
    for (int64_t begin = 0; begin < windows; begin += windows_per_chunk) {
      const int64_t n = std::min(windows_per_chunk, windows - begin);
      index.clear();
      for (int64_t w = begin; w < begin + n; ++w) {
        for (int64_t j = 0; j < width; ++j) {
          index.push_back(std::clamp(starts[w] - o.context + 1 + j, firsts_of[w], lasts[w]));
        }
      }
      const dreamer::OpenLoopPrediction predicted = world_model->OpenLoop(
          gather_batch(torch::from_blob(index.data(), {n * width}, i64).clone(), n, width),
          o.context, latent_generator, /*decode_observations=*/grid);
      score(predicted, starts.data() + begin, lasts.data() + begin, n, o.context - 1);
    }
  }
  auto mean = [](double sum, int64_t count) { return count > 0 ? sum / count : 0.0; };
  for (int64_t k = 0; k < leads; ++k) {
    ForesightLead lead;
    lead.lead = k;
    lead.ends = ends[k];
    lead.others = others[k];
    lead.end_chance_at_ends = mean(end_at_ends[k], ends[k]);
    lead.end_chance_elsewhere = mean(end_elsewhere[k], others[k]);
    lead.rewarded = rewarded[k];
    lead.unrewarded = unrewarded[k];
    lead.reward_at_rewarded = mean(reward_at_rewarded[k], rewarded[k]);
    lead.true_reward_at_rewarded = mean(true_at_rewarded[k], rewarded[k]);
    lead.reward_elsewhere = mean(reward_elsewhere[k], unrewarded[k]);
    for (int64_t ch = 0; ch < (grid ? channels : 0); ++ch) {
      const std::array<int64_t, 5>& cell = cells[k * channels + ch];
      ForesightCells out;
      out.occupied = cell[0];
      out.kept = mean(static_cast<double>(cell[1]), cell[0]);
      out.probability = mean(probability_sums[k * channels + ch], cell[0]);
      out.arrived = cell[2];
      out.arrived_kept = mean(static_cast<double>(cell[3]), cell[2]);
      out.spurious_per_step = mean(static_cast<double>(cell[4]), ends[k] + others[k]);
      lead.cells.push_back(out);
    }
    report.leads.push_back(lead);
  }
  return report;
}

}  // namespace

absl::StatusOr<ForesightReport> Foresight(const services::Config& config,
                                          const ForesightOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  ASSIGN_OR_RETURN(LoadedAgent loaded,
                   LoadAgent(config, options.checkpoint_dir, options.seed, kForesightEnvIndex));
  try {
    return Report(*loaded.envs, *loaded.agent, options);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("the foresight report failed: ", e.what()));
  }
}

absl::StatusOr<ForesightReport> Foresight(const services::Config& config, DreamerAgent& agent,
                                          const ForesightOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  ASSIGN_OR_RETURN(std::unique_ptr<envs::VectorEnv> envs,
                   MakeAgentEnv(config, options.seed, kForesightEnvIndex));
  try {
    return Report(*envs, agent, options);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("the foresight report failed: ", e.what()));
  }
}

std::string ForesightLine(const ForesightReport& r, int64_t far) {
  if (r.leads.size() < 2) return "no imagined leads";
  const ForesightLead& a = r.leads[1];
  const ForesightLead& b = r.leads[std::min<int64_t>(far, r.leads.size() - 1)];
  return absl::StrFormat(
      "end chance at %d true ends (lead %d / %d) %.3f / %.3f, elsewhere %.3f / %.3f; imagined "
      "reward at %d true rewards %.3f / %.3f, elsewhere %.3f / %.3f",
      a.ends, a.lead, b.lead, a.end_chance_at_ends, b.end_chance_at_ends, a.end_chance_elsewhere,
      b.end_chance_elsewhere, a.rewarded, a.reward_at_rewarded, b.reward_at_rewarded,
      a.reward_elsewhere, b.reward_elsewhere);
}

std::string ForesightSummary(const ForesightReport& r) {
  std::string out = absl::StrFormat(
      "%d episodes, %d steps, %d ended by the game's rules, mean return %.3f\n"
      "lead | end chance at true ends (n) | elsewhere (n) | imagined reward at true rewards "
      "(true mean, n) | elsewhere\n",
      r.episodes, r.steps, r.ends, r.mean_return);
  for (const ForesightLead& l : r.leads) {
    absl::StrAppendFormat(&out, "%4d | %.3f (%d) | %.4f (%d) | %.3f (%.3f, %d) | %.4f\n", l.lead,
                          l.end_chance_at_ends, l.ends, l.end_chance_elsewhere, l.others,
                          l.reward_at_rewarded, l.true_reward_at_rewarded, l.rewarded,
                          l.reward_elsewhere);
  }
  if (r.leads.empty() || r.leads[0].cells.empty()) return out;
  absl::StrAppend(&out,
                  "imagined grid, per channel: occupied cells kept (n) | mean decoded value there "
                  "| cells that arrived since the last observed step kept (n) | spurious cells "
                  "per step\n");
  for (const ForesightLead& l : r.leads) {
    for (size_t ch = 0; ch < l.cells.size(); ++ch) {
      const ForesightCells& cell = l.cells[ch];
      absl::StrAppendFormat(&out, "lead %2d channel %2d | %.3f (%d) | %.3f | %.3f (%d) | %.3f\n",
                            l.lead, ch, cell.kept, cell.occupied, cell.probability,
                            cell.arrived_kept, cell.arrived, cell.spurious_per_step);
    }
  }
  return out;
}

}  // namespace dreamfleet::learner
