#include "learner/openloop.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "dreamer/policy.h"
#include "dreamer/world_model.h"
#include "envs/cell_renderer.h"
#include "learner/agent_source.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {
namespace {

// Report envs take env indices no training, evaluation or play env uses.
constexpr int kReportEnvIndex = 1 << 22;
constexpr int kGap = 2;  // pixels between panels and between rows
constexpr int kBar = 3;  // height of the "observing" bar under each row

// Distinct colours for the channels of a grid observation.
constexpr uint8_t kChannelColors[][3] = {
    {230, 230, 230}, {60, 200, 75},  {255, 225, 25}, {0, 130, 200},  {245, 130, 48},
    {145, 30, 180},  {70, 240, 240}, {240, 50, 230}, {210, 245, 60}, {250, 190, 212},
    {0, 128, 128},   {230, 25, 75},  {170, 110, 40}, {128, 0, 0},    {255, 250, 200}};
constexpr int kNumChannelColors = sizeof(kChannelColors) / sizeof(kChannelColors[0]);

// How a vector observation is drawn: `side` x `side` cells of `cell` pixels; with `channels` > 0
// each cell holds that many entries (channel-last), else one.
struct VectorLayout {
  int side = 0;
  int cell = 0;
  int channels = 0;  // 0: one grey entry per cell
  float lo = 0, hi = 1;
};

VectorLayout LayoutFor(int64_t size, int grid_channels, float lo, float hi) {
  VectorLayout layout;
  layout.channels = grid_channels > 0 && size % grid_channels == 0 ? grid_channels : 0;
  const int64_t cells = layout.channels > 0 ? size / layout.channels : size;
  layout.side = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(cells))));
  layout.cell = std::max(4, 80 / std::max(1, layout.side));
  layout.lo = lo;
  layout.hi = hi > lo ? hi : lo + 1.0f;
  return layout;
}

// Draws vector `v` into `out` (RGB). Grid cells mix their channels' colours, each weighted by its
// value; plain entries are grey. Values map from [lo, hi] to [0, 1]; a difference (`difference`)
// maps from [0, hi - lo] and is drawn grey (the largest of a cell's channels).
void DrawVector(const float* v, int64_t size, const VectorLayout& layout, bool difference,
                uint8_t* out) {
  const int width = layout.side * layout.cell;
  const float range = layout.hi - layout.lo;
  const int per_cell = layout.channels > 0 ? layout.channels : 1;
  for (int64_t cell = 0; cell < int64_t{layout.side} * layout.side; ++cell) {
    float rgb[3] = {0, 0, 0};
    for (int ch = 0; ch < per_cell; ++ch) {
      const int64_t i = cell * per_cell + ch;
      if (i >= size) break;
      const float value =
          std::clamp(difference ? v[i] / range : (v[i] - layout.lo) / range, 0.0f, 1.0f);
      for (int k = 0; k < 3; ++k) {
        const float color =
            difference || layout.channels == 0 ? 255.0f : kChannelColors[ch % kNumChannelColors][k];
        rgb[k] = std::max(rgb[k], value * color);
      }
    }
    const int64_t row = cell / layout.side, col = cell % layout.side;
    for (int y = 0; y < layout.cell; ++y) {
      for (int x = 0; x < layout.cell; ++x) {
        uint8_t* pixel = out + ((row * layout.cell + y) * width + col * layout.cell + x) * 3;
        for (int k = 0; k < 3; ++k) pixel[k] = static_cast<uint8_t>(std::lround(rgb[k]));
      }
    }
  }
}

}  // namespace

int OpenLoopReport::AnimationHeight() const {
  return static_cast<int>(sequences) * (height + kBar + kGap) - kGap;
}

int OpenLoopReport::AnimationWidth() const { return 3 * width + 2 * kGap; }

std::vector<uint8_t> OpenLoopReport::Animation() const {
  const int frame_h = AnimationHeight(), frame_w = AnimationWidth();
  const size_t frame_bytes = static_cast<size_t>(frame_h) * frame_w * 3;
  std::vector<uint8_t> out(frame_bytes * length, 0);
  for (int64_t t = 0; t < length; ++t) {
    uint8_t* frame = out.data() + t * frame_bytes;
    for (int64_t s = 0; s < sequences; ++s) {
      const int top = static_cast<int>(s) * (height + kBar + kGap);
      for (int panel = 0; panel < 3; ++panel) {
        const uint8_t* src = this->panel(s, panel, t);
        const int left = panel * (width + kGap);
        for (int y = 0; y < height; ++y) {
          std::copy_n(src + static_cast<size_t>(y) * width * 3, width * 3,
                      frame + (static_cast<size_t>(top + y) * frame_w + left) * 3);
        }
      }
      if (t < context) {
        for (int y = top + height; y < top + height + kBar - 1; ++y) {
          std::fill_n(frame + static_cast<size_t>(y) * frame_w * 3, frame_w * 3, 255);
        }
      }
    }
  }
  return out;
}

