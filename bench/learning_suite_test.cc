// The suite parser rejects what it cannot run, naming the task and key; the summary reads the
// final score, its spread and the steps to the target off the progress curves.
#include "bench/learning_suite.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/config.h"

namespace dreamfleet::bench {
namespace {

using ::testing::HasSubstr;

TEST(LearningSuiteTest, ParsesTasksWithDefaults) {
  absl::StatusOr<std::vector<LearningTask>> tasks = ParseLearningSuite(R"(
tasks:
  - name: breakout
    config: configs/minatar_breakout.yaml
    set: [learner.twohot=raw, env.view=symbolic]
    env_steps: 200000
    seeds: [0, 1]
    target: 10
    anchor: 10
    anchor_label: MinAtar DQN, 5M frames
  - name: grid
    config: configs/default.yaml
    env_steps: 30000
    metric: success
)",
                                                                       "suite.yaml");
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  ASSERT_EQ(tasks->size(), 2u);
  const LearningTask& b = (*tasks)[0];
  EXPECT_EQ(b.name, "breakout");
  EXPECT_EQ(b.overrides, (std::vector<std::string>{"learner.twohot=raw", "env.view=symbolic"}));
  EXPECT_EQ(b.env_steps, 200000);
  EXPECT_EQ(b.seeds, (std::vector<int64_t>{0, 1}));
  EXPECT_TRUE(b.has_anchor);
  EXPECT_EQ(b.anchor_label, "MinAtar DQN, 5M frames");
  const LearningTask& g = (*tasks)[1];
  EXPECT_EQ(g.seeds, (std::vector<int64_t>{0}));
  EXPECT_EQ(g.metric, "success");
  EXPECT_FALSE(g.has_anchor);
}

// The suite we ship parses, and every task's config loads with the task's overrides.
TEST(LearningSuiteTest, TheShippedSuiteAndItsConfigsLoad) {
  const char* source_dir = std::getenv("DREAMFLEET_SOURCE_DIR");
  ASSERT_NE(source_dir, nullptr);
  const std::string root = source_dir;
  absl::StatusOr<std::vector<LearningTask>> tasks =
      LoadLearningSuite(root + "/bench/learning_suite.yaml");
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  EXPECT_GE(tasks->size(), 6u);
  for (const LearningTask& task : *tasks) {
    absl::StatusOr<services::Config> config =
        services::LoadConfig(root + "/" + task.config, task.overrides);
    EXPECT_TRUE(config.ok()) << task.name << ": " << config.status();
    EXPECT_GT(task.env_steps, 0) << task.name;
  }
}

TEST(LearningSuiteTest, RejectsWhatItCannotRunNamingTaskAndKey) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  for (const Case& c : std::vector<Case>{
           {"tasks: []\nextra: 1\n", "unknown top-level key `extra`"},
           {"tasks:\n  - name: a\n    config: c\n    env_steps: 5\n    stpes: 3\n",
            "task a: unknown key `stpes`"},
           {"tasks:\n  - config: c\n    env_steps: 5\n", "needs a `name`"},
           {"tasks:\n  - name: a\n    env_steps: 5\n", "task a: needs a `config`"},
           {"tasks:\n  - name: a\n    config: c\n", "task a: needs `env_steps`"},
           {"tasks:\n  - name: a\n    config: c\n    env_steps: many\n", "task a: bad value"},
           {"tasks:\n  - name: a\n    config: c\n    env_steps: 5\n    metric: fun\n",
            "metric must be return or success, got fun"},
           {"tasks:\n  - name: a\n    config: c\n    env_steps: 5\n    seeds: [-1]\n",
            "seed -1 is negative"},
           {"tasks:\n  - {name: a, config: c, env_steps: 5}\n  - {name: a, config: c, env_steps: "
            "5}\n",
            "task a: duplicate task name"},
           {"nothing: here\n", "needs a top-level `tasks:` list"},
           {"tasks:\n  - {name: ../up, config: c, env_steps: 5}\n", "may only hold letters"},
           {"tasks:\n  - {name: a, config: c, env_steps: 5, seeds: [1, 1]}\n",
            "seed 1 is listed twice"},
           {"tasks:\n  - {name: a, config: c, env_steps: 5, min_episodes: 0}\n",
            "min_episodes must be >= 1"},
           {"tasks: []\n[1]: 2\n", "unknown top-level key `(not a name)`"},
           {"tasks: [\n", "not YAML"},
       }) {
    absl::StatusOr<std::vector<LearningTask>> tasks = ParseLearningSuite(c.yaml, "s.yaml");
    ASSERT_FALSE(tasks.ok()) << c.yaml;
    EXPECT_TRUE(absl::IsInvalidArgument(tasks.status())) << tasks.status();
    EXPECT_THAT(tasks.status().message(), HasSubstr(c.expected)) << c.yaml;
    EXPECT_THAT(tasks.status().message(), HasSubstr("s.yaml")) << c.yaml;
  }
  EXPECT_TRUE(absl::IsNotFound(LoadLearningSuite("/nonexistent/suite.yaml").status()));
}

