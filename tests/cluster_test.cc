// The whole product as users run it: `dreamfleet up` with real shard, learner and actor processes
// (label slow). The learning test trains the embedded default config (Empty-5x5) on 2 shards until
// the actors' success rate reaches 0.9, with weights at every actor and inserts on every shard. By
// default (and in CI) it runs at a reduced size, 2 actors; DREAMFLEET_TEST_SCALE=full uses 4.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/learning_curve.h"
#include "services/metrics.h"
#include "tests/test_process.h"

namespace dreamfleet {
namespace {

bool FullScale() {
  const char* scale = std::getenv("DREAMFLEET_TEST_SCALE");
  return scale != nullptr && std::string(scale) == "full";
}

std::string ConfigPath(const std::string& name) {
  const char* source = std::getenv("DREAMFLEET_SOURCE_DIR");
  return std::string(source ? source : ".") + "/configs/" + name;
}

// Every `"key":number` in a JSON text, in order.
std::vector<double> JsonNumbers(const std::string& json, const std::string& key) {
  std::vector<double> values;
  const std::regex pattern("\"" + key + "\":(-?[0-9.eE+-]+)");
  for (auto it = std::sregex_iterator(json.begin(), json.end(), pattern);
       it != std::sregex_iterator(); ++it) {
    double value = 0;
    if (absl::SimpleAtod((*it)[1].str(), &value)) values.push_back(value);
  }
  return values;
}

// The flags that put a whole cluster on free loopback ports inside `dir`.
std::vector<std::string> ClusterFlags(const std::string& dir, int shards, int actors) {
  const int base = testing::FreePortRange(3 + 2 * shards + actors);
  return {"--set", "run.dir=" + dir,
          "--set", absl::StrCat("replay.shards=", shards),
          "--set", absl::StrCat("actor.count=", actors),
          "--set", absl::StrCat("learner.port=", base),
          "--set", absl::StrCat("learner.metrics_port=", base + 1),
          "--set", absl::StrCat("replay.port=", base + 2),
          "--set", absl::StrCat("replay.metrics_port=", base + 2 + shards),
          "--set", absl::StrCat("actor.metrics_port=", base + 2 + 2 * shards)};
}

std::map<std::string, pid_t> ReadPids(const std::string& dir) {
  std::map<std::string, pid_t> pids;
  for (absl::string_view line : absl::StrSplit(testing::ReadFile(dir + "/processes.txt"), '\n')) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int pid = 0;
    if (fields.size() >= 2 && absl::SimpleAtoi(fields[1], &pid)) pids[fields[0]] = pid;
  }
  return pids;
}

double LearnerMetric(const std::string& dir, int metrics_port, const std::string& name) {
  absl::StatusOr<std::string> text = services::HttpGet("127.0.0.1", metrics_port, "/metrics");
  if (!text.ok()) return -1;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) == 0) {
      double value = 0;
      if (absl::SimpleAtod(line.substr(name.size() + 1), &value)) return value;
    }
  }
  return -1;
}

TEST(ClusterTest, TrainsEmptyGridworldAcrossProcesses) {
  const std::string dir = testing::MakeTempDir("cluster_learning_");
  const int actors = FullScale() ? 4 : 2;
  // About 5-7 minutes on a 2-core machine (BENCHMARKS.md); the limit leaves room for a busy one.
  const double minutes = 25;
  const double threshold = 0.9;
  std::vector<std::string> argv = {testing::BinaryPath("dreamfleet"), "up", "--config",
                                   ConfigPath("default.yaml"), "--json", "--max-minutes",
                                   absl::StrCat(minutes), "--until-success",
                                   absl::StrCat(threshold)};
  for (const std::string& flag : ClusterFlags(dir, /*shards=*/2, actors)) argv.push_back(flag);
  auto up = testing::TestProcess::Start(argv, dir + "/up.stderr");
  ASSERT_TRUE(up.ok()) << up.status();
  absl::StatusOr<std::string> summary =
      (*up)->WaitForLine("{\"stop_reason\"", absl::Minutes(minutes + 3));
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << testing::ReadFile(dir + "/up.stderr");
  const std::string json = "{\"stop_reason\"" + *summary;
  absl::StatusOr<int> code = (*up)->Stop();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  SCOPED_TRACE(json);

  // Weights flowed: every actor ran a published policy.
  const size_t actors_at = json.find("\"actors\":[");
  ASSERT_NE(actors_at, std::string::npos);
  std::vector<double> actor_versions = JsonNumbers(json.substr(actors_at), "weights_version");
  ASSERT_EQ(actor_versions.size(), static_cast<size_t>(actors));
  for (double version : actor_versions) EXPECT_GT(version, 0);
  // Replay inserts reached every shard, and the learner trained on them.
  std::vector<double> inserted = JsonNumbers(json, "inserted_steps");
  ASSERT_EQ(inserted.size(), 2u);
  for (double steps : inserted) EXPECT_GT(steps, 0);
  std::vector<double> updates = JsonNumbers(json, "updates");
  ASSERT_FALSE(updates.empty());
  EXPECT_GE(updates.front(), 10);
  // Episodes finished at every actor.
  std::vector<double> episodes = JsonNumbers(json.substr(actors_at), "episodes");
  ASSERT_EQ(episodes.size(), static_cast<size_t>(actors));
  for (double count : episodes) EXPECT_GT(count, 0);
  // It learned: the run stopped because the success rate reached the goal, not on the time limit.
  EXPECT_NE(json.find("\"stop_reason\":\"success rate reached\""), std::string::npos);
  std::vector<double> success = JsonNumbers(json, "success_rate");
  ASSERT_FALSE(success.empty());
  EXPECT_GE(success.front(), threshold) << "cluster success rate within " << minutes << " minutes";

  // The run's learning curve: rows every 10 s with growing env steps and updates, and its plot.
  absl::StatusOr<services::Curve> curve = services::ReadCurve(dir + "/progress.csv");
  ASSERT_TRUE(curve.ok()) << curve.status();
  ASSERT_GE(curve->rows.size(), 2u);
  EXPECT_GT(curve->rows.back().env_steps, curve->rows.front().env_steps);
  EXPECT_GT(curve->rows.back().updates, 0);
  EXPECT_GT(curve->rows.back().episodes, 0);
  EXPECT_TRUE(curve->rows.back().losses.count("dyn")) << "the learner's losses reach the curve";
  EXPECT_TRUE(std::filesystem::exists(dir + "/curve.png"));
}

