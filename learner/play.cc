#include "learner/play.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "dreamer/policy.h"
#include "envs/cell_renderer.h"
#include "envs/vector_env.h"
#include "learner/agent_source.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {
namespace {

// Played envs take env indices no training or evaluation env uses.
constexpr int kPlayEnvIndex = 1 << 21;

// Appends the current picture of env 0 of `envs` to *result (counts it as dropped past
// `max_frames`).
absl::Status AppendFrame(envs::VectorEnv& envs, int64_t max_frames, PlayResult* result) {
  const envs::EnvSpec& spec = envs.spec();
  if (result->height > 0 && result->frame_count() >= max_frames) {
    ++result->frames_dropped;
    return absl::OkStatus();
  }
  std::vector<uint8_t> rgb;
  int height = 0, width = 0;
  if (spec.image_bytes() > 0 && (spec.image_channels == 3 || spec.image_channels == 1)) {
    height = spec.image_height;
    width = spec.image_width;
    envs::ImageToRgb(envs.image(), height, width, spec.image_channels, &rgb);
  } else {
    RETURN_IF_ERROR(envs.env(0)->RenderRgb(&rgb, &height, &width));
  }
  if (result->height == 0) {
    result->height = height;
    result->width = width;
  } else if (height != result->height || width != result->width) {
    return absl::InternalError(absl::StrCat("env ", spec.name, " changed its picture size from ",
                                            result->height, "x", result->width, " to ", height, "x",
                                            width));
  }
  result->frames.insert(result->frames.end(), rgb.begin(), rgb.end());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PlayResult> Play(const services::Config& config, const PlayOptions& options) {
  if (options.episodes < 1 || options.max_steps < 1 || options.max_frames < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("need episodes >= 1, max steps >= 1 and max frames >= 1; got ",
                     options.episodes, ", ", options.max_steps, " and ", options.max_frames));
  }
  ASSIGN_OR_RETURN(LoadedAgent loaded,
                   LoadAgent(config, options.checkpoint_dir, options.seed, kPlayEnvIndex));
  envs::VectorEnv* envs = loaded.envs.get();
  DreamerAgent* agent = loaded.agent.get();
  dreamer::Policy policy = agent->policy();
  torch::Generator generator = at::detail::createCPUGenerator(options.seed);
  PlayResult result;
  result.action_names = envs->spec().action_names;
  RETURN_IF_ERROR(envs->Reset());
  for (int64_t episode = 0; episode < options.episodes; ++episode) {
    // Each episode starts on an is_first observation: after the previous one ended, the step that
    // auto-resets the env (its action is ignored); after one was cut, a Reset.
    if (episode > 0 && result.episodes.back().cut) {
      RETURN_IF_ERROR(envs->Reset());
    } else if (episode > 0) {
      RETURN_IF_ERROR(envs->Step(std::vector<int>(1, 0)));
    }
    dreamer::PolicyState state = policy->Initial(1);
    PlayedEpisode played;
    played.action_counts.assign(envs->spec().num_actions, 0);
    RETURN_IF_ERROR(AppendFrame(*envs, options.max_frames, &result));
    std::vector<int> action;
    bool ended = false;
    while (!ended && played.length < options.max_steps) {
      RETURN_IF_ERROR(
          dreamer::ActOnEnvs(policy, *envs, &state, generator, &action, options.greedy));
      RETURN_IF_ERROR(envs->Step(action));
      if (action[0] < 0 || action[0] >= static_cast<int>(played.action_counts.size())) {
        return absl::InternalError(absl::StrCat("the policy chose action ", action[0], " of ",
                                                played.action_counts.size()));
      }
      ++played.action_counts[action[0]];
      ++played.length;
      played.episode_return += envs->reward()[0];
      played.success |= envs->success()[0] != 0;
      ended = envs->is_last()[0] != 0;
      RETURN_IF_ERROR(AppendFrame(*envs, options.max_frames, &result));
    }
    played.cut = !ended;
    result.episodes.push_back(played);
  }
  return result;
}

}  // namespace dreamfleet::learner
