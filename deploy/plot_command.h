// `dreamfleet plot RUN_DIR`: draws the learning curve of a run directory as a PNG. It reads
// RUN_DIR/progress.csv, or every RUN_DIR/*/progress.csv (a bench_learning task directory with one
// run per seed), and draws each as one line of return (or success) against env steps, with the
// reference levels the CSV carries (random policy, anchor, target).
#pragma once

#include <ostream>

namespace dreamfleet::deploy {

// argv[0] is "plot". Exit code: 0 written, 1 nothing to plot or cannot write, 2 bad flags.
int RunPlot(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace dreamfleet::deploy
