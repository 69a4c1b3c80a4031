// ParameterClient against a real ParameterServiceImpl on a real gRPC server (port 0): versions
// before and after subscribing, several subscribers, a slow subscriber skipping versions, a
// learner restart on the same port, and a model larger than gRPC's 64 MiB message limit.
#include "broadcast/parameter_client.h"

#include <chrono>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/notification.h"
#include "broadcast/parameter_service.h"
#include "broadcast/weights_test_util.h"
#include "gtest/gtest.h"
#include "services/grpc_util.h"

namespace dreamfleet::broadcast {
namespace {

using broadcast::MakePatternWeights;
using broadcast::ParameterServiceImpl;
using broadcast::SameWeights;
using broadcast::TensorShape;
using broadcast::WeightsVersion;

// Generous: the machine running the tests may be busy.
constexpr absl::Duration kWait = absl::Seconds(120);

const std::vector<TensorShape>& SmallShapes() {
  static const auto* shapes = new std::vector<TensorShape>{
      {"encoder.conv0.w", {32, 3, 4, 4}}, {"rssm.gru.w", {256, 768}}, {"actor.out.b", {17}}};
  return *shapes;
}

// A learner: the service on a started server.
struct Learner {
  std::unique_ptr<ParameterServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  static std::unique_ptr<Learner> Start(int port, ParameterServiceImpl::Options options = {}) {
    auto learner = std::make_unique<Learner>();
    learner->service = std::make_unique<ParameterServiceImpl>(options);
    absl::StatusOr<services::StartedServer> started =
        services::StartGrpcServer("127.0.0.1", port, {learner->service.get()});
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) return nullptr;
    learner->server = std::move(started->server);
    learner->port = started->port;
    return learner;
  }

  std::string address() const { return services::JoinHostPort("127.0.0.1", port); }

  void Stop() {
    service->Shutdown();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(30));
    server.reset();
    service.reset();
  }

  ~Learner() {
    if (server != nullptr) Stop();
  }
};

std::unique_ptr<ParameterClient> StartClient(ParameterClient::Options options) {
  absl::StatusOr<std::unique_ptr<ParameterClient>> client =
      ParameterClient::Create(std::move(options));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

ParameterClient::Options ClientOptions(const std::string& address, const std::string& id) {
  ParameterClient::Options options;
  options.address = address;
  options.actor_id = id;
  options.max_backoff = absl::Milliseconds(500);  // quick reconnects in tests
  return options;
}

TEST(ParameterClientTest, VersionsPublishedBeforeAndAfterSubscribingArriveIntact) {
  std::unique_ptr<Learner> learner = Learner::Start(0);
  ASSERT_NE(learner, nullptr);
  auto v1_weights = MakePatternWeights(1, SmallShapes());
  ASSERT_TRUE(learner->service->Publish(v1_weights).ok());

  services::Metrics metrics;
  ParameterClient::Options options = ClientOptions(learner->address(), "actor-0");
  options.metrics = &metrics;
  std::unique_ptr<ParameterClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::shared_ptr<const WeightsVersion>> got = client->WaitForVersion(1, kWait);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(SameWeights(**got, *v1_weights));

  auto v2_weights = MakePatternWeights(2, SmallShapes());
  ASSERT_TRUE(learner->service->Publish(v2_weights).ok());
  got = client->WaitForVersion(2, kWait);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(SameWeights(**got, *v2_weights));
  EXPECT_EQ(client->latest_version(), 2);
  EXPECT_EQ(client->Latest(), *got);
  EXPECT_NE(metrics.TextExposition().find("dreamfleet_actor_weights_version 2"), std::string::npos);
  client->Stop();
  EXPECT_EQ(client->WaitForVersion(3, kWait).status().code(), absl::StatusCode::kCancelled);
}

TEST(ParameterClientTest, ThreeSubscribersAllGetTheLatest) {
  std::unique_ptr<Learner> learner = Learner::Start(0);
  ASSERT_NE(learner, nullptr);
  std::vector<std::unique_ptr<ParameterClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(StartClient(ClientOptions(learner->address(), "actor-" + std::to_string(i))));
    ASSERT_NE(clients.back(), nullptr);
  }
  ASSERT_TRUE(learner->service->WaitForSubscribers(3, kWait));
  std::shared_ptr<const WeightsVersion> last;
  for (int64_t version = 1; version <= 5; ++version) {
    last = MakePatternWeights(version, SmallShapes());
    ASSERT_TRUE(learner->service->Publish(last).ok());
  }
  for (auto& client : clients) {
    absl::StatusOr<std::shared_ptr<const WeightsVersion>> got = client->WaitForVersion(5, kWait);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(SameWeights(**got, *last));
  }
}

