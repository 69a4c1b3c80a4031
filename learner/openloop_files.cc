#include "learner/openloop_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "replay_server/image_export.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {
namespace {

absl::Status WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary);
  if (!(file << bytes) || !file.flush()) {
    return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteOpenLoopFiles(const OpenLoopReport& report, const std::string& gif_path,
                                const std::string& png_path, int frame_ms) {
  replay::Frames animation;
  animation.height = report.AnimationHeight();
  animation.width = report.AnimationWidth();
  animation.data = report.Animation();
  ASSIGN_OR_RETURN(std::string gif, replay::EncodeGif(animation, std::max(1, frame_ms / 10)));
  replay::Frames strip;
  strip.height = report.height;
  strip.width = report.width;
  strip.data = report.Strip();
  ASSIGN_OR_RETURN(std::string png, replay::EncodePngGrid(strip, static_cast<int>(report.length)));
  RETURN_IF_ERROR(WriteFile(gif_path, gif));
  return WriteFile(png_path, png);
}

absl::StatusOr<OpenLoopReport> WriteRunOpenLoop(const services::Config& config, DreamerAgent& agent,
                                                const std::string& dir) {
  OpenLoopOptions options;
  options.seed = 1;
  ASSIGN_OR_RETURN(OpenLoopReport report, OpenLoop(config, agent, options));
  const std::string base = dir + "/openloop";
  absl::Status written = WriteOpenLoopFiles(report, base + ".gif.tmp", base + ".png.tmp");
  std::error_code error;
  for (const char* ext : {".gif", ".png"}) {
    if (!written.ok()) break;
    std::filesystem::rename(base + ext + ".tmp", base + ext, error);
    if (error) {
      written = absl::InternalError(absl::StrCat("renaming ", base, ext, ": ", error.message()));
    }
  }
  if (!written.ok()) {
    for (const char* ext : {".gif.tmp", ".png.tmp"}) std::filesystem::remove(base + ext, error);
    return written;
  }
  return report;
}

std::string OpenLoopSummary(const OpenLoopReport& report) {
  return absl::StrFormat(
      "mean squared error per %s: observed steps %.5f, imagined steps %.5f (repeating the last "
      "observed step: %.5f); reward error %.4f over the imagined steps (true rewards sum to %.2f)",
      report.observation == "image" ? "pixel (in [0, 1])" : "vector entry", report.observed_mse,
      report.imagined_mse, report.hold_mse, report.imagined_reward_mae, report.imagined_reward_sum);
}

}  // namespace dreamfleet::learner
