// `dreamfleet up --resume best` on real directories: the learner's checkpoints are moved aside
// (never deleted) and the best agent's directory is handed to the learner; bad uses are refused
// before any process starts.
#include "deploy/launcher.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_process.h"

namespace dreamfleet::deploy {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The layout the learner's BestAgent and checkpoints write: ckpt-<n>/ and `latest` naming it.
void WriteCheckpointDir(const fs::path& dir, const std::string& marker) {
  fs::create_directories(dir / "ckpt-0");
  std::ofstream(dir / "ckpt-0" / "counters.txt") << marker << "\n";
  std::ofstream(dir / "latest") << "ckpt-0\n";
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ResumeFromBestTest, MovesTheLearnersCheckpointsAsideAndNamesTheBestAgent) {
  dreamfleet::testing::ScopedTempDir temp("resume_best_");
  const fs::path run = temp.path();
  WriteCheckpointDir(run / "best", "best");
  WriteCheckpointDir(run / "learner", "latest");
  std::string moved_to;
  absl::StatusOr<std::string> best = PrepareResumeFromBest(run.string(), &moved_to);
  ASSERT_TRUE(best.ok()) << best.status();
  EXPECT_EQ(fs::path(*best), fs::absolute(run / "best").lexically_normal());
  EXPECT_TRUE(fs::path(*best).is_absolute());
  EXPECT_FALSE(fs::exists(run / "learner"));
  EXPECT_THAT(fs::path(moved_to).filename().string(), HasSubstr("learner.before-best-"));
  EXPECT_EQ(ReadFile(fs::path(moved_to) / "ckpt-0" / "counters.txt"), "latest\n");
  EXPECT_EQ(ReadFile(run / "best" / "ckpt-0" / "counters.txt"), "best\n");

  // Again within the same second (the learner wrote new checkpoints meanwhile): a second name,
  // the first copy untouched.
  WriteCheckpointDir(run / "learner", "later");
  std::string moved_again;
  ASSERT_TRUE(PrepareResumeFromBest(run.string(), &moved_again).ok());
  EXPECT_NE(moved_again, moved_to);
  EXPECT_EQ(ReadFile(fs::path(moved_again) / "ckpt-0" / "counters.txt"), "later\n");
  EXPECT_EQ(ReadFile(fs::path(moved_to) / "ckpt-0" / "counters.txt"), "latest\n");

  // Nothing to move: nothing moved.
  ASSERT_TRUE(PrepareResumeFromBest(run.string(), &moved_again).ok());
  EXPECT_EQ(moved_again, "");
}

TEST(ResumeFromBestTest, WithoutABestAgentItIsNotFoundAndMovesNothing) {
  dreamfleet::testing::ScopedTempDir temp("resume_best_none_");
  const fs::path run = temp.path();
  WriteCheckpointDir(run / "learner", "latest");
  fs::create_directories(run / "best");  // evaluated never: the directory without an agent
  std::string moved_to = "stale";
  absl::StatusOr<std::string> best = PrepareResumeFromBest(run.string(), &moved_to);
  ASSERT_TRUE(absl::IsNotFound(best.status())) << best.status();
  EXPECT_THAT(std::string(best.status().message()), HasSubstr((run / "best").string()));
  EXPECT_THAT(std::string(best.status().message()), HasSubstr("eval_every_updates"));
  EXPECT_EQ(moved_to, "");
  EXPECT_TRUE(fs::exists(run / "learner" / "latest"));
}

int Up(std::vector<std::string> args) {
  args.insert(args.begin(), "up");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return RunUp(static_cast<int>(argv.size()), argv.data());
}

TEST(ResumeFromBestTest, UpRefusesABadResumeOrAMissingBestAgentBeforeStartingAnything) {
  dreamfleet::testing::ScopedTempDir temp("resume_best_up_");
  EXPECT_EQ(Up({"--resume", "sideways"}), 2);
  const std::string run_dir = temp.path() + "/run";
  EXPECT_EQ(Up({"--set", "run.dir=" + run_dir, "--resume", "best"}), 2);
  EXPECT_FALSE(fs::exists(run_dir + "/processes.txt")) << "processes were started";
}

}  // namespace
}  // namespace dreamfleet::deploy
