// `dreamfleet plot` on real run directories: one run, a task directory of seeds, and the errors.
#include "deploy/plot_command.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/learning_curve.h"
#include "tests/test_process.h"

namespace dreamfleet::deploy {
namespace {

using ::testing::HasSubstr;

int Plot(std::vector<std::string> args, std::string* out, std::string* err) {
  args.insert(args.begin(), "plot");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  std::ostringstream o, e;
  const int code = RunPlot(static_cast<int>(argv.size()), argv.data(), o, e);
  *out = o.str();
  *err = e.str();
  return code;
}

void WriteRun(const std::string& dir, double slope, const std::string& metric = "") {
  std::filesystem::create_directories(dir);
  absl::StatusOr<services::CurveWriter> writer =
      services::CurveWriter::Open(dir + "/progress.csv", {{"random policy", 0.4}}, metric);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (int i = 1; i <= 10; ++i) {
    services::CurveRow row;
    row.env_steps = i * 1000;
    row.mean_return = slope * i;
    row.success = 0.1 * i;
    ASSERT_TRUE(writer->Append(row).ok());
  }
}

TEST(PlotCommandTest, DrawsOneRunOrEverySeedOfATask) {
  dreamfleet::testing::ScopedTempDir temp("plot_command_test_");
  const std::string task = temp.path() + "/minatar_breakout";
  WriteRun(task + "/seed0", 1.0);
  WriteRun(task + "/seed1", 0.5);
  std::string out, err;
  ASSERT_EQ(Plot({task + "/seed0"}, &out, &err), 0) << err;
  EXPECT_TRUE(std::filesystem::file_size(task + "/seed0/curve.png") > 1000);
  EXPECT_THAT(out, HasSubstr("(1 run, mean return)"));

  ASSERT_EQ(Plot({task, "--metric=success", "--out=" + temp.path() + "/all.png"}, &out, &err), 0)
      << err;
  EXPECT_THAT(out, HasSubstr("(2 runs, success rate)"));
  EXPECT_TRUE(std::filesystem::exists(temp.path() + "/all.png"));
}

TEST(PlotCommandTest, DrawsTheMetricTheLevelsAreOfAndLevelsOnlyBesideIt) {
  dreamfleet::testing::ScopedTempDir temp("plot_command_test_");
  const std::string run = temp.path() + "/grid_doorkey_8x8";
  WriteRun(run, 0.1, "success");
  std::string out, err;
  ASSERT_EQ(Plot({run}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("(1 run, success rate)"));
  EXPECT_EQ(err, "");
  // Returns asked for: the success-rate levels would sit on the wrong scale, so they are left out.
  ASSERT_EQ(Plot({run, "--metric=return"}, &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("(1 run, mean return)"));
  EXPECT_THAT(err, HasSubstr("levels (random policy, target) are of its success, not drawn"));
}

TEST(PlotCommandTest, SaysWhatIsWrong) {
  dreamfleet::testing::ScopedTempDir temp("plot_command_test_");
  std::string out, err;
  EXPECT_EQ(Plot({}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("expected one RUN_DIR"));
  EXPECT_EQ(Plot({temp.path(), "--metric=fun"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--metric must be return or success"));
  EXPECT_EQ(Plot({temp.path() + "/nowhere"}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("is not a directory"));
  EXPECT_EQ(Plot({temp.path()}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("no progress.csv"));
  std::ofstream(temp.path() + "/progress.csv") << "steps,return\n";
  EXPECT_EQ(Plot({temp.path()}, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr("env_steps and mean_return"));
}

}  // namespace
}  // namespace dreamfleet::deploy