TEST(ParameterClientTest, SlowSubscriberSkipsToTheNewestVersion) {
  // Version 1 is 64 MiB in 1 MiB messages, far more than the transport buffers while the client
  // is held after part 0 (the channel's BDP probing is off so its window stays at 64 KiB): the
  // server is therefore still writing version 1 when versions 2 and 3 are published.
  ParameterServiceImpl::Options service_options;
  service_options.max_message_bytes = 1 << 20;
  std::unique_ptr<Learner> learner = Learner::Start(0, service_options);
  ASSERT_NE(learner, nullptr);
  auto big = MakePatternWeights(1, {{"big", {16, 1024, 1024}}});
  ASSERT_TRUE(learner->service->Publish(big).ok());

  absl::Notification holding;
  absl::Notification release;
  absl::Mutex mu;
  std::vector<int64_t> assembled;
  ParameterClient::Options options = ClientOptions(learner->address(), "slow");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(services::kDefaultMaxMessageBytes);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  options.channel =
      grpc::CreateCustomChannel(learner->address(), grpc::InsecureChannelCredentials(), args);
  options.on_message_for_test = [&](const v1::ParameterUpdate& update) {
    if (update.version() == 1 && update.part() == 0) {
      holding.Notify();
      release.WaitForNotification();
    }
  };
  options.on_version = [&](const std::shared_ptr<const WeightsVersion>& weights) {
    absl::MutexLock lock(&mu);
    assembled.push_back(weights->version);
  };
  std::unique_ptr<ParameterClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  // Never leave the client's thread held when an assertion returns early.
  auto unblock = absl::MakeCleanup([&release] {
    if (!release.HasBeenNotified()) release.Notify();
  });
  ASSERT_TRUE(holding.WaitForNotificationWithTimeout(kWait));

  ASSERT_TRUE(learner->service->Publish(MakePatternWeights(2, SmallShapes())).ok());
  auto newest = MakePatternWeights(3, SmallShapes());
  ASSERT_TRUE(learner->service->Publish(newest).ok());
  release.Notify();

  absl::StatusOr<std::shared_ptr<const WeightsVersion>> got = client->WaitForVersion(3, kWait);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(SameWeights(**got, *newest));
  client->Stop();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(assembled, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(client->reconnects(), 0);
}

TEST(ParameterClientTest, ReconnectsToARestartedLearnerAndGetsItsVersion) {
  std::unique_ptr<Learner> learner = Learner::Start(0);
  ASSERT_NE(learner, nullptr);
  const int port = learner->port;
  ASSERT_TRUE(learner->service->Publish(MakePatternWeights(1, SmallShapes())).ok());
  ASSERT_TRUE(learner->service->Publish(MakePatternWeights(2, SmallShapes())).ok());
  absl::Notification resumed_arrived;
  ParameterClient::Options options = ClientOptions(learner->address(), "a");
  options.on_version = [&resumed_arrived](const std::shared_ptr<const WeightsVersion>& got) {
    if (got->tensors.size() == 1 && got->tensors[0].name == "resumed.w") resumed_arrived.Notify();
  };
  std::unique_ptr<ParameterClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->WaitForVersion(2, kWait).ok());

  // The restarted learner resumed from an older checkpoint: its version 1 is news to the client
  // although the client holds a version 2 (of the previous run).
  learner->Stop();
  learner = Learner::Start(port);
  ASSERT_NE(learner, nullptr);
  auto resumed = MakePatternWeights(1, {{"resumed.w", {100, 100}}});
  ASSERT_TRUE(learner->service->Publish(resumed).ok());
  ASSERT_TRUE(resumed_arrived.WaitForNotificationWithTimeout(kWait));
  EXPECT_TRUE(SameWeights(*client->Latest(), *resumed));
  EXPECT_EQ(client->latest_version(), 1);
  EXPECT_GE(client->reconnects(), 1);
}