services::Curve Rising(double slope, int64_t rows) {
  services::Curve curve;
  for (int64_t i = 1; i <= rows; ++i) {
    services::CurveRow row;
    row.env_steps = i * 1000;
    row.wall_seconds = i * 60.0;
    row.mean_return = slope * i;
    row.success = std::min(1.0, 0.1 * i);
    curve.rows.push_back(row);
  }
  return curve;
}

TEST(LearningSuiteTest, SummaryReadsFinalScoreSpreadAndStepsToTarget) {
  LearningTask task;
  task.name = "t";
  task.env_steps = 10000;
  task.target = 5;
  // Seed 0 reaches 5 at row 5 (5k steps), seed 1 at row 10 (10k), seed 2 never (max 2.5).
  std::vector<SeedResult> seeds = {
      {0, Rising(1.0, 10)}, {1, Rising(0.5, 10)}, {2, Rising(0.25, 10)}, {3, {}}};
  TaskSummary s = Summarize(task, seeds);
  EXPECT_EQ(s.seeds, 3);
  EXPECT_EQ(s.seeds_finished, 3);
  EXPECT_DOUBLE_EQ(s.final_mean, (10 + 5 + 2.5) / 3);
  EXPECT_DOUBLE_EQ(s.final_min, 2.5);
  EXPECT_DOUBLE_EQ(s.final_max, 10);
  EXPECT_NEAR(s.final_std,
              std::sqrt(((10 - 17.5 / 3) * (10 - 17.5 / 3) + (5 - 17.5 / 3) * (5 - 17.5 / 3) +
                         (2.5 - 17.5 / 3) * (2.5 - 17.5 / 3)) /
                        2),
              1e-12);
  EXPECT_EQ(s.seeds_at_target, 2);
  EXPECT_DOUBLE_EQ(s.steps_to_target, 7500);  // median of 5k and 10k
  EXPECT_DOUBLE_EQ(s.seconds_to_target, 450);
  EXPECT_EQ(s.env_steps, 10000);

  task.metric = "success";
  task.target = 0.9;
  s = Summarize(task, seeds);
  EXPECT_DOUBLE_EQ(s.final_mean, 1.0);
  EXPECT_EQ(s.seeds_at_target, 3);
  EXPECT_DOUBLE_EQ(s.steps_to_target, 9000);

  EXPECT_EQ(s.seeds_evaluated, 0);
  const std::string table = SummaryMarkdown({task}, {s}, {0.25});
  EXPECT_THAT(table, HasSubstr("| t | success | 3 (3 finished) | 0.25 | 1 ± 0 (1–1) | — | 0.9 | "
                               "3/3 | 9k | 9 min | 10k | 10 min |"));
  EXPECT_THAT(
      SummaryMarkdown({task}, {Summarize(task, {})}, {NAN}),
      HasSubstr("| t | success | 0 (0 finished) | — | — | — | 0.9 | 0/0 | — | — | — | — |"));

  // The greedy evaluation in each seed's last row, averaged over the seeds that have one.
  seeds[0].curve.rows.back().eval = {{"greedy_success", 1.0}, {"greedy_return", 7}};
  seeds[1].curve.rows.back().eval = {{"greedy_success", 0.5}, {"greedy_return", 3}};
  s = Summarize(task, seeds);
  EXPECT_EQ(s.seeds_evaluated, 2);
  EXPECT_DOUBLE_EQ(s.final_greedy, 0.75);
  EXPECT_THAT(SummaryMarkdown({task}, {s}, {0.25}), HasSubstr("| 1 ± 0 (1–1) | 0.75 | 0.9 |"));
  task.metric = "return";
  EXPECT_DOUBLE_EQ(Summarize(task, seeds).final_greedy, 5);
  task.metric = "success";

  // Rows whose window holds too few episodes do not count as reaching the target.
  task.min_episodes = 50;
  std::vector<SeedResult> young = {{0, Rising(1.0, 10)}};
  for (services::CurveRow& row : young[0].curve.rows) row.window_episodes = row.env_steps / 200;
  s = Summarize(task, young);  // success 0.9 at 9k steps, but 50 episodes only from 10k
  EXPECT_EQ(s.seeds_at_target, 1);
  EXPECT_DOUBLE_EQ(s.steps_to_target, 10000);
}

}  // namespace
}  // namespace dreamfleet::bench
