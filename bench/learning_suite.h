// The learning benchmark's suite (bench/learning_suite.yaml) and its summary: which tasks to
// train, on which config and overrides, for how many env steps and seeds, with the target and the
// published anchor each is judged against; and the Markdown table bench_learning prints from the
// progress CSVs the runs left on disk.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/learning_curve.h"

namespace dreamfleet::bench {

struct LearningTask {
  std::string name;
  std::string config;                  // path of a dreamfleet config, relative to the source tree
  std::vector<std::string> overrides;  // `--set` style section.key=value
  int64_t env_steps = 0;               // budget per seed
  std::vector<int64_t> seeds = {0};
  std::string metric = "return";  // return | success: what the target and the summary judge
  double target = 0;              // 0 = none
  // Rows whose episode window holds fewer episodes (the start of a run, after a resume without an
  // episode log) do not count as reaching the target. Long-episode games (Freeway: 2,500 steps)
  // need fewer than 100.
  int64_t min_episodes = 100;
  std::string anchor_label;       // a published reference level, drawn on the plot
  double anchor = 0;
  bool has_anchor = false;
  std::string notes;
};

// Parses the suite. INVALID_ARGUMENT naming the task and key for unknown keys, missing or
// out-of-range values, duplicate task names.
absl::StatusOr<std::vector<LearningTask>> ParseLearningSuite(const std::string& yaml,
                                                             const std::string& source);
absl::StatusOr<std::vector<LearningTask>> LoadLearningSuite(const std::string& path);

// The value of a row the task is judged on.
double Score(const LearningTask& task, const services::CurveRow& row);
// The evaluation column of the task's metric: "greedy_success" or "greedy_return".
std::string GreedyEvalName(const LearningTask& task);

struct SeedResult {
  int64_t seed = 0;
  services::Curve curve;  // as read from the run's progress CSV
};

struct TaskSummary {
  std::string task;
  int seeds = 0;           // seeds with at least one row
  int seeds_finished = 0;  // seeds whose last row reached the env-step budget
  double final_mean = 0;   // last row's score, over seeds
  double final_std = 0;            // sample standard deviation over seeds (0 with one seed)
  double final_min = 0;
  double final_max = 0;
  int seeds_at_target = 0;      // seeds whose score reached the target at some row
  double steps_to_target = -1;  // median over those seeds, -1 if none
  double seconds_to_target = -1;
  double wall_seconds = 0;  // mean over seeds of the last row's wall time
  int64_t env_steps = 0;    // mean over seeds of the last row's env steps
  int seeds_evaluated = 0;  // seeds whose last row holds an evaluation
  double final_greedy = 0;  // mean over those seeds of its greedy score (return or success)
};

TaskSummary Summarize(const LearningTask& task, const std::vector<SeedResult>& seeds);

// One Markdown table (a header and a row per task). `random` holds each task's random-policy
// score, in the order of `tasks` (NaN when not measured).
std::string SummaryMarkdown(const std::vector<LearningTask>& tasks,
                            const std::vector<TaskSummary>& summaries,
                            const std::vector<double>& random);

}  // namespace dreamfleet::bench
