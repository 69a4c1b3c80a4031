#include "services/durable_file.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::services {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

fs::path FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(DurableFileTest, ReplaceWritesThenReplacesAndLeavesNoTemporaryFile) {
  const fs::path dir = FreshDir("durable_replace");
  const std::string path = (dir / "score.txt").string();
  ASSERT_TRUE(ReplaceFileDurably(path, "1.5 100\n").ok());
  EXPECT_EQ(Read(path), "1.5 100\n");
  ASSERT_TRUE(ReplaceFileDurably(path, std::string(100000, 'x')).ok());
  EXPECT_EQ(Read(path), std::string(100000, 'x'));
  ASSERT_TRUE(ReplaceFileDurably(path, "").ok());
  EXPECT_EQ(Read(path), "");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(DurableFileTest, AFailedReplaceNamesThePathAndKeepsTheOldFile) {
  const fs::path dir = FreshDir("durable_fail");
  absl::Status missing = ReplaceFileDurably((dir / "absent" / "x.txt").string(), "y");
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.message(), HasSubstr("cannot create " + (dir / "absent").string()));

  // The rename fails when the target is a non-empty directory: the temporary file goes and the
  // target stays.
  const fs::path target = dir / "busy";
  fs::create_directories(target / "inside");
  absl::Status busy = ReplaceFileDurably(target.string(), "data");
  EXPECT_FALSE(busy.ok());
  EXPECT_THAT(busy.message(), HasSubstr("cannot rename " + target.string() + ".tmp to"));
  EXPECT_FALSE(fs::exists(target.string() + ".tmp"));
  EXPECT_TRUE(fs::is_directory(target / "inside"));
}

TEST(DurableFileTest, SyncDirectoryNeedsADirectory) {
  const fs::path dir = FreshDir("durable_sync");
  EXPECT_TRUE(SyncDirectory(dir.string()).ok());
  absl::Status missing = SyncDirectory((dir / "absent").string());
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.message(), HasSubstr("cannot open directory " + (dir / "absent").string()));
}

}  // namespace
}  // namespace dreamfleet::services
