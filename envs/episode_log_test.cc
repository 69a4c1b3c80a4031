// EpisodeLog: a fresh run starts an empty log; a resumed run keeps the episodes up to its
// checkpoint's env step, drops the later ones and appends after them; a line cut short at the end
// is dropped, a bad line elsewhere is an error naming it.
#include "envs/episode_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/test_process.h"

namespace dreamfleet::envs {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

EpisodeStats Episode(int env, double ret, int64_t length, bool success) {
  EpisodeStats e;
  e.env = env;
  e.episode_return = ret;
  e.length = length;
  e.success = success;
  e.terminal = success;
  return e;
}

TEST(EpisodeLogTest, ResumeKeepsTheEpisodesUpToTheCheckpointAndAppendsAfterThem) {
  dreamfleet::testing::ScopedTempDir temp("episode_log_test_");
  const std::string path = temp.path() + "/episodes.csv";
  {
    auto log = EpisodeLog::Create(path);
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_TRUE(log->Append(100, Episode(0, 1.5, 25, false)).ok());
    ASSERT_TRUE(log->Append(200, Episode(3, -0.25, 50, true)).ok());
    ASSERT_TRUE(log->Append(300, Episode(1, 12345.125, 75, false)).ok());
  }
  EXPECT_EQ(Read(path),
            "env_steps,env,return,length,success,terminal\n100,0,1.5,25,0,0\n200,3,-0.25,50,1,1\n"
            "300,1,12345.125,75,0,0\n");

  std::vector<LoggedEpisode> kept;
  auto resumed = EpisodeLog::Resume(path, 200, &kept);  // the checkpoint was at env step 200
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].env_steps, 100);
  EXPECT_EQ(kept[0].stats.env, 0);
  EXPECT_DOUBLE_EQ(kept[0].stats.episode_return, 1.5);
  EXPECT_EQ(kept[0].stats.length, 25);
  EXPECT_FALSE(kept[0].stats.success);
  EXPECT_EQ(kept[1].stats.env, 3);
  EXPECT_DOUBLE_EQ(kept[1].stats.episode_return, -0.25);
  EXPECT_TRUE(kept[1].stats.success);
  EXPECT_TRUE(kept[1].stats.terminal);
  ASSERT_TRUE(resumed->Append(260, Episode(2, 7, 60, false)).ok());
  EXPECT_EQ(Read(path),
            "env_steps,env,return,length,success,terminal\n100,0,1.5,25,0,0\n200,3,-0.25,50,1,1\n"
            "260,2,7,60,0,0\n");

  // A fresh run empties it.
  ASSERT_TRUE(EpisodeLog::Create(path).ok());
  EXPECT_EQ(Read(path), "env_steps,env,return,length,success,terminal\n");
  // No log yet (a run from before logs existed): resuming starts one.
  const std::string none = temp.path() + "/none.csv";
  ASSERT_TRUE(EpisodeLog::Resume(none, 500, &kept).ok());
  EXPECT_TRUE(kept.empty());
  EXPECT_EQ(Read(none), "env_steps,env,return,length,success,terminal\n");
}

TEST(EpisodeLogTest, ALastLineCutShortIsDroppedAndABadLineElsewhereIsAnError) {
  dreamfleet::testing::ScopedTempDir temp("episode_log_bad_");
  const std::string path = temp.path() + "/episodes.csv";
  const std::string header = "env_steps,env,return,length,success,terminal\n";
  std::ofstream(path) << header << "100,0,1,25,0,0\n200,1,2,5";  // killed mid-line
  std::vector<LoggedEpisode> kept;
  auto resumed = EpisodeLog::Resume(path, 1000, &kept);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(kept.size(), 1u);
  EXPECT_EQ(Read(path), header + "100,0,1,25,0,0\n");

  std::ofstream(path) << header << "100,0,1,25,0,0\n100,zero,1,25,0,0\n300,0,1,25,0,0\n";
  auto bad = EpisodeLog::Resume(path, 1000, &kept);
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  EXPECT_NE(bad.status().message().find("line 3"), std::string::npos) << bad.status();
  EXPECT_NE(bad.status().message().find(path), std::string::npos) << bad.status();
  // The log is left as it was, for whoever looks into it.
  EXPECT_EQ(Read(path), header + "100,0,1,25,0,0\n100,zero,1,25,0,0\n300,0,1,25,0,0\n");

  // A last line without its newline is a whole line when it parses (kept, newline added).
  std::ofstream(path) << header << "100,0,1,25,0,0\n200,1,2,5,0,0";
  ASSERT_TRUE(EpisodeLog::Resume(path, 1000, &kept).ok());
  EXPECT_EQ(kept.size(), 2u);
  EXPECT_EQ(Read(path), header + "100,0,1,25,0,0\n200,1,2,5,0,0\n");
  // An empty file (killed before the header reached the disk) starts afresh.
  std::ofstream(path, std::ios::trunc).flush();
  ASSERT_TRUE(EpisodeLog::Resume(path, 1000, &kept).ok());
  EXPECT_TRUE(kept.empty());
  EXPECT_EQ(Read(path), header);

  std::ofstream(path) << "something else\n";
  EXPECT_EQ(EpisodeLog::Resume(path, 1000, &kept).status().code(), absl::StatusCode::kDataLoss);

  EXPECT_EQ(EpisodeLog::Create(temp.path() + "/no/such/dir/episodes.csv").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace dreamfleet::envs
