#include "services/checkpoint_layout.h"

#include <filesystem>
#include <fstream>
#include <string>

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
  EXPECT_EQ(*LatestCheckpointDir(dir.string()), (dir / "ckpt-300").string());
  ASSERT_TRUE(PointLatestAt(dir.string(), "ckpt-40").ok());
  EXPECT_EQ(*LatestCheckpointDir(dir.string()), (dir / "ckpt-40").string());
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

TEST(CheckpointLayoutTest, NamesRoundTripAndOnlyDigitsAreASteps) {
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
