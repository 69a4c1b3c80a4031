// `dreamfleet up`: runs a whole cluster (replay shards, learner, actors) on this machine from one
// config, shows live progress, restarts crashed processes and stops everything on Ctrl-C or when
// --max-minutes / --until-success say so.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace dreamfleet::deploy {

// The directory of the running dreamfleet binary, where its sibling binaries (dreamfleet-learner,
// dreamfleet-play, ...) live; "build/bin" when /proc/self/exe cannot be read.
std::string BinDir();

// `dreamfleet play`: runs dreamfleet-play from BinDir() with argv[1..] (argv[0] is "play");
// returns only when it cannot be started.
int RunPlay(int argc, char** argv);
// `dreamfleet report`: runs dreamfleet-report from BinDir() with argv[1..] (argv[0] is "report").
int RunReport(int argc, char** argv);

// argv[0] is "up".
int RunUp(int argc, char** argv);

// `dreamfleet up --resume best`: makes the agent of the best evaluation the learner's latest
// checkpoint. Copies <run_dir>/best's checkpoint into a new <run_dir>/learner (as
// ckpt-<its update count>, with `latest` naming it) after moving the learner's own checkpoints
// aside to <run_dir>/learner.before-best-<YYYYmmdd-HHMMSS> (nothing is deleted). The learner then
// resumes from it as from any checkpoint, and so does every restart after. Returns the copy's
// path; `*moved_to` gets where the old checkpoints went ("" = there were none). NOT_FOUND (naming
// the directory) when there is no best agent; FAILED_PRECONDITION when a copy or move fails
// (before the move, nothing has changed).
absl::StatusOr<std::string> PrepareResumeFromBest(const std::string& run_dir,
                                                  std::string* moved_to);

// `dreamfleet status`: queries a running cluster described by a config.
int RunStatus(int argc, char** argv);

}  // namespace dreamfleet::deploy
