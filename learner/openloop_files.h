// The open-loop report's files (learner/openloop.h): the animation as a GIF and the strip as a
// PNG, with the replay CLI's image encoders; and its errors as one line of text.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "learner/openloop.h"

namespace dreamfleet::learner {

// Writes `gif_path` and `png_path` (each frame of the GIF shows `frame_ms` milliseconds).
absl::Status WriteOpenLoopFiles(const OpenLoopReport& report, const std::string& gif_path,
                                const std::string& png_path, int frame_ms = 150);

// The report of `agent` now (OpenLoopOptions' defaults, env seed 1 every time so that reports
// compare) into <dir>/openloop.gif and <dir>/openloop.png, each replacing the last one whole
// (written beside as .tmp and renamed; removed again on failure). For trainers mid-run:
// bench_learning and the cluster learner at each evaluation. UNIMPLEMENTED when the model has
// nothing to show.
absl::StatusOr<OpenLoopReport> WriteRunOpenLoop(const services::Config& config, DreamerAgent& agent,
                                                const std::string& dir);

// "mean squared error per <unit>: observed steps X, imagined steps Y (repeating the last observed
// step: H); reward error Z over the imagined steps (true rewards sum to S)".
std::string OpenLoopSummary(const OpenLoopReport& report);

}  // namespace dreamfleet::learner