namespace {

absl::Status CheckOptions(const OpenLoopOptions& options) {
  if (options.sequences < 1 || options.sequences > 64 || options.context < 1 ||
      options.length <= options.context || options.length > 1000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "need 1 <= sequences <= 64 and 1 <= context < length <= 1000; got sequences ",
        options.sequences, ", context ", options.context, ", length ", options.length));
  }
  return absl::OkStatus();
}

absl::StatusOr<OpenLoopReport> Report(const services::Config& config, envs::VectorEnv& envs,
                                      DreamerAgent& agent, const OpenLoopOptions& options) {
  const dreamer::AgentConfig& c = agent.config();
  const bool image = c.image_channels > 0;
  const bool vector = !image && c.vector_size > 0;
  if (!image && !vector) {
    return absl::UnimplementedError(
        absl::StrCat("the model of ", config.env.name,
                     " has neither an image nor a vector observation to show"));
  }

  // Play the windows.
  const int64_t s_count = options.sequences, t_count = options.length;
  const int64_t image_bytes = int64_t{c.image_height} * c.image_width * c.image_channels;
  std::vector<uint8_t> images(image ? s_count * t_count * image_bytes : 0);
  std::vector<float> vectors(c.vector_size > 0 ? s_count * t_count * c.vector_size : 0);
  std::vector<int64_t> texts(c.text_length > 0 ? s_count * t_count * c.text_length : 0);
  std::vector<int64_t> actions(s_count * t_count);
  std::vector<float> rewards(s_count * t_count);
  std::vector<uint8_t> firsts(s_count * t_count);
  dreamer::Policy policy = agent.policy();
  torch::Generator generator = at::detail::createCPUGenerator(options.seed);
  std::vector<int> action;
  for (int64_t s = 0; s < s_count; ++s) {
    RETURN_IF_ERROR(envs.Reset());
    dreamer::PolicyState state = policy->Initial(1);
    for (int64_t t = 0; t < t_count; ++t) {
      const int64_t i = s * t_count + t;
      if (image) std::copy_n(envs.image(), image_bytes, images.data() + i * image_bytes);
      if (!vectors.empty()) {
        std::copy_n(envs.vector(), c.vector_size, vectors.data() + i * c.vector_size);
      }
      if (!texts.empty()) {
        std::copy_n(envs.text(), c.text_length, texts.data() + i * c.text_length);
      }
      rewards[i] = envs.reward()[0];
      firsts[i] = envs.is_first()[0];
      RETURN_IF_ERROR(dreamer::ActOnEnvs(policy, envs, &state, generator, &action, options.greedy));
      actions[i] = action[0];
      RETURN_IF_ERROR(envs.Step(action));
    }
  }

  // Predict.
  dreamer::Batch batch;
  const torch::Device device = agent.device();
  if (image) {
    batch.image = torch::from_blob(
        images.data(), {s_count, t_count, c.image_height, c.image_width, c.image_channels},
        torch::kUInt8);
  }
  if (!vectors.empty()) {
    batch.vector =
        torch::from_blob(vectors.data(), {s_count, t_count, c.vector_size}, torch::kFloat32);
  }
  if (!texts.empty()) {
    batch.text = torch::from_blob(texts.data(), {s_count, t_count, c.text_length}, torch::kInt64);
  }
  batch.action = torch::from_blob(actions.data(), {s_count, t_count}, torch::kInt64);
  batch.reward = torch::from_blob(rewards.data(), {s_count, t_count}, torch::kFloat32);
  batch.is_first =
      torch::from_blob(firsts.data(), {s_count, t_count}, torch::kUInt8).to(torch::kBool);
  batch = batch.To(device);
  // A CPU generator drives the latent samples only of a model on the CPU.
  std::optional<torch::Generator> latent_generator;
  if (device.is_cpu()) latent_generator = at::detail::createCPUGenerator(options.seed + 1);
  dreamer::OpenLoopPrediction predicted =
      agent.world_model()->OpenLoop(batch, options.context, latent_generator);

  OpenLoopReport report;
  report.sequences = s_count;
  report.length = t_count;
  report.context = options.context;
  report.step_mse.assign(t_count, 0.0);
  torch::Tensor truth, guess;  // float [S, T, entries], in the units the error is measured in
  if (image) {
    report.observation = "image";
    truth =
        batch.image.to(torch::kCPU).to(torch::kFloat32).div(255.0).reshape({s_count, t_count, -1});
    guess = predicted.image.to(torch::kCPU)
                .to(torch::kFloat32)
                .div(255.0)
                .reshape({s_count, t_count, -1});
  } else {
    report.observation = "vector";
    truth = batch.vector.to(torch::kCPU);
    guess = predicted.vector.to(torch::kCPU).to(torch::kFloat32);
    // A balanced likelihood's decoder paints unsure objects at 0.5 or more: show probabilities.
    if (c.vector_balance) {
      guess = dreamer::UnbalancedProbability(
          guess, dreamer::BalancedChannelWeight(truth, c.vector_grid_channels));
    }
  }
  const torch::Tensor step_mse = (guess - truth).square().mean(std::vector<int64_t>{0, 2});  // [T]
  for (int64_t t = 0; t < t_count; ++t) report.step_mse[t] = step_mse[t].item<double>();
  report.observed_mse = step_mse.narrow(0, 0, options.context).mean().item<double>();
  report.imagined_mse =
      step_mse.narrow(0, options.context, t_count - options.context).mean().item<double>();
  const torch::Tensor imagined_truth = truth.narrow(1, options.context, t_count - options.context);
  report.hold_mse =
      (imagined_truth - truth.narrow(1, options.context - 1, 1)).square().mean().item<double>();
  const torch::Tensor true_reward =
      batch.reward.to(torch::kCPU).narrow(1, options.context, t_count - options.context);
  const torch::Tensor reward_guess =
      predicted.reward.to(torch::kCPU).narrow(1, options.context, t_count - options.context);
  report.imagined_reward_mae = (reward_guess - true_reward).abs().mean().item<double>();
  report.imagined_reward_sum = true_reward.sum().item<double>();

  // Panels.
  const torch::Tensor truth_c = truth.contiguous(), guess_c = guess.contiguous();
  VectorLayout layout;
  if (image) {
    report.height = c.image_height;
    report.width = c.image_width;
  } else {
    layout = LayoutFor(c.vector_size, envs.spec().vector_grid_channels, truth_c.min().item<float>(),
                       truth_c.max().item<float>());
    report.height = report.width = layout.side * layout.cell;
  }
  const size_t panel_bytes = static_cast<size_t>(report.height) * report.width * 3;
  report.panels.assign(panel_bytes * 3 * s_count * t_count, 0);
  const int64_t entries = truth_c.size(2);
  std::vector<float> difference(entries);
  std::vector<uint8_t> rgb;
  for (int64_t s = 0; s < s_count; ++s) {
    for (int64_t t = 0; t < t_count; ++t) {
      const float* true_row = truth_c.data_ptr<float>() + (s * t_count + t) * entries;
      const float* guess_row = guess_c.data_ptr<float>() + (s * t_count + t) * entries;
      for (int64_t e = 0; e < entries; ++e) {
        difference[e] = std::abs(guess_row[e] - true_row[e]);
      }
      const float* rows[3] = {true_row, guess_row, difference.data()};
      for (int r = 0; r < 3; ++r) {
        uint8_t* out = report.panels.data() + report.panel_offset(s, r, t);
        if (image) {
          std::vector<uint8_t> bytes(entries);
          for (int64_t e = 0; e < entries; ++e) {
            bytes[e] = static_cast<uint8_t>(std::lround(std::clamp(rows[r][e], 0.0f, 1.0f) * 255));
          }
          envs::ImageToRgb(bytes.data(), c.image_height, c.image_width, c.image_channels, &rgb);
          std::copy(rgb.begin(), rgb.end(), out);
        } else {
          DrawVector(rows[r], entries, layout, /*difference=*/r == 2, out);
        }
      }
    }
  }
  return report;
}

absl::StatusOr<OpenLoopReport> GuardedReport(const services::Config& config, envs::VectorEnv& envs,
                                             DreamerAgent& agent, const OpenLoopOptions& options) {
  try {
    return Report(config, envs, agent, options);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("the open-loop report failed: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<OpenLoopReport> OpenLoop(const services::Config& config,
                                        const OpenLoopOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  ASSIGN_OR_RETURN(LoadedAgent loaded,
                   LoadAgent(config, options.checkpoint_dir, options.seed, kReportEnvIndex));
  return GuardedReport(config, *loaded.envs, *loaded.agent, options);
}

absl::StatusOr<OpenLoopReport> OpenLoop(const services::Config& config, DreamerAgent& agent,
                                        const OpenLoopOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  ASSIGN_OR_RETURN(std::unique_ptr<envs::VectorEnv> envs,
                   MakeAgentEnv(config, options.seed, kReportEnvIndex));
  // A trainer calls this mid-run: a LibTorch error becomes a status, never an exception.
  return GuardedReport(config, *envs, agent, options);
}

}  // namespace dreamfleet::learner
