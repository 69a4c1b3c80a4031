#include "deploy/cluster_status.h"

#include "gtest/gtest.h"

namespace dreamfleet::deploy {
namespace {

TEST(ClusterStatusTest, ParsesPrometheusValuesWithAndWithoutLabels) {
  const std::string text =
      "# HELP dreamfleet_actor_env_steps_total Steps.\n"
      "# TYPE dreamfleet_actor_env_steps_total counter\n"
      "dreamfleet_actor_env_steps_total 1234\n"
      "dreamfleet_actor_env_steps_total_other 9\n"
      "dreamfleet_actor_success_rate{env=\"grid\"} 0.75\n";
  double value = 0;
  ASSERT_TRUE(ParsePrometheusValue(text, "dreamfleet_actor_env_steps_total", &value));
  EXPECT_EQ(value, 1234);
  ASSERT_TRUE(ParsePrometheusValue(text, "dreamfleet_actor_success_rate", &value));
  EXPECT_EQ(value, 0.75);
  EXPECT_FALSE(ParsePrometheusValue(text, "dreamfleet_actor_episodes_total", &value));
}

TEST(ClusterStatusTest, UnreachableClusterIsReportedNotFatal) {
  services::Config config;
  config.replay.port = 1;  // nothing listens on port 1
  config.learner.port = 1;
  config.actor.metrics_port = 1;
  ClusterStatus status = QueryCluster(config, 1);
  ASSERT_EQ(status.shards.size(), 1u);
  EXPECT_FALSE(status.shards[0].up);
  EXPECT_FALSE(status.learner.up);
  ASSERT_EQ(status.actors.size(), 1u);
  EXPECT_FALSE(status.actors[0].up);
  EXPECT_NE(status.ToJson().find("\"up\":false"), std::string::npos);
}

}  // namespace
}  // namespace dreamfleet::deploy