TEST(ParameterClientTest, ResubscribingToTheSameLearnerDoesNotResendItsVersion) {
  std::unique_ptr<Learner> learner = Learner::Start(0);
  ASSERT_NE(learner, nullptr);
  ASSERT_TRUE(learner->service->Publish(MakePatternWeights(1, SmallShapes())).ok());
  absl::Mutex mu;
  std::vector<int64_t> assembled;
  ParameterClient::Options options = ClientOptions(learner->address(), "b");
  options.on_version = [&](const std::shared_ptr<const WeightsVersion>& got) {
    absl::MutexLock lock(&mu);
    assembled.push_back(got->version);
  };
  std::unique_ptr<ParameterClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->WaitForVersion(1, kWait).ok());
  // The stream breaks and the client resubscribes to a server of the same learner run (as after
  // a dropped connection): it names version 1 of that run, so only newer versions come.
  const std::string run = learner->service->learner_run();
  const int port = learner->port;
  learner->Stop();
  ParameterServiceImpl::Options same_run;
  same_run.learner_run = run;
  learner = Learner::Start(port, same_run);
  ASSERT_NE(learner, nullptr);
  ASSERT_TRUE(learner->service->Publish(MakePatternWeights(1, SmallShapes())).ok());
  ASSERT_TRUE(learner->service->WaitForSubscribers(1, kWait));  // resubscribed while 1 is newest
  ASSERT_TRUE(learner->service->Publish(MakePatternWeights(2, SmallShapes())).ok());
  ASSERT_TRUE(client->WaitForVersion(2, kWait).ok());
  client->Stop();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(assembled, (std::vector<int64_t>{1, 2}));  // version 1 was not sent again
}

TEST(ParameterClientTest, ClientStartedBeforeTheLearnerConnectsWhenItComes) {
  // Find a free port, then leave it closed while the client starts.
  int port = 0;
  {
    std::unique_ptr<Learner> probe = Learner::Start(0);
    ASSERT_NE(probe, nullptr);
    port = probe->port;
  }
  std::unique_ptr<ParameterClient> client =
      StartClient(ClientOptions(services::JoinHostPort("127.0.0.1", port), "early"));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Latest(), nullptr);
  std::unique_ptr<Learner> learner = Learner::Start(port);
  ASSERT_NE(learner, nullptr);
  auto weights = MakePatternWeights(1, SmallShapes());
  ASSERT_TRUE(learner->service->Publish(weights).ok());
  absl::StatusOr<std::shared_ptr<const WeightsVersion>> got = client->WaitForVersion(1, kWait);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(SameWeights(**got, *weights));
}

TEST(ParameterClientTest, StopReturnsWhileTheLearnerIsAway) {
  int port = 0;
  {
    std::unique_ptr<Learner> probe = Learner::Start(0);
    ASSERT_NE(probe, nullptr);
    port = probe->port;
  }
  std::unique_ptr<ParameterClient> client =
      StartClient(ClientOptions(services::JoinHostPort("127.0.0.1", port), "lonely"));
  ASSERT_NE(client, nullptr);
  client->Stop();
  EXPECT_EQ(client->latest_version(), 0);
}

