// Learning curves on disk: the progress CSV a training run appends to (one row per progress
// report: env steps, updates, wall time, the return and success rate of recent episodes, the
// latest losses) and a PNG plot of one or more such curves drawn with cairo, with horizontal
// reference levels (the random policy, a published anchor, the target).
//
// The CSV's header names its columns, so readers find them by name; lines starting with '#' carry
// reference levels as "# level <label> = <value>", which `dreamfleet plot` draws as lines, and
// which metric they are levels of as "# metric return|success" (the metric it plots by default).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dreamfleet::services {

struct CurveRow {
  int64_t env_steps = 0;
  int64_t updates = 0;
  double wall_seconds = 0;
  int64_t episodes = 0;
  double mean_return = 0;  // over the run's episode window (100 in bench_learning)
  double success = 0;      // fraction of those episodes that succeeded
  // Episodes the return and success are over (the window fills up at the start, and again after
  // a resume of a run without an episode log); -1 when the CSV does not say.
  int64_t window_episodes = -1;
  // Latest losses by name (rec, rew, con, dyn, rep, policy, value, repval, disag = the
  // disagreement ensemble's loss with learner.disagreement_scale); missing ones are
  // written empty and read back absent.
  std::map<std::string, double> losses;
  // Latest actor-critic statistics by name (entropy = the policy's mean entropy in nats on
  // imagined states, ret = the mean imagined lambda-return, retnorm_scale = the return
  // normaliser's scale, explored_beat_value = the share of held random actions that beat the
  // critic's value (imagination_explore), reinforce_grad_norm / dynamics_grad_norm = the norms of
  // the actor's gradient from its REINFORCE and entropy terms and from the dynamics objective
  // (actor_grad_dynamics), disag = the mean ensemble disagreement on imagined steps
  // (disagreement_scale)); written as "ac_<name>", missing ones empty.
  std::map<std::string, double> stats;
  // The latest evaluation by name (env_steps = the training env steps it ran at, greedy_return,
  // greedy_success, sampled_return, sampled_success); written as "eval_<name>", all empty
  // before the first one (a row repeats the latest evaluation until the next).
  std::map<std::string, double> eval;
};

// The loss columns every progress CSV has, in order (as "loss_<name>").
const std::vector<std::string>& CurveLossNames();

// The actor-critic statistic columns every progress CSV has, in order (as "ac_<name>").
const std::vector<std::string>& CurveStatNames();
// The evaluation columns every progress CSV has, in order (as "eval_<name>").
const std::vector<std::string>& CurveEvalNames();

// The curve's losses from an update's losses as the agent names them: rec = the decoder losses
// (image + vector + text), the others by name; absent ones stay absent.
std::map<std::string, double> CurveLosses(const std::map<std::string, double>& agent_losses);

struct CurveLevel {
  std::string label;  // e.g. "random policy", "target"
  double value = 0;
};

struct Curve {
  // What the levels are levels of ("return" or "success"; "" in files written before the CSV
  // said so): `dreamfleet plot` draws this metric by default, and the levels only beside it.
  std::string metric;
  std::vector<CurveLevel> levels;
  std::vector<CurveRow> rows;
};

// Appends to a progress CSV, writing the header (and the levels) when the file is new or empty.
// Each row is flushed, so a killed run keeps every row it reported.
class CurveWriter {
 public:
  // Opens `path` for appending; `metric` (the levels' metric: "return" or "success"), `levels`
  // and the header are written only into a new file. Rows appended to an existing file follow its
  // header's columns (ones this version does not know stay empty); a file whose header has no
  // env_steps column is INVALID_ARGUMENT.
  static absl::StatusOr<CurveWriter> Open(const std::string& path,
                                          const std::vector<CurveLevel>& levels = {},
                                          const std::string& metric = "");
  absl::Status Append(const CurveRow& row);
  const std::string& path() const { return path_; }

 private:
  CurveWriter(std::string path, std::vector<std::string> columns)
      : path_(std::move(path)), columns_(std::move(columns)) {}
  std::string path_;
  std::vector<std::string> columns_;
};

// Reads a progress CSV. NOT_FOUND when the file is missing; INVALID_ARGUMENT naming the file and
// line when the header lacks env_steps or mean_return or a row does not parse.
absl::StatusOr<Curve> ReadCurve(const std::string& path);

// Keeps the rows at or below `env_steps` (a resumed run continues from its checkpoint's step) and
// rewrites the file. A missing file is not an error; a file without an env_steps header is
// INVALID_ARGUMENT (and left as it is).
absl::Status TruncateCurve(const std::string& path, int64_t env_steps);

// Where a resumed run's curve carries on: its counters restart from the checkpoint, so its wall
// seconds and episodes continue from the last row kept.
struct CurveOffsets {
  double wall_seconds = 0;
  int64_t episodes = 0;
  CurveRow Apply(CurveRow row) const {
    row.wall_seconds += wall_seconds;
    row.episodes += episodes;
    return row;
  }
};

// TruncateCurve(path, env_steps), then the offsets of the last row kept (zeros without one).
absl::StatusOr<CurveOffsets> ResumeCurve(const std::string& path, int64_t env_steps);

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), x increasing
  bool markers = false;  // a dot on every point too (sparse series such as evaluations)
};

struct PlotOptions {
  std::string title;
  std::string x_label = "env steps";
  std::string y_label = "mean return (last 100 episodes)";
  std::vector<CurveLevel> levels;  // dashed horizontal lines, labelled
  int width = 900;
  int height = 540;
};

// Draws the series and levels as a PNG at `path`. INVALID_ARGUMENT when there is nothing to draw
// (no series with points), INTERNAL naming the path when cairo cannot write it.
absl::Status PlotPng(const std::vector<PlotSeries>& series, const PlotOptions& options,
                     const std::string& path);

// Return against env steps of one curve, one series.
PlotSeries ReturnSeries(const Curve& curve, const std::string& label);
// Evaluation `name` (e.g. "greedy_return") against the env steps each evaluation ran at, one
// point per evaluation; no points when the curve has none.
PlotSeries EvalSeries(const Curve& curve, const std::string& name, const std::string& label);

}  // namespace dreamfleet::services
