#include "services/metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::services {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, RegistersLabelledMetricsInOneLine) {
  Metrics metrics;
  metrics.Counter("dreamfleet_test_events_total", "Events.", {{"kind", "a"}}).Increment(3);
  metrics.Counter("dreamfleet_test_events_total", "Events.", {{"kind", "a"}}).Increment();
  metrics.Counter("dreamfleet_test_events_total", "Events.", {{"kind", "b"}}).Increment();
  metrics.Gauge("dreamfleet_test_size_steps", "Size.").Set(42);
  metrics.Histogram("dreamfleet_test_latency_seconds", "Latency.", Metrics::LatencyBuckets())
      .Observe(0.003);
  const std::string text = metrics.TextExposition();
  EXPECT_THAT(text, HasSubstr("dreamfleet_test_events_total{kind=\"a\"} 4"));
  EXPECT_THAT(text, HasSubstr("dreamfleet_test_events_total{kind=\"b\"} 1"));
  EXPECT_THAT(text, HasSubstr("dreamfleet_test_size_steps 42"));
  EXPECT_THAT(text, HasSubstr("dreamfleet_test_latency_seconds_count 1"));
}

TEST(MetricsServerTest, ServesMetricsAndHealthOnAnEphemeralPort) {
  Metrics metrics;
  metrics.Gauge("dreamfleet_test_up", "Up.").Set(1);
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1", 0, &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  absl::StatusOr<std::string> body = HttpGet("127.0.0.1", (*server)->port(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_THAT(*body, HasSubstr("dreamfleet_test_up 1"));
  body = HttpGet("127.0.0.1", (*server)->port(), "/healthz");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "ok\n");

  (*server)->SetHealthCheck([] { return absl::UnavailableError("replay shard 1 unreachable"); });
  int code = 0;
  body = HttpGet("127.0.0.1", (*server)->port(), "/healthz", &code);
  EXPECT_FALSE(body.ok());
  EXPECT_EQ(code, 503);
  EXPECT_THAT(body.status().message(), HasSubstr("replay shard 1 unreachable"));
}

TEST(MetricsServerTest, BusyPortIsAClearError) {
  Metrics metrics;
  auto first = MetricsServer::Start("127.0.0.1", 0, &metrics);
  ASSERT_TRUE(first.ok());
  auto second = MetricsServer::Start("127.0.0.1", (*first)->port(), &metrics);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("cannot serve metrics on 127.0.0.1:"));
}

}  // namespace
}  // namespace dreamfleet::services