TEST(ParameterClientTest, ModelOver64MiBCrossesUnderTheDefaultMessageLimit) {
  std::unique_ptr<Learner> learner = Learner::Start(0);  // default 64 MiB server limit
  ASSERT_NE(learner, nullptr);
  // 100 MiB in all, one tensor of 70 MiB.
  auto model = MakePatternWeights(1, {{"head", {10, 1024, 1024 / 4}},
                                      {"big", {70, 1024, 1024 / 4}},
                                      {"tail", {20, 1024, 1024 / 4}}});
  ASSERT_EQ(model->total_bytes(), size_t{100} << 20);
  ASSERT_TRUE(learner->service->Publish(model).ok());
  std::unique_ptr<ParameterClient> client = StartClient(ClientOptions(learner->address(), "big"));
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::shared_ptr<const WeightsVersion>> got = client->WaitForVersion(1, kWait);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(SameWeights(**got, *model));
}

// A learner that breaks its first stream mid-version (part 1 is missing) and serves the version
// correctly on the next Subscribe (and, like the real one, not to a subscriber that has it).
class BreakFirstStreamService final : public v1::ParameterService::Service {
 public:
  explicit BreakFirstStreamService(std::vector<v1::ParameterUpdate> parts)
      : parts_(std::move(parts)) {}

  grpc::Status Subscribe(grpc::ServerContext*, const v1::SubscribeRequest* request,
                         grpc::ServerWriter<v1::ParameterUpdate>* writer) override {
    int call;
    {
      absl::MutexLock lock(&mu_);
      call = calls_++;
      have_versions_.push_back(request->have_version());
    }
    for (size_t i = 0; i < parts_.size(); ++i) {
      if (request->have_version() >= parts_[i].version()) break;
      if (call == 0 && i == 1) continue;
      if (!writer->Write(parts_[i])) break;
    }
    return grpc::Status::OK;  // the stream ends; the client resubscribes
  }

  std::vector<int64_t> have_versions() {
    absl::MutexLock lock(&mu_);
    return have_versions_;
  }

 private:
  const std::vector<v1::ParameterUpdate> parts_;
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> have_versions_ ABSL_GUARDED_BY(mu_);
};

TEST(ParameterClientTest, BrokenVersionIsDroppedAndTheClientResubscribes) {
  auto weights = MakePatternWeights(4, {{"w", {3000}}});  // 12000 bytes: 4 parts of <= 4096
  std::vector<v1::ParameterUpdate> parts = broadcast::SplitIntoUpdates(*weights, 4096);
  ASSERT_EQ(parts.size(), 4u);
  BreakFirstStreamService service(parts);
  absl::StatusOr<services::StartedServer> started =
      services::StartGrpcServer("127.0.0.1", 0, {&service});
  ASSERT_TRUE(started.ok()) << started.status();
  std::vector<int64_t> assembled;
  absl::Mutex mu;
  ParameterClient::Options options =
      ClientOptions(services::JoinHostPort("127.0.0.1", started->port), "fussy");
  options.on_version = [&](const std::shared_ptr<const WeightsVersion>& got) {
    absl::MutexLock lock(&mu);
    assembled.push_back(got->version);
  };
  std::unique_ptr<ParameterClient> client = StartClient(options);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::shared_ptr<const WeightsVersion>> got = client->WaitForVersion(4, kWait);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(SameWeights(**got, *weights));
  client->Stop();
  EXPECT_GE(client->reconnects(), 1);
  std::vector<int64_t> have = service.have_versions();
  ASSERT_GE(have.size(), 2u);
  EXPECT_EQ(have[0], 0);
  EXPECT_EQ(have[1], 0);  // the broken version was not kept
  absl::MutexLock lock(&mu);
  EXPECT_EQ(assembled, std::vector<int64_t>{4});
  started->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(30));
}

TEST(ParameterClientTest, CreateRejectsBadOptions) {
  ParameterClient::Options options;
  EXPECT_FALSE(ParameterClient::Create(options).ok());
  options.address = "127.0.0.1:1";
  options.max_backoff = absl::Milliseconds(1);
  EXPECT_FALSE(ParameterClient::Create(options).ok());
}

}  // namespace
}  // namespace dreamfleet::broadcast
