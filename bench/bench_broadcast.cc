// bench_broadcast: how long a policy-weights version takes to reach every actor.
// One process: a ParameterServiceImpl on 127.0.0.1 (port 0) and N ParameterClients, each on its
// own channel (distinct channel args, local subchannel pool: one TCP connection per subscriber,
// as with N actor processes). For each version: t0 before Publish (split + serialize included),
// t1 when the last subscriber has assembled it (recorded in ParameterClient's on_version). The
// next version is published only once all hold the previous one, so no version is skipped.
// Reports the median, min and max of (t1 - t0) over --versions versions for each N in
// --subscribers, after one warm-up version that also opens the connections.
//
// Weights are synthetic float32 tensors with the names and shapes of the DreamerV3 policy part
// (encoder CNN, RSSM, actor MLP) of a size preset as dreamfleet's learner builds it (see
// PolicyShapes), or --megabytes of uniform 1 MiB tensors.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "broadcast/parameter_client.h"
#include "broadcast/parameter_service.h"
#include "broadcast/weights_test_util.h"
#include "services/command_line.h"
#include "services/grpc_util.h"
#include "services/logging.h"

namespace dreamfleet {
namespace {

using Clock = std::chrono::steady_clock;
using broadcast::TensorShape;

struct Sizes {
  int64_t deter, hidden, classes, depth, units;
};

// The tensors dreamer::ExportPolicyWeights produces for AgentConfig with this preset, a 64x64x3
// image observation, `actions` discrete actions, norm=rms (scale only), cnn=strided (k4 s2),
// cnn_mults {2,3,4,4}, stoch 32, blocks 8, ac_layers 3 (dreamer/models/*.cc, policy.cc).
std::vector<TensorShape> PolicyShapes(const Sizes& s, int64_t actions) {
  std::vector<TensorShape> shapes;
  const int64_t stoch = 32, blocks = 8, sc = stoch * s.classes;
  int64_t in = 3;
  const int64_t mults[] = {2, 3, 4, 4};
  for (int i = 0; i < 4; ++i) {
    const int64_t out = s.depth * mults[i];
    const std::string p = "encoder.image.";
    shapes.push_back({absl::StrCat(p, "convs.", i, ".weight"), {out, in, 4, 4}});
    shapes.push_back({absl::StrCat(p, "convs.", i, ".bias"), {out}});
    shapes.push_back({absl::StrCat(p, "norms.", i, ".scale"), {out}});
    in = out;
  }
  const int64_t embed = 4 * 4 * in;
  const int64_t d = s.deter, h = s.hidden;
  auto linear = [&shapes](const std::string& name, int64_t fan_in, int64_t fan_out) {
    shapes.push_back({name + ".weight", {fan_out, fan_in}});
    shapes.push_back({name + ".bias", {fan_out}});
  };
  auto norm = [&shapes](const std::string& name, int64_t size) {
    shapes.push_back({name + ".scale", {size}});
  };
  linear("rssm.dynin_deter", d, h);
  linear("rssm.dynin_stoch", sc, h);
  linear("rssm.dynin_action", actions, h);
  norm("rssm.dynin_deter_norm", h);
  norm("rssm.dynin_stoch_norm", h);
  norm("rssm.dynin_action_norm", h);
  const int64_t block_in = blocks * (d / blocks + 3 * h);
  shapes.push_back({"rssm.dynhid.weight", {blocks, block_in / blocks, d / blocks}});
  shapes.push_back({"rssm.dynhid.bias", {d}});
  norm("rssm.dynhid_norm", d);
  shapes.push_back({"rssm.dyngru.weight", {blocks, d / blocks, 3 * d / blocks}});
  shapes.push_back({"rssm.dyngru.bias", {3 * d}});
  linear("rssm.obs", d + embed, h);
  norm("rssm.obs_norm", h);
  linear("rssm.obs_logit", h, sc);
  linear("rssm.prior0", d, h);
  norm("rssm.prior0_norm", h);
  linear("rssm.prior1", h, h);
  norm("rssm.prior1_norm", h);
  linear("rssm.prior_logit", h, sc);
  int64_t feat = d + sc;
  for (int i = 0; i < 3; ++i) {
    linear(absl::StrCat("actor.linears.", i), feat, s.units);
    norm(absl::StrCat("actor.norms.", i), s.units);
    feat = s.units;
  }
  linear("actor.out", feat, actions);
  return shapes;
}

std::vector<TensorShape> UniformShapes(int64_t megabytes) {
  std::vector<TensorShape> shapes;
  for (int64_t i = 0; i < megabytes; ++i) {
    shapes.push_back({absl::StrCat("w", i), {256, 1024}});  // 1 MiB float32
  }
  return shapes;
}

// Arrival times of each version at each subscriber.
class Arrivals {
 public:
  explicit Arrivals(int subscribers) : subscribers_(subscribers) {}
  void Record(int64_t version) {
    const Clock::time_point now = Clock::now();
    absl::MutexLock lock(&mu_);
    if (version != version_) return;
    last_ = std::max(last_, now);
    ++count_;
  }
  void Expect(int64_t version) {
    absl::MutexLock lock(&mu_);
    version_ = version;
    count_ = 0;
    last_ = Clock::time_point();
  }
  // Waits until every subscriber holds the expected version; the time the last one did.
  bool Wait(absl::Duration timeout, Clock::time_point* last) {
    absl::MutexLock lock(&mu_);
    auto all = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ >= subscribers_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&all), timeout)) return false;
    *last = last_;
    return true;
  }

 private:
  const int subscribers_;
  absl::Mutex mu_;
  int64_t version_ ABSL_GUARDED_BY(mu_) = -1;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::time_point last_ ABSL_GUARDED_BY(mu_);
};

