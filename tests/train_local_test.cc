// The real dreamfleet-train-local binary: a run with --progress-csv writes a curve with the
// actor-critic statistics, a second run on the same checkpoint directory resumes and carries the
// curve on (env steps, wall seconds and episodes keep rising), `dreamfleet play` turns the
// checkpoint into a GIF, `dreamfleet report openloop` into an open-loop GIF and PNG, and a bad
// config key is refused.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/learning_curve.h"
#include "tests/test_process.h"

namespace dreamfleet {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> Argv(const std::string& dir, int steps) {
  return {testing::BinaryPath("dreamfleet-train-local"),
          "--set=learner.preset=debug",
          "--set=learner.batch_size=2",
          "--set=learner.batch_length=8",
          "--set=replay.sequence_length=8",
          "--set=replay.samples_per_insert=8",
          "--set=actor.count=1",
          "--set=actor.envs_per_actor=2",
          "--set=learner.threads=1",
          "--steps=" + std::to_string(steps),
          "--log-every=200",
          "--save-every=20",
          "--checkpoint-dir=" + dir + "/checkpoint",
          "--progress-csv=" + dir + "/progress.csv"};
}

int RunToExit(const std::vector<std::string>& argv, const std::string& stderr_path) {
  auto process = testing::TestProcess::Start(argv, stderr_path);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return -1;
  absl::StatusOr<int> code = (*process)->Wait(absl::Minutes(5));
  EXPECT_TRUE(code.ok()) << code.status();
  return code.ok() ? *code : -1;
}

TEST(TrainLocalTest, ProgressCsvCarriesOnAcrossAResume) {
  testing::ScopedTempDir dir("train_local_");
  ASSERT_TRUE(dir.made());
  const std::string log = dir.path() + "/stderr.log";
  ASSERT_EQ(RunToExit(Argv(dir.path(), 1200), log), 0) << testing::ReadFile(log);
  absl::StatusOr<services::Curve> first = services::ReadCurve(dir.path() + "/progress.csv");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->rows.size(), 6u);  // every 200 of 1200 env steps
  EXPECT_EQ(first->rows.back().env_steps, 1200);
  EXPECT_TRUE(first->rows.back().stats.count("entropy")) << "updates ran from step 1024 on";
  EXPECT_TRUE(first->rows.back().losses.count("dyn"));

  ASSERT_EQ(RunToExit(Argv(dir.path(), 1800), log), 0) << testing::ReadFile(log);
  absl::StatusOr<services::Curve> both = services::ReadCurve(dir.path() + "/progress.csv");
  ASSERT_TRUE(both.ok()) << both.status();
  ASSERT_GT(both->rows.size(), first->rows.size());
  EXPECT_EQ(both->rows.back().env_steps, 1800);
  for (size_t i = 1; i < both->rows.size(); ++i) {
    const services::CurveRow& a = both->rows[i - 1];
    const services::CurveRow& b = both->rows[i];
    EXPECT_GT(b.env_steps, a.env_steps) << "row " << i;
    EXPECT_GE(b.wall_seconds, a.wall_seconds) << "row " << i;
    EXPECT_GE(b.episodes, a.episodes) << "row " << i;
  }

  // `dreamfleet play` plays the checkpoint into a GIF (the same --set describes the run). A build
  // without the CLI (DREAMFLEET_BUILD_DEPLOY=OFF) skips this half; where the build has one, a
  // missing binary fails below.
#ifndef DREAMFLEET_TEST_HAS_CLI
  GTEST_SKIP() << "this build has no dreamfleet CLI";
#endif
  std::vector<std::string> play = {testing::BinaryPath("dreamfleet"), "play"};
  for (const std::string& arg : Argv(dir.path(), 0)) {
    if (arg.rfind("--set=", 0) == 0) play.push_back(arg);
  }
  const std::string gif = dir.path() + "/episode.gif";
  play.insert(play.end(), {"--checkpoint=" + dir.path() + "/checkpoint", "--episodes=2",
                           "--max-steps=5", "--out=" + gif});
  ASSERT_EQ(RunToExit(play, log), 0) << testing::ReadFile(log);
  EXPECT_EQ(testing::ReadFile(gif).substr(0, 6), "GIF89a");
  // `dreamfleet report openloop` writes the open-loop GIF and PNG strip and prints the errors.
  std::vector<std::string> report = {testing::BinaryPath("dreamfleet"), "report", "openloop"};
  for (const std::string& arg : Argv(dir.path(), 0)) {
    if (arg.rfind("--set=", 0) == 0) report.push_back(arg);
  }
  report.insert(report.end(), {"--checkpoint=" + dir.path() + "/checkpoint", "--sequences=2",
                               "--length=8", "--context=3", "--gif=" + dir.path() + "/ol.gif"});
  {
    auto process = testing::TestProcess::Start(report, log);
    ASSERT_TRUE(process.ok()) << process.status();
    absl::StatusOr<std::string> line = (*process)->WaitForLine("mean squared error");
    ASSERT_TRUE(line.ok()) << line.status() << "\n" << testing::ReadFile(log);
    EXPECT_THAT(*line, HasSubstr("imagined steps"));
    absl::StatusOr<int> code = (*process)->Wait(absl::Minutes(5));
    ASSERT_TRUE(code.ok()) << code.status();
    ASSERT_EQ(*code, 0) << testing::ReadFile(log);
  }
  EXPECT_EQ(testing::ReadFile(dir.path() + "/ol.gif").substr(0, 6), "GIF89a");
  EXPECT_EQ(testing::ReadFile(dir.path() + "/ol.png").substr(1, 3), "PNG");
  report.push_back("--context=8");  // nothing left to imagine
  ASSERT_EQ(RunToExit(report, log), 2);
  EXPECT_THAT(testing::ReadFile(log), HasSubstr("context < length"));

  // No such run: a usage error naming it.
  ASSERT_EQ(
      RunToExit({testing::BinaryPath("dreamfleet"), "play", "--run=" + dir.path() + "/nope"}, log),
      2);
  EXPECT_THAT(testing::ReadFile(log), HasSubstr("is not a directory"));
}

TEST(TrainLocalTest, AnUnknownConfigKeyIsRefusedByName) {
  testing::ScopedTempDir dir("train_local_");
  ASSERT_TRUE(dir.made());
  const std::string log = dir.path() + "/stderr.log";
  std::vector<std::string> argv = Argv(dir.path(), 100);
  argv.push_back("--set=learner.twohott=raw");
  EXPECT_EQ(RunToExit(argv, log), 2);
  EXPECT_THAT(testing::ReadFile(log), HasSubstr("twohott"));
}

}  // namespace
}  // namespace dreamfleet
