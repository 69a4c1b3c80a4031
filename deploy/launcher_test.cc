// `dreamfleet up --resume best` on real directories: the learner's checkpoints are moved aside
// (never deleted) and a copy of the best agent becomes the learner's latest checkpoint; bad uses
// are refused before any process starts.
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
void WriteCheckpointDir(const fs::path& dir, int n, const std::string& counters) {
  const std::string name = "ckpt-" + std::to_string(n);
  fs::create_directories(dir / name);
  std::ofstream(dir / name / "counters.txt") << counters;
  std::ofstream(dir / name / "module-world_model.pt") << "weights of " << counters;
  std::ofstream(dir / "latest") << name << "\n";
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ResumeFromBestTest, MakesACopyOfTheBestAgentTheLearnersLatestCheckpoint) {
  dreamfleet::testing::ScopedTempDir temp("resume_best_");
  const fs::path run = temp.path();
  WriteCheckpointDir(run / "best", 2, "env_steps 1216\nupdates 25\n");
  WriteCheckpointDir(run / "learner", 196, "updates 196\n");
  std::string moved_to;
  absl::StatusOr<std::string> copy = PrepareResumeFromBest(run.string(), &moved_to);
  ASSERT_TRUE(copy.ok()) << copy.status();
  // The copy is named by its update count, and `latest` names it.
  EXPECT_EQ(fs::path(*copy), run / "learner" / "ckpt-25");
  EXPECT_EQ(ReadFile(run / "learner" / "latest"), "ckpt-25\n");
  EXPECT_EQ(ReadFile(run / "learner" / "ckpt-25" / "module-world_model.pt"),
            "weights of env_steps 1216\nupdates 25\n");
  EXPECT_FALSE(fs::exists(run / "learner" / "ckpt-196"));
  // The old checkpoints are aside, whole; the best agent is untouched; no staging is left.
  EXPECT_THAT(fs::path(moved_to).filename().string(), HasSubstr("learner.before-best-"));
  EXPECT_EQ(ReadFile(fs::path(moved_to) / "ckpt-196" / "counters.txt"), "updates 196\n");
  EXPECT_EQ(ReadFile(fs::path(moved_to) / "latest"), "ckpt-196\n");
  EXPECT_EQ(ReadFile(run / "best" / "ckpt-2" / "counters.txt"), "env_steps 1216\nupdates 25\n");
  EXPECT_FALSE(fs::exists(run / "learner.from-best.tmp"));

  // Again within the same second: a second name, the first set aside untouched.
  std::string moved_again;
  ASSERT_TRUE(PrepareResumeFromBest(run.string(), &moved_again).ok());
  EXPECT_NE(moved_again, moved_to);
  EXPECT_TRUE(fs::exists(fs::path(moved_again) / "ckpt-25"));
  EXPECT_EQ(ReadFile(fs::path(moved_to) / "ckpt-196" / "counters.txt"), "updates 196\n");

  // No learner checkpoints yet: nothing moved, the copy made.
  fs::rename(run / "learner", run / "elsewhere");
  ASSERT_TRUE(PrepareResumeFromBest(run.string(), &moved_again).ok());
  EXPECT_EQ(moved_again, "");
  EXPECT_EQ(ReadFile(run / "learner" / "latest"), "ckpt-25\n");
}

TEST(ResumeFromBestTest, WithoutABestAgentItIsNotFoundAndChangesNothing) {
  dreamfleet::testing::ScopedTempDir temp("resume_best_none_");
  const fs::path run = temp.path();
  WriteCheckpointDir(run / "learner", 196, "updates 196\n");
  fs::create_directories(run / "best");  // evaluated never: the directory without an agent
  std::string moved_to = "stale";
  absl::StatusOr<std::string> copy = PrepareResumeFromBest(run.string(), &moved_to);
  ASSERT_TRUE(absl::IsNotFound(copy.status())) << copy.status();
  EXPECT_THAT(std::string(copy.status().message()), HasSubstr((run / "best").string()));
  EXPECT_THAT(std::string(copy.status().message()), HasSubstr("eval_every_updates"));
  EXPECT_EQ(moved_to, "");
  EXPECT_EQ(ReadFile(run / "learner" / "latest"), "ckpt-196\n");
  // `latest` naming a checkpoint that is not there is no best agent either.
  std::ofstream(run / "best" / "latest") << "ckpt-3\n";
  EXPECT_TRUE(absl::IsNotFound(PrepareResumeFromBest(run.string(), &moved_to).status()));
  EXPECT_EQ(ReadFile(run / "learner" / "latest"), "ckpt-196\n");
}

int Up(std::vector<std::string> args) {
  args.insert(args.begin(), "up");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return RunUp(static_cast<int>(argv.size()), argv.data());
}

TEST(ResumeFromBestTest, UpRefusesABadResumeOrAMissingBestAgentBeforeStartingAnything) {
  dreamfleet::testing::ScopedTempDir temp("resume_best_up_");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(Up({"--resume", "sideways"}), 2);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("--resume must be latest or best, got \"sideways\""));
  const std::string run_dir = temp.path() + "/run";
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(Up({"--set", "run.dir=" + run_dir, "--resume", "best"}), 2);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("error: --resume best: "));
  EXPECT_FALSE(fs::exists(run_dir + "/processes.txt")) << "processes were started";
}

}  // namespace
}  // namespace dreamfleet::deploy
