// `dreamfleet up`: runs a whole cluster (replay shards, learner, actors) on this machine from one
// config, shows live progress, restarts crashed processes and stops everything on Ctrl-C or when
// --max-minutes / --until-success say so.
#pragma once

#include <string>

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

// `dreamfleet status`: queries a running cluster described by a config.
int RunStatus(int argc, char** argv);

}  // namespace dreamfleet::deploy
