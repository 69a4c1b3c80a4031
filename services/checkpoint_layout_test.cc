#include "services/checkpoint_layout.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::services {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A fresh directory with the given checkpoint directories (each with a counters.txt) in it.
fs::path CheckpointDirWith(const std::string& name, std::initializer_list<int64_t> steps) {
  const fs::path dir = fs::path(::testing::TempDir()) / name;
  fs::remove_all(dir);
  for (int64_t step : steps) {
    fs::create_directories(dir / CheckpointName(step));
    std::ofstream(dir / CheckpointName(step) / kCheckpointCountersFile)
        << "updates " << step << "\n";
  }
  fs::create_directories(dir);
  return dir;
}

TEST(CheckpointLayoutTest, LatestIsWhatTheLatestFileNamesElseTheHighestCompleteStep) {
  const fs::path dir = CheckpointDirWith("layout_latest", {5, 40, 300});
  fs::create_directories(dir / "ckpt-900.tmp");  // being written: never the latest
  absl::StatusOr<std::string> latest = LatestCheckpointDir(dir.string());
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, (dir / "ckpt-300").string());
  ASSERT_TRUE(PointLatestAt(dir.string(), "ckpt-40").ok());
  latest = LatestCheckpointDir(dir.string());
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, (dir / "ckpt-40").string());
  std::ofstream(dir / kCheckpointLatestFile) << "";  // emptied
  EXPECT_TRUE(absl::IsDataLoss(LatestCheckpointDir(dir.string()).status()));
  std::ofstream(dir / kCheckpointLatestFile) << "ckpt-4x\n";
  absl::StatusOr<std::string> broken = LatestCheckpointDir(dir.string());
  EXPECT_TRUE(absl::IsDataLoss(broken.status())) << broken.status();
  EXPECT_THAT(std::string(broken.status().message()), HasSubstr("ckpt-4x"));
  EXPECT_TRUE(absl::IsNotFound(LatestCheckpointDir((dir / "absent").string()).status()));
  EXPECT_TRUE(absl::IsNotFound(
      LatestCheckpointDir(CheckpointDirWith("layout_none", {}).string()).status()));
}

TEST(CheckpointLayoutTest, CountersAreNameValueLinesAndAMalformedOneNamesTheFile) {
  const fs::path dir = CheckpointDirWith("layout_counters", {7});
  absl::StatusOr<std::map<std::string, int64_t>> counters =
      ReadCheckpointCounters((dir / "ckpt-7").string());
  ASSERT_TRUE(counters.ok()) << counters.status();
  EXPECT_EQ(*counters, (std::map<std::string, int64_t>{{"updates", 7}}));
  absl::StatusOr<std::map<std::string, int64_t>> bad =
      ParseCheckpointCounters("updates 7\nenv_steps many\n", "x/counters.txt");
  EXPECT_TRUE(absl::IsDataLoss(bad.status()));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("x/counters.txt"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("env_steps many"));
  EXPECT_TRUE(absl::IsNotFound(ReadCheckpointCounters((dir / "ckpt-8").string()).status()));
}

TEST(CheckpointLayoutTest, ListAndRemoveTakeOnlyCheckpoints) {
  const fs::path dir = CheckpointDirWith("layout_remove", {3, 12});
  fs::create_directories(dir / "ckpt-20.tmp");
  fs::create_directories(dir / "best");
  std::ofstream(dir / "notes.txt") << "mine\n";
  ASSERT_TRUE(PointLatestAt(dir.string(), "ckpt-12").ok());
  absl::StatusOr<std::vector<int64_t>> steps = ListCheckpoints(dir.string());
  ASSERT_TRUE(steps.ok()) << steps.status();
  EXPECT_EQ(*steps, (std::vector<int64_t>{3, 12}));
  ASSERT_TRUE(RemoveCheckpoints(dir.string()).ok());
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(dir)) left.push_back(entry.path().filename());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"best", "notes.txt"}));
  EXPECT_TRUE(RemoveCheckpoints((dir / "absent").string()).ok());
}

TEST(CheckpointLayoutTest, NamesRoundTripAndOnlyDigitsMakeAStep) {
  int64_t step = 0;
  EXPECT_TRUE(ParseCheckpointName(CheckpointName(1234), &step));
  EXPECT_EQ(step, 1234);
  for (const char* bad :
       {"ckpt-", "ckpt-12.tmp", "ckpt--3", "ckpt-1e3", "latest", "ckpt-99999999999999999999"}) {
    EXPECT_FALSE(ParseCheckpointName(bad, &step)) << bad;
  }
}

}  // namespace
}  // namespace dreamfleet::services
