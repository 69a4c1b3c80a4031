// A real dreamfleet process serves /metrics that Prometheus's own checker accepts, and /healthz.
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/metrics.h"
#include "tests/test_process.h"

namespace dreamfleet {
namespace {

TEST(MetricsEndpointTest, ReplayShardMetricsPassPromtool) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool missing (Debian package prometheus; scripts/setup.sh installs it)";
  }
  const std::string dir = testing::MakeTempDir("metrics_endpoint_");
  auto process = testing::TestProcess::Start(
      {testing::BinaryPath("dreamfleet-replay"), "--set", "replay.port=0", "--set",
       "replay.metrics_port=0", "--set", "run.dir=" + dir, "--set", "replay.wal_fsync_interval_ms=1"},
      dir + "/stderr.log");
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> port = (*process)->WaitForPort("metrics on ");
  ASSERT_TRUE(port.ok()) << port.status();

  absl::StatusOr<std::string> metrics = services::HttpGet("127.0.0.1", *port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(*metrics, ::testing::HasSubstr("dreamfleet_replay_"));
  const std::string path = dir + "/metrics.txt";
  std::ofstream(path) << *metrics;
  const std::string command = "promtool check metrics < " + path + " > " + dir + "/promtool.txt 2>&1";
  const int rc = std::system(command.c_str());
  std::ifstream report(dir + "/promtool.txt");
  std::string text((std::istreambuf_iterator<char>(report)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << "promtool rejected /metrics:\n" << text;

  absl::StatusOr<std::string> health = services::HttpGet("127.0.0.1", *port, "/healthz");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "ok\n");
  absl::StatusOr<int> code = (*process)->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << "SIGTERM is a clean shutdown";
}

}  // namespace
}  // namespace dreamfleet
