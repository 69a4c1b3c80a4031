#include "deploy/cluster_status.h"

#include <chrono>

#include "broadcast/parameter_service.h"
#include "dreamfleet/v1/parameter.pb.h"
#include "gtest/gtest.h"
#include "services/grpc_util.h"
#include "services/metrics.h"

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

// A real learner service on loopback whose Status carries an evaluation: the cluster status,
// its JSON and its text show it; before the first evaluation they do not.
TEST(ClusterStatusTest, ReadsTheLearnersLatestEvaluation) {
  broadcast::ParameterServiceImpl service(broadcast::ParameterServiceImpl::Options{});
  absl::StatusOr<services::StartedServer> server =
      services::StartGrpcServer("127.0.0.1", 0, {&service});
  ASSERT_TRUE(server.ok()) << server.status();
  services::Config config;
  config.replay.port = 1;
  config.actor.metrics_port = 1;
  config.learner.host = "127.0.0.1";
  config.learner.port = server->port;
  v1::StatusResponse response;
  response.set_updates(40);
  service.SetStatusProvider([&response] { return response; });
  ClusterStatus status = QueryCluster(config, 0);
  ASSERT_TRUE(status.learner.up) << status.learner.error;
  EXPECT_EQ(status.learner.updates, 40);
  EXPECT_LT(status.learner.evaluation.env_steps, 0);
  EXPECT_EQ(status.ToJson().find("evaluation"), std::string::npos);
  EXPECT_EQ(status.ToText().find("evaluation"), std::string::npos);

  v1::Evaluation& e = *response.mutable_evaluation();
  e.set_env_steps(1200);
  e.set_updates(38);
  e.set_episodes(10);
  e.set_greedy_return(4.5);
  e.set_greedy_success(0.25);
  e.set_sampled_return(3.5);
  e.set_sampled_success(0.5);
  e.set_best_return(6);
  status = QueryCluster(config, 0);
  const LearnerStatus::Evaluation& got = status.learner.evaluation;
  EXPECT_EQ(got.env_steps, 1200);
  EXPECT_EQ(got.updates, 38);
  EXPECT_EQ(got.episodes, 10);
  EXPECT_EQ(got.greedy_return, 4.5);
  EXPECT_EQ(got.greedy_success, 0.25);
  EXPECT_EQ(got.sampled_return, 3.5);
  EXPECT_EQ(got.sampled_success, 0.5);
  EXPECT_EQ(got.best_return, 6);
  EXPECT_NE(status.ToJson().find("\"evaluation\":{\"env_steps\":1200,\"updates\":38"),
            std::string::npos)
      << status.ToJson();
  EXPECT_NE(status.ToText().find("evaluation at 1200 env steps (update 38), 10 episodes: greedy "
                                 "return 4.50 success 25%, sampled return 3.50 success 50%; "
                                 "best 6.00"),
            std::string::npos)
      << status.ToText();
  service.Shutdown();
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->server->Wait();
}

TEST(ClusterStatusTest, ActorsAreFoundAtTheirLocalPortsByDefault) {
  services::Config config;
  config.actor.metrics_port = 9300;
  std::vector<ActorEndpoint> endpoints = ActorEndpoints(config, 2);
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(endpoints[0].port, 9300);
  EXPECT_EQ(endpoints[1].port, 9301);
}

TEST(ClusterStatusTest, ActorsAreFoundAtEveryAddressTheirNamesResolveTo) {
  services::Config config;
  config.actor.metrics_addresses = "localhost:9200, 127.0.0.1:9201,no-such-host.invalid:9200,bad";
  std::vector<ActorEndpoint> endpoints = ActorEndpoints(config, 5);  // the count is ignored
  ASSERT_EQ(endpoints.size(), 4u);
  EXPECT_EQ(endpoints[0].host, "127.0.0.1");  // localhost, resolved
  EXPECT_EQ(endpoints[0].port, 9200);
  EXPECT_TRUE(endpoints[0].error.empty()) << endpoints[0].error;
  EXPECT_EQ(endpoints[1].port, 9201);
  EXPECT_EQ(endpoints[2].host, "no-such-host.invalid");
  EXPECT_FALSE(endpoints[2].error.empty());
  EXPECT_EQ(endpoints[3].error, "not of the form host:port");
}

TEST(ClusterStatusTest, ScrapesAnActorFoundByName) {
  services::Metrics metrics;
  metrics.Counter("dreamfleet_actor_env_steps_total", "Env steps taken.").Increment(321);
  auto server = services::MetricsServer::Start("127.0.0.1", 0, &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  services::Config config;
  config.replay.port = 1;
  config.learner.port = 1;
  config.actor.metrics_addresses = "localhost:" + std::to_string((*server)->port());
  ClusterStatus status = QueryCluster(config, 0);
  ASSERT_EQ(status.actors.size(), 1u);
  EXPECT_TRUE(status.actors[0].up);
  EXPECT_EQ(status.actors[0].env_steps, 321);
  EXPECT_EQ(status.env_steps(), 321);
}

}  // namespace
}  // namespace dreamfleet::deploy
