// `dreamfleet up`: runs a whole cluster (replay shards, learner, actors) on this machine from one
// config, shows live progress, restarts crashed processes and stops everything on Ctrl-C or when
// --max-minutes / --until-success say so.
#pragma once

namespace dreamfleet::deploy {

// argv[0] is "up".
int RunUp(int argc, char** argv);

// `dreamfleet status`: queries a running cluster described by a config.
int RunStatus(int argc, char** argv);

}  // namespace dreamfleet::deploy