TEST(ClusterTest, RestartsAndResumesAfterKillNine) {
  const std::string dir = testing::MakeTempDir("cluster_kill_");
  std::vector<std::string> argv = {testing::BinaryPath("dreamfleet"), "up", "--config",
                                   ConfigPath("debug.yaml"), "--max-minutes", "20",
                                   "--set", "learner.checkpoint_minutes=0.05"};
  std::vector<std::string> flags = ClusterFlags(dir, /*shards=*/2, /*actors=*/2);
  argv.insert(argv.end(), flags.begin(), flags.end());
  int learner_metrics_port = 0;
  for (const std::string& flag : flags) {
    if (flag.rfind("learner.metrics_port=", 0) == 0) {
      ASSERT_TRUE(absl::SimpleAtoi(flag.substr(flag.find('=') + 1), &learner_metrics_port));
    }
  }
  ASSERT_GT(learner_metrics_port, 0);
  auto up = testing::TestProcess::Start(argv, dir + "/up.stderr");
  ASSERT_TRUE(up.ok()) << up.status();

  // Training is under way and the learner has checkpointed.
  ASSERT_TRUE(testing::Eventually(absl::Minutes(8), [&] {
    return LearnerMetric(dir, learner_metrics_port, "dreamfleet_learner_updates_total") >= 5 &&
           testing::ReadFile(dir + "/learner/latest") != "";
  })) << testing::ReadFile(dir + "/logs/learner.log");
  const std::map<std::string, pid_t> before = ReadPids(dir);
  for (const char* name : {"actor-1", "replay-1", "learner"}) {
    ASSERT_TRUE(before.count(name) && before.at(name) > 0) << name;
    ASSERT_EQ(kill(before.at(name), SIGKILL), 0) << name;
  }

  // The launcher restarts each of them.
  ASSERT_TRUE(testing::Eventually(absl::Minutes(2), [&] {
    std::map<std::string, pid_t> now = ReadPids(dir);
    for (const char* name : {"actor-1", "replay-1", "learner"}) {
      if (now[name] <= 0 || now[name] == before.at(name)) return false;
    }
    return true;
  })) << testing::ReadFile(dir + "/processes.txt");
  // The learner resumes from its checkpoint and keeps training; the shard restores its data.
  ASSERT_TRUE(testing::Eventually(absl::Minutes(5), [&] {
    return testing::ReadFile(dir + "/logs/learner.log").find("resumed from") != std::string::npos;
  })) << testing::ReadFile(dir + "/logs/learner.log");
  const std::string learner_log = testing::ReadFile(dir + "/logs/learner.log");
  std::smatch resumed;
  ASSERT_TRUE(std::regex_search(learner_log, resumed, std::regex("resumed from .* at update ([0-9]+)")));
  const int resumed_at = std::stoi(resumed[1].str());
  EXPECT_GT(resumed_at, 0);
  EXPECT_TRUE(testing::Eventually(absl::Minutes(5), [&] {
    return LearnerMetric(dir, learner_metrics_port, "dreamfleet_learner_updates_total") >= 3;
  })) << "the resumed learner trains again";
  const std::string shard_log = testing::ReadFile(dir + "/logs/replay-1.log");
  EXPECT_GE(std::count(shard_log.begin(), shard_log.end(), '\n'), 2);
  EXPECT_THAT(shard_log, ::testing::HasSubstr("restored"));

  absl::StatusOr<int> code = (*up)->Stop(absl::Minutes(3));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  for (const auto& [name, pid] : ReadPids(dir)) {
    EXPECT_TRUE(pid == 0 || kill(pid, 0) != 0) << name << " still running after Ctrl-C";
  }
}

}  // namespace
}  // namespace dreamfleet