struct Result {
  int subscribers;
  double median_s, min_s, max_s;
  double publish_s;  // median duration of the Publish call itself
};

int Run(int argc, char** argv) {
  std::string preset = "12m";
  int64_t actions = 18;
  int64_t megabytes = 0;
  std::string subscriber_list = "1,8,32";
  int64_t versions = 7;
  int64_t message_kib = static_cast<int64_t>(broadcast::kDefaultUpdateMessageBytes >> 10);
  services::CommandLine flags("bench_broadcast [flags]",
                              "Time for one weights version to reach N subscribers on loopback.");
  flags.AddString("preset", &preset, "policy shapes of this size preset: 1m, 12m, 25m, 50m");
  flags.AddInt("actions", &actions, "discrete actions of the policy head");
  flags.AddInt("megabytes", &megabytes, "instead of a preset: this many 1 MiB tensors");
  flags.AddString("subscribers", &subscriber_list, "comma-separated subscriber counts");
  flags.AddInt("versions", &versions, "measured versions per count (after one warm-up)");
  flags.AddInt("message_kib", &message_kib, "ParameterUpdate size in KiB");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(flags, argc, argv, &exit_code)) return exit_code;
  services::SetLogLevel(services::LogSeverity::kWarning);

  std::vector<TensorShape> shapes;
  std::string model;
  if (megabytes > 0) {
    shapes = UniformShapes(megabytes);
    model = absl::StrCat(megabytes, " x 1 MiB");
  } else {
    const std::vector<std::pair<std::string, Sizes>> presets = {
        {"1m", {512, 64, 4, 4, 64}},
        {"12m", {2048, 256, 16, 16, 256}},
        {"25m", {3072, 384, 24, 24, 384}},
        {"50m", {4096, 512, 32, 32, 512}}};
    auto it = std::find_if(presets.begin(), presets.end(),
                           [&](const auto& p) { return p.first == preset; });
    if (it == presets.end()) {
      std::fprintf(stderr, "unknown --preset %s\n", preset.c_str());
      return 2;
    }
    shapes = PolicyShapes(it->second, actions);
    model = absl::StrCat(preset, " policy (encoder+RSSM+actor, ", actions, " actions)");
  }
  std::vector<int> counts;
  for (absl::string_view part : absl::StrSplit(subscriber_list, ',', absl::SkipEmpty())) {
    int count = 0;
    if (!absl::SimpleAtoi(part, &count) || count <= 0) {
      std::fprintf(stderr, "bad --subscribers entry \"%s\"\n", std::string(part).c_str());
      return 2;
    }
    counts.push_back(count);
  }
  int64_t params = 0;
  for (const TensorShape& shape : shapes) {
    int64_t n = 1;
    for (int64_t dim : shape.shape) n *= dim;
    params += n;
  }
  const int64_t bytes = params * 4;
  std::printf("model: %s, %zu tensors, %lld parameters, %.2f MB float32; messages %lld KiB\n",
              model.c_str(), shapes.size(), static_cast<long long>(params), bytes / 1e6,
              static_cast<long long>(message_kib));

  std::vector<Result> results;
  int64_t version = 0;
  for (int count : counts) {
    broadcast::ParameterServiceImpl::Options service_options;
    service_options.max_message_bytes = static_cast<size_t>(message_kib) << 10;
    auto service = std::make_unique<broadcast::ParameterServiceImpl>(service_options);
    absl::StatusOr<services::StartedServer> started =
        services::StartGrpcServer("127.0.0.1", 0, {service.get()});
    if (!started.ok()) {
      std::fprintf(stderr, "%s\n", std::string(started.status().message()).c_str());
      return 1;
    }
    const std::string address = services::JoinHostPort("127.0.0.1", started->port);
    Arrivals arrivals(count);
    std::vector<std::unique_ptr<broadcast::ParameterClient>> clients;
    for (int i = 0; i < count; ++i) {
      broadcast::ParameterClient::Options options;
      options.address = address;
      options.actor_id = absl::StrCat("bench-", i);
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(services::kDefaultMaxMessageBytes);
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("dreamfleet.bench_subscriber", i);  // distinct args: never a shared connection
      options.channel =
          grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
      options.on_version = [&arrivals](const std::shared_ptr<const broadcast::WeightsVersion>& w) {
        arrivals.Record(w->version);
      };
      absl::StatusOr<std::unique_ptr<broadcast::ParameterClient>> client =
          broadcast::ParameterClient::Create(std::move(options));
      if (!client.ok()) {
        std::fprintf(stderr, "%s\n", std::string(client.status().message()).c_str());
        return 1;
      }
      clients.push_back(std::move(*client));
    }
    std::vector<double> seconds;
    std::vector<double> publish_seconds;  // the learner thread's share: the Publish call
    for (int64_t i = 0; i <= versions; ++i) {
      ++version;
      auto weights = broadcast::MakePatternWeights(version, shapes);  // outside the timing
      arrivals.Expect(version);
      const Clock::time_point t0 = Clock::now();
      absl::Status published = service->Publish(std::move(weights));
      const Clock::time_point t_published = Clock::now();
      if (!published.ok()) {
        std::fprintf(stderr, "%s\n", std::string(published.message()).c_str());
        return 1;
      }
      Clock::time_point t1;
      if (!arrivals.Wait(absl::Minutes(5), &t1)) {
        std::fprintf(stderr, "version %lld did not reach %d subscribers in 5 minutes\n",
                     static_cast<long long>(version), count);
        return 1;
      }
      if (i > 0) {
        seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
        publish_seconds.push_back(std::chrono::duration<double>(t_published - t0).count());
      }
    }
    for (auto& client : clients) client->Stop();
    clients.clear();
    service->Shutdown();
    started->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(30));
    service.reset();
    std::sort(seconds.begin(), seconds.end());
    std::sort(publish_seconds.begin(), publish_seconds.end());
    results.push_back({count, seconds[seconds.size() / 2], seconds.front(), seconds.back(),
                       publish_seconds[publish_seconds.size() / 2]});
    std::printf("%d subscribers: median %.3f s (min %.3f, max %.3f) over %zu versions; "
                "Publish call median %.4f s\n",
                count, results.back().median_s, results.back().min_s, results.back().max_s,
                seconds.size(), results.back().publish_s);
    std::fflush(stdout);
  }
  std::printf(
      "\n| subscribers | median s | min s | max s | delivered MB/s (median) | Publish call ms |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  for (const Result& r : results) {
    std::printf("| %d | %.3f | %.3f | %.3f | %.0f | %.2f |\n", r.subscribers, r.median_s,
                r.min_s, r.max_s, r.subscribers * (bytes / 1e6) / r.median_s, r.publish_s * 1e3);
  }
  return 0;
}

}  // namespace
}  // namespace dreamfleet

int main(int argc, char** argv) { return dreamfleet::Run(argc, argv); }
