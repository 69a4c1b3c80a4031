// bench_replay: replay shard throughput over loopback, restart time after kill -9 and RAM per
// stored step. Figures go to BENCHMARKS.md ("bench_replay").
//   1. insert: 64x64x3 uint8 images in chunks of 32 steps from 1, 4 and 16 concurrent writers
//      into 1 and 2 real dreamfleet-replay processes (WAL with the default 20 ms fsync batching).
//   2. sample: 16 x 64 batches pulled over one Sample stream from an in-process shard, against a
//      no-op ReplayService that streams a prebuilt response of the same size (same process, same
//      loopback): the gap is what the table costs.
//   3. restart: a real shard holding --restart-steps steps (--restart-image sized images) is
//      killed with SIGKILL and restarted; time from exec to "listening on" (WAL replay).
//   4. RAM per stored step: resident memory growth of the shard process / stored steps.
//   5. --idle-streams N (alone): N Insert streams opened and left idle against a shard without
//      a stream cap and with the default replay.max_streams: streams served, threads and RSS.
//   6. --certs DIR: insert and sample over TLS with role tokens against plaintext; with
//      --split-cores the shard processes run on CPU 0 and this process on CPU 1 (two machines of
//      one core each, on one host).
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/barrier.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "dreamfleet/v1/replay.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "replay_server/replay_service.h"
#include "replay_server/replay_shard.h"
#include "replay_server/sharded_replay_client.h"
#include "services/command_line.h"
#include "services/grpc_util.h"
#include "services/hash.h"
#include "services/logging.h"
#include "services/metrics.h"
#include "services/status_macros.h"
#include "services/step_columns.h"
#include "tests/test_process.h"

namespace dreamfleet::replay {
namespace {

using dreamfleet::testing::TestProcess;

std::string BinDir() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  std::string self(path, n > 0 ? n : 0);
  return self.substr(0, self.rfind('/'));
}

uint64_t RssBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// A chunk of `steps` steps with [size, size, 3] images (noisy, so zstd has real work).
StepChunk MakeChunk(const std::string& actor, uint64_t sequence, uint32_t steps, int size,
                    uint32_t seed) {
  StepChunk chunk;
  chunk.actor_id = actor;
  chunk.sequence = sequence;
  chunk.num_steps = steps;
  std::mt19937 rng(seed);
  services::StepColumns columns({size, size, 3, 0, 0});
  std::vector<uint8_t> image(size_t{steps} * size * size * 3);
  for (uint8_t& c : image) c = static_cast<uint8_t>(rng() & 0x3f);
  for (uint32_t i = 0; i < steps; ++i) {
    services::StepRecord step;
    step.image = image.data() + size_t{i} * size * size * 3;
    step.is_first = sequence == 0 && i == 0;
    columns.Append(step);
  }
  chunk.fields = columns.ToTensors();
  return chunk;
}

size_t StepBytes(int size) { return static_cast<size_t>(size) * size * 3 + 4 + 4 + 3; }

struct Shards {
  std::vector<std::unique_ptr<TestProcess>> processes;
  std::vector<std::string> addresses;
};

absl::StatusOr<Shards> StartShards(int count, const std::string& root,
                                   const std::vector<std::string>& sets) {
  Shards shards;
  for (int i = 0; i < count; ++i) {
    std::vector<std::string> argv = {BinDir() + "/dreamfleet-replay",
                                     "--shard-index", absl::StrCat(i),
                                     "--set", absl::StrCat("replay.shards=", count),
                                     "--set", "replay.port=0",
                                     "--set", "replay.metrics_port=0",
                                     "--set", absl::StrCat("replay.data_dir=", root, "/shard-", i),
                                     "--set", "replay.samples_per_insert=0",
                                     "--set", "run.log_level=warning"};
    for (const std::string& s : sets) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    absl::StatusOr<std::unique_ptr<TestProcess>> process = TestProcess::Start(argv);
    if (!process.ok()) return process.status();
    absl::StatusOr<int> port = (*process)->WaitForPort("listening on ");
    if (!port.ok()) return port.status();
    shards.addresses.push_back(absl::StrCat("127.0.0.1:", *port));
    shards.processes.push_back(std::move(*process));
  }
  return shards;
}

// Pins every thread of process `pid` (0: this process) to CPU `cpu`. Threads started later
// inherit the mask of the thread that starts them; a second pass catches threads started while
// the first ran.
absl::Status PinProcess(pid_t pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  const std::string tasks = pid == 0 ? "/proc/self/task" : absl::StrCat("/proc/", pid, "/task");
  for (int pass = 0; pass < 2; ++pass) {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(tasks, error)) {
      const pid_t tid = std::stoi(entry.path().filename().string());
      if (sched_setaffinity(tid, sizeof(set), &set) != 0 && errno != ESRCH) {
        return absl::InternalError(
            absl::StrCat("cannot pin thread ", tid, " to CPU ", cpu, ": ", std::strerror(errno)));
      }
    }
    if (error) return absl::InternalError(absl::StrCat(tasks, ": ", error.message()));
  }
  return absl::OkStatus();
}

// Actor ids spread evenly over the shards (FNV-1a routing).
std::vector<std::string> ActorIds(int count, int shards) {
  std::vector<std::string> ids;
  for (int k = 0; k < count; ++k) {
    for (int salt = 0;; ++salt) {
      std::string id = absl::StrCat("bench-", k, "-", salt);
      if (static_cast<int>(services::Fnv1a64(id) % shards) == k % shards) {
        ids.push_back(id);
        break;
      }
    }
  }
  return ids;
}

// Sends `chunks_per_writer` chunks from each writer concurrently; returns the seconds taken.
absl::StatusOr<double> InsertConcurrently(ShardedReplayClient* client,
                                          const std::vector<std::string>& actors,
                                          uint64_t chunks_per_writer, uint32_t steps, int size,
                                          uint64_t first_sequence = 0) {
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(actors.size());
  // Chunks are built before the clock starts; each writer resends its prebuilt payload.
  std::vector<StepChunk> prebuilt;
  for (size_t w = 0; w < actors.size(); ++w) {
    prebuilt.push_back(MakeChunk(actors[w], 0, steps, size, static_cast<uint32_t>(w)));
  }
  const absl::Time start = absl::Now();
  for (size_t w = 0; w < actors.size(); ++w) {
    threads.emplace_back([&, w] {
      std::unique_ptr<InsertWriter> writer = client->NewWriter(actors[w]);
      for (uint64_t i = 0; i < chunks_per_writer; ++i) {
        StepChunk chunk = prebuilt[w];
        chunk.sequence = first_sequence + i;
        if (absl::Status s = writer->Send(std::move(chunk)); !s.ok()) {
          results[w] = s;
          return;
        }
      }
      results[w] = writer->Close();
    });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return seconds;
}

void BenchInsert(const std::string& root, uint64_t steps_total) {
  std::cout << "\n## insert: 64x64x3 images, chunks of 32 steps, loopback, WAL fsync every 20 ms\n"
            << absl::StrFormat("%-7s %-8s %12s %10s %14s\n", "shards", "writers", "steps/s",
                               "MB/s", "RSS/step (B)");
  for (int shards : {1, 2}) {
    for (int writers : {1, 4, 16}) {
      const std::string dir = absl::StrCat(root, "/insert-", shards, "-", writers);
      absl::StatusOr<Shards> started =
          StartShards(shards, dir, {"replay.capacity_steps=1000000", "replay.sequence_length=64",
                                    "learner.batch_length=64"});
      if (!started.ok()) {
        std::cerr << started.status() << "\n";
        return;
      }
      std::vector<uint64_t> rss_before;
      for (auto& p : started->processes) rss_before.push_back(RssBytes(p->pid()));
      ReplayClientOptions options;
      options.addresses = started->addresses;
      auto client = ShardedReplayClient::Create(options);
      const uint64_t chunks = std::max<uint64_t>(1, steps_total / 32 / writers);
      absl::StatusOr<double> seconds =
          InsertConcurrently(client->get(), ActorIds(writers, shards), chunks, 32, 64);
      if (!seconds.ok()) {
        std::cerr << seconds.status() << "\n";
        return;
      }
      const double steps = static_cast<double>(chunks * 32 * writers);
      uint64_t grown = 0;
      for (size_t i = 0; i < started->processes.size(); ++i) {
        grown += RssBytes(started->processes[i]->pid()) - rss_before[i];
      }
      std::cout << absl::StrFormat("%-7d %-8d %12.0f %10.1f %14.0f\n", shards, writers,
                                   steps / *seconds, steps * StepBytes(64) / *seconds / 1e6,
                                   grown / steps);
      for (auto& p : started->processes) p->Kill();  // skip the shutdown checkpoint
    }
  }
}

// Streams a prebuilt batch `num_batches` times: the transport alone.
class NoopReplayService final : public v1::ReplayService::Service {
 public:
  explicit NoopReplayService(v1::SampleResponse batch) : batch_(std::move(batch)) {}
  grpc::Status Sample(grpc::ServerContext* context, const v1::SampleRequest* request,
                      grpc::ServerWriter<v1::SampleResponse>* writer) override {
    for (int64_t i = 0; i < request->num_batches(); ++i) {
      if (!writer->Write(batch_)) break;
    }
    return grpc::Status::OK;
  }

 private:
  const v1::SampleResponse batch_;
};

// Batches read from a Sample stream before the clock starts.
constexpr int kWarmupBatches = 5;

// The request of the sample figures: 16 x 64 batches, `batches` timed after the warm-up ones.
v1::SampleRequest TimedSampleRequest(int batches) {
  v1::SampleRequest request;
  request.set_batch_size(16);
  request.set_sequence_length(64);
  request.set_num_batches(batches + kWarmupBatches);
  return request;
}

// Pulls `batches` B x T batches over one stream; returns batches/s and the bytes of one batch.
std::pair<double, size_t> PullBatches(const std::string& address, int batches,
                                      const services::ChannelOptions& channel = {}) {
  auto stub = v1::ReplayService::NewStub(services::CreateChannel(address, channel));
  grpc::ClientContext context;
  auto reader = stub->Sample(&context, TimedSampleRequest(batches));
  v1::SampleResponse response;
  size_t bytes = 0;
  for (int i = 0; i < kWarmupBatches; ++i) reader->Read(&response);
  const absl::Time start = absl::Now();
  int got = 0;
  while (got < batches && reader->Read(&response)) ++got;
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (const auto& t : response.data()) bytes += t.tensor().data().size();
  (void)reader->Finish();
  return {got / seconds, bytes};
}

// Pulls `batches` batches on each of `streams` Sample streams at once, each over a connection of
// its own (TLS work is per connection); returns the batches/s of all streams together, timed from
// the moment every stream has its warm-up batches until the last one ends.
double PullBatchesConcurrently(const std::string& address, int batches, int streams,
                               const services::ChannelOptions& channel = {}) {
  if (streams <= 1) return PullBatches(address, batches, channel).first;
  absl::Barrier* warmed = new absl::Barrier(streams);  // deleted by the last thread through it
  absl::Mutex mu;
  absl::Time start = absl::InfinitePast(), end = absl::InfinitePast();
  int total = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back([&, i] {
      // Channels with equal arguments share one connection (gRPC's subchannel pool); a keepalive
      // a millisecond apart keeps them apart.
      services::ChannelOptions own = channel;
      own.keepalive += absl::Milliseconds(i);
      auto stub = v1::ReplayService::NewStub(services::CreateChannel(address, own));
      grpc::ClientContext context;
      auto reader = stub->Sample(&context, TimedSampleRequest(batches));
      v1::SampleResponse response;
      for (int k = 0; k < kWarmupBatches; ++k) reader->Read(&response);
      if (warmed->Block()) delete warmed;
      {
        absl::MutexLock lock(&mu);
        if (start == absl::InfinitePast()) start = absl::Now();
      }
      int got = 0;
      while (got < batches && reader->Read(&response)) ++got;
      (void)reader->Finish();
      absl::MutexLock lock(&mu);
      total += got;
      end = std::max(end, absl::Now());
    });
  }
  for (auto& thread : threads) thread.join();
  return total / absl::ToDoubleSeconds(end - start);
}

// An in-process shard in `dir` holding 8192 steps of `image`x`image`x3 images from 4 streams
// (the sample figures' table).
absl::StatusOr<std::unique_ptr<ReplayShard>> OpenSampleShard(const std::string& dir,
                                                             services::Metrics* metrics,
                                                             int image = 64) {
  ShardOptions options;
  options.data_dir = dir;
  options.table.sequence_length = 64;
  options.table.capacity_steps = 100000;
  absl::StatusOr<std::unique_ptr<ReplayShard>> shard = ReplayShard::Open(options, metrics);
  if (!shard.ok()) return shard;
  // 8192 steps from 4 streams.
  for (int a = 0; a < 4; ++a) {
    for (uint64_t i = 0; i < 64; ++i) {
      StepChunk chunk = MakeChunk(absl::StrCat("s", a), i, 32, image, a * 1000 + i);
      v1::Chunk proto;
      proto.set_actor_id(chunk.actor_id);
      proto.set_sequence(chunk.sequence);
      proto.set_num_steps(chunk.num_steps);
      for (const services::NamedTensor& t : chunk.fields) {
        v1::NamedTensor* named = proto.add_data();
        named->set_name(t.name);
        named->mutable_tensor()->set_dtype(t.dtype);
        for (int64_t d : t.shape) named->mutable_tensor()->add_shape(d);
        named->mutable_tensor()->set_data(t.data);
      }
      auto pending = (*shard)->Insert(proto, absl::InfiniteFuture());
      if (pending.ok()) (void)(*shard)->WaitDurable(pending->lsn);
    }
  }
  return shard;
}

void BenchSample(const std::string& root, int batches) {
  services::Metrics metrics;
  auto shard = OpenSampleShard(root + "/sample", &metrics);
  if (!shard.ok()) {
    std::cerr << shard.status() << "\n";
    return;
  }
  ReplayServiceImpl service(shard->get(), &metrics, {});
  auto server = services::StartGrpcServer("127.0.0.1", 0, {&service}, 256 << 20);
  v1::SampleResponse prebuilt;
  (void)(*shard)->table()->Sample(16, 64, absl::InfiniteFuture(), &prebuilt);
  NoopReplayService noop(prebuilt);
  auto noop_server = services::StartGrpcServer("127.0.0.1", 0, {&noop}, 256 << 20);
  if (!server.ok() || !noop_server.ok()) {
    std::cerr << "cannot start the sample servers\n";
    return;
  }
  // Three alternating rounds, best of each: the machine is shared, so the best round is the one
  // least disturbed by other work.
  double table_rate = 0, noop_rate = 0;
  size_t bytes = 0, noop_bytes = 0;
  for (int round = 0; round < 3; ++round) {
    auto [t, tb] = PullBatches(absl::StrCat("127.0.0.1:", server->port), batches);
    auto [n, nb] = PullBatches(absl::StrCat("127.0.0.1:", noop_server->port), batches);
    table_rate = std::max(table_rate, t);
    noop_rate = std::max(noop_rate, n);
    bytes = tb;
    noop_bytes = nb;
  }
  std::cout << "\n## sample: 16 x 64 batches of 64x64x3 images over one stream (table of 8192 steps; best of 3 "
               "alternating rounds)\n"
            << absl::StrFormat("%-22s %10s %10s\n", "server", "batches/s", "MB/s")
            << absl::StrFormat("%-22s %10.1f %10.1f\n", "replay table", table_rate,
                               table_rate * bytes / 1e6)
            << absl::StrFormat("%-22s %10.1f %10.1f\n", "no-op stream, same bytes", noop_rate,
                               noop_rate * noop_bytes / 1e6)
            << absl::StrFormat("table / no-op: %.0f%%  (batch = %.1f MB)\n",
                               100.0 * table_rate / noop_rate, bytes / 1e6);
  (*shard)->Close();
  server->server->Shutdown();
  noop_server->server->Shutdown();
}

// The security config deploy/certs.sh writes into `dir`: TLS and a token per role.
services::SecurityConfig CertsConfig(const std::string& dir) {
  services::SecurityConfig security;
  security.ca_file = dir + "/ca.pem";
  security.cert_file = dir + "/cert.pem";
  security.key_file = dir + "/key.pem";
  security.actor_token_file = dir + "/actor.token";
  security.learner_token_file = dir + "/learner.token";
  security.reader_token_file = dir + "/reader.token";
  return security;
}

// Insert (4 writers into a real shard process) and sample (`sample_streams` streams from an
// in-process shard) over plaintext and over TLS with role tokens, alternating, best of 3 rounds
// each; steps carry `image`x`image`x3 images. With `split_cores` (this process already pinned to
// CPU 1) the shard processes are pinned to CPU 0 and the sample half pulls from two real shard
// processes (plaintext and TLS) instead, so that each side has a core of its own.
void BenchSecurity(const std::string& root, const std::string& certs, uint64_t steps_total,
                   int batches, int sample_streams, int image, bool split_cores) {
  const services::SecurityConfig secure = CertsConfig(certs);
  const std::vector<std::string> secure_sets = {
      "security.ca_file=" + secure.ca_file,
      "security.cert_file=" + secure.cert_file,
      "security.key_file=" + secure.key_file,
      "security.actor_token_file=" + secure.actor_token_file,
      "security.learner_token_file=" + secure.learner_token_file,
      "security.reader_token_file=" + secure.reader_token_file};
  absl::StatusOr<services::ClientSecurity> actor =
      services::MakeClientSecurity(secure, services::Role::kActor);
  absl::StatusOr<services::ClientSecurity> learner =
      services::MakeClientSecurity(secure, services::Role::kLearner);
  absl::StatusOr<services::ServerSecurity> server_security = services::MakeServerSecurity(secure);
  if (!actor.ok() || !learner.ok() || !server_security.ok()) {
    std::cerr << "--certs " << certs << ": "
              << (!actor.ok()     ? actor.status()
                  : !learner.ok() ? learner.status()
                                  : server_security.status())
              << "\n";
    return;
  }
  // A shard process in `dir` for `capacity` steps, with TLS + tokens when `tls` (pinned to CPU 0
  // with split_cores), and an actor's client of it.
  struct ComparedShard {
    Shards shards;
    std::unique_ptr<ShardedReplayClient> client;
  };
  auto start_shard = [&](const std::string& dir, uint64_t capacity,
                         bool tls) -> absl::StatusOr<ComparedShard> {
    std::vector<std::string> sets = {absl::StrCat("replay.capacity_steps=", capacity),
                                     "replay.sequence_length=64", "learner.batch_length=64"};
    if (tls) sets.insert(sets.end(), secure_sets.begin(), secure_sets.end());
    ComparedShard started;
    ASSIGN_OR_RETURN(started.shards, StartShards(1, dir, sets));
    if (split_cores) RETURN_IF_ERROR(PinProcess(started.shards.processes[0]->pid(), 0));
    ReplayClientOptions options;
    options.addresses = started.shards.addresses;
    if (tls) options.security = *actor;
    ASSIGN_OR_RETURN(started.client, ShardedReplayClient::Create(options));
    return started;
  };
  double insert_rate[2] = {0, 0};
  for (int round = 0; round < 3; ++round) {
    for (int tls = 0; tls < 2; ++tls) {
      absl::StatusOr<ComparedShard> started =
          start_shard(absl::StrCat(root, "/security-", round, "-", tls), 1000000, tls);
      if (!started.ok()) {
        std::cerr << started.status() << "\n";
        return;
      }
      const uint64_t chunks = std::max<uint64_t>(1, steps_total / 32 / 4);
      absl::StatusOr<double> seconds =
          InsertConcurrently(started->client.get(), ActorIds(4, 1), chunks, 32, image);
      if (!seconds.ok()) {
        std::cerr << seconds.status() << "\n";
        return;
      }
      insert_rate[tls] = std::max(insert_rate[tls], chunks * 32 * 4 / *seconds);
      for (auto& p : started->shards.processes) p->Kill();
    }
  }
  services::ChannelOptions tls_channel;
  tls_channel.max_message_bytes = 256 << 20;
  tls_channel.security = *learner;
  services::ChannelOptions plain_channel;
  plain_channel.max_message_bytes = 256 << 20;
  std::string sample_address[2];
  // Sample: with split_cores two real shard processes on CPU 0 (plaintext, TLS), each filled with
  // the sample table's 8192 steps by 4 writers; otherwise the same in-process table behind a
  // plaintext and a TLS + token server.
  Shards sample_processes[2];
  services::Metrics metrics;
  std::unique_ptr<ReplayShard> shard;
  std::unique_ptr<ReplayServiceImpl> plain, guarded;
  std::optional<services::StartedServer> plain_server, tls_server;
  if (split_cores) {
    for (int tls = 0; tls < 2; ++tls) {
      absl::StatusOr<ComparedShard> started =
          start_shard(absl::StrCat(root, "/security-sample-", tls), 100000, tls);
      if (!started.ok()) {
        std::cerr << started.status() << "\n";
        return;
      }
      if (absl::StatusOr<double> seconds =
              InsertConcurrently(started->client.get(), ActorIds(4, 1), 64, 32, image);
          !seconds.ok()) {
        std::cerr << seconds.status() << "\n";
        return;
      }
      sample_address[tls] = started->shards.addresses[0];
      sample_processes[tls] = std::move(started->shards);
    }
  } else {
    auto opened = OpenSampleShard(root + "/security-sample", &metrics, image);
    if (!opened.ok()) {
      std::cerr << opened.status() << "\n";
      return;
    }
    shard = std::move(*opened);
    plain = std::make_unique<ReplayServiceImpl>(shard.get(), &metrics, ReplayServiceOptions{});
    ReplayServiceOptions secure_options;
    secure_options.authorizer = server_security->authorizer.get();
    guarded = std::make_unique<ReplayServiceImpl>(shard.get(), &metrics, secure_options);
    auto started_plain = services::StartGrpcServer("127.0.0.1", 0, {plain.get()}, 256 << 20);
    auto started_tls = services::StartGrpcServer("127.0.0.1", 0, {guarded.get()}, 256 << 20,
                                                 server_security->credentials);
    if (!started_plain.ok() || !started_tls.ok()) {
      std::cerr << "cannot start the sample servers\n";
      return;
    }
    plain_server = std::move(*started_plain);
    tls_server = std::move(*started_tls);
    sample_address[0] = absl::StrCat("127.0.0.1:", plain_server->port);
    sample_address[1] = absl::StrCat("127.0.0.1:", tls_server->port);
  }
  double sample_rate[2] = {0, 0};
  for (int round = 0; round < 3; ++round) {
    sample_rate[0] = std::max(
        sample_rate[0],
        PullBatchesConcurrently(sample_address[0], batches, sample_streams, plain_channel));
    sample_rate[1] = std::max(sample_rate[1], PullBatchesConcurrently(sample_address[1], batches,
                                                                      sample_streams, tls_channel));
  }
  const size_t batch_bytes = 16 * 64 * StepBytes(image);
  std::cout << absl::StrFormat(
                   "\n## TLS + role tokens vs plaintext, %dx%dx3 images (%zu B a step, "
                   "%.2f MB a 16x64 batch; best of 3 alternating rounds%s)\n",
                   image, image, StepBytes(image), batch_bytes / 1e6,
                   split_cores ? "; shard processes on CPU 0, clients on CPU 1" : "")
            << absl::StrFormat("%-44s %12s %12s %8s\n", "", "plaintext", "TLS+tokens", "ratio")
            << absl::StrFormat("%-44s %12.0f %12.0f %7.0f%%\n",
                               "insert, 4 writers, 1 shard process (steps/s)", insert_rate[0],
                               insert_rate[1], 100 * insert_rate[1] / insert_rate[0])
            << absl::StrFormat(
                   "%-44s %12.1f %12.1f %7.0f%%\n",
                   absl::StrCat("sample, 16x64 batches, ", sample_streams,
                                sample_streams == 1 ? " stream" : " streams", " (batches/s)"),
                   sample_rate[0], sample_rate[1], 100 * sample_rate[1] / sample_rate[0]);
  for (Shards& processes : sample_processes) {
    for (auto& p : processes.processes) p->Kill();
  }
  if (plain_server) plain_server->server->Shutdown();
  if (tls_server) tls_server->server->Shutdown();
  if (shard) shard->Close();
}

void BenchRestart(const std::string& root, uint64_t steps_total, int image) {
  const std::string dir = root + "/restart";
  const std::vector<std::string> sets = {absl::StrCat("replay.capacity_steps=", steps_total + 1000),
                                         "replay.sequence_length=64", "learner.batch_length=64"};
  absl::StatusOr<Shards> started = StartShards(1, dir, sets);
  if (!started.ok()) {
    std::cerr << started.status() << "\n";
    return;
  }
  const uint64_t rss_empty = RssBytes(started->processes[0]->pid());
  ReplayClientOptions options;
  options.addresses = started->addresses;
  auto client = ShardedReplayClient::Create(options);
  const int writers = 4;
  const uint32_t steps = 64;
  const uint64_t chunks = steps_total / steps / writers;
  absl::StatusOr<double> seconds =
      InsertConcurrently(client->get(), ActorIds(writers, 1), chunks, steps, image);
  if (!seconds.ok()) {
    std::cerr << seconds.status() << "\n";
    return;
  }
  const uint64_t stored = (*client)->Info()[0].size_steps;
  const uint64_t rss_full = RssBytes(started->processes[0]->pid());
  started->processes[0]->Kill();
  uint64_t wal_bytes = 0;
  for (const auto& [index, path] : WriteAheadLog::ListFiles(dir + "/shard-0")) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0) wal_bytes += st.st_size;
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<Shards> restarted = StartShards(1, dir, sets);
  const double restart_s = absl::ToDoubleSeconds(absl::Now() - start);
  if (!restarted.ok()) {
    std::cerr << restarted.status() << "\n";
    return;
  }
  options.addresses = restarted->addresses;
  auto client2 = ShardedReplayClient::Create(options);
  const uint64_t restored = (*client2)->Info()[0].size_steps;
  std::cout << "\n## restart after kill -9 (" << image << "x" << image << "x3 images, "
            << StepBytes(image) << " B/step, WAL only, no checkpoint yet)\n"
            << absl::StrFormat("inserted %d steps in %.1f s (%.0f steps/s, 4 writers, chunks of 64)\n",
                               stored, *seconds, stored / *seconds)
            << absl::StrFormat("WAL on disk: %.0f MB\n", wal_bytes / 1e6)
            << absl::StrFormat("restart to serving: %.2f s, %d steps restored\n", restart_s,
                               restored)
            << absl::StrFormat("RSS growth: %.0f MB = %.0f B per stored step (%d B of step data)\n",
                               (rss_full - rss_empty) / 1e6,
                               double(rss_full - rss_empty) / stored, StepBytes(image));
  restarted->processes[0]->Kill();
}

int ThreadCount(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return 0;
}

// The shard's dreamfleet_replay_open_streams gauge, -1 when unreadable.
int OpenStreams(int metrics_port) {
  absl::StatusOr<std::string> text = services::HttpGet("127.0.0.1", metrics_port, "/metrics");
  if (!text.ok()) return -1;
  const std::string key = "\ndreamfleet_replay_open_streams ";
  const size_t at = text->find(key);
  return at == std::string::npos ? -1 : std::atoi(text->c_str() + at + key.size());
}

void BenchIdleStreams(const std::string& root, int streams) {
  std::cout << "\n## " << streams << " idle Insert streams (opened, nothing sent)\n"
            << "| replay.max_streams | streams served | refused | shard threads | shard RSS |\n"
            << "|---|---|---|---|---|\n";
  for (const int cap : {0, 1024}) {
    absl::StatusOr<Shards> started =
        StartShards(1, absl::StrCat(root, "/idle-", cap),
                    {absl::StrCat("replay.max_streams=", cap), "replay.max_streams_per_client=0"});
    if (!started.ok()) {
      std::cerr << started.status() << "\n";
      return;
    }
    TestProcess& process = *started->processes[0];
    absl::StatusOr<int> metrics_port = process.WaitForPort("metrics on ");
    if (!metrics_port.ok()) {
      std::cerr << metrics_port.status() << "\n";
      return;
    }
    const int threads_before = ThreadCount(process.pid());
    const uint64_t rss_before = RssBytes(process.pid());
    // 100 streams per connection, as many clients would open them.
    std::vector<std::unique_ptr<v1::ReplayService::Stub>> stubs;
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    std::vector<std::unique_ptr<grpc::ClientReaderWriter<v1::InsertRequest, v1::InsertResponse>>>
        calls;
    for (int i = 0; i < streams; ++i) {
      if (i % 100 == 0) {
        grpc::ChannelArguments args;
        args.SetInt("dreamfleet.bench_connection", i / 100);  // its own connection
        stubs.push_back(v1::ReplayService::NewStub(grpc::CreateCustomChannel(
            started->addresses[0], grpc::InsecureChannelCredentials(), args)));
      }
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      calls.push_back(stubs.back()->Insert(contexts.back().get()));
    }
    // Settled: the gauge has not moved for 2 s (or 120 s passed).
    int served = OpenStreams(*metrics_port), same_for = 0;
    for (int waited = 0; waited < 600 && same_for < 10; ++waited) {
      absl::SleepFor(absl::Milliseconds(200));
      const int now = OpenStreams(*metrics_port);
      same_for = now == served ? same_for + 1 : 0;
      served = now;
    }
    const int threads = ThreadCount(process.pid());
    const uint64_t rss = RssBytes(process.pid());
    std::cout << absl::StrFormat("| %s | %d | %d | %d (%d before) | %.0f MB (%.0f MB before) |\n",
                                 cap == 0 ? "0 (no cap)" : absl::StrCat(cap), served,
                                 streams - served, threads, threads_before, rss / 1e6,
                                 rss_before / 1e6)
              << std::flush;
    for (auto& context : contexts) context->TryCancel();
    for (auto& call : calls) (void)call->Finish();
    process.Kill();
  }
}

int Run(int argc, char** argv) {
  services::CommandLine command_line("bench_replay [flags]", "Replay shard throughput.");
  int64_t insert_steps = 16384, sample_batches = 200, restart_steps = 1000000, restart_image = 16;
  bool skip_restart = false;
  command_line.AddInt("insert-steps", &insert_steps, "Steps per insert configuration.");
  command_line.AddInt("sample-batches", &sample_batches, "Batches timed per sample server.");
  command_line.AddInt("restart-steps", &restart_steps, "Steps stored before kill -9.");
  command_line.AddInt("restart-image", &restart_image, "Image side for the restart figure.");
  command_line.AddBool("skip-restart", &skip_restart, "Skip the restart figure.");
  std::string certs;
  bool only_security = false;
  command_line.AddString("certs", &certs,
                         "A directory made by deploy/certs.sh: also measure insert and sample "
                         "over TLS with role tokens against plaintext.");
  command_line.AddBool("only-security", &only_security,
                       "With --certs: measure only the TLS + tokens comparison.");
  int64_t sample_streams = 1;
  command_line.AddInt("sample-streams", &sample_streams,
                      "With --certs: Sample streams pulled at once in the TLS + tokens "
                      "comparison, each over a connection of its own (batches/s of all of them "
                      "together).");
  int64_t security_image = 64;
  command_line.AddInt("security-image", &security_image,
                      "With --certs: image side of the steps in the TLS + tokens comparison "
                      "(64: 64x64x3 images, 12 KB a step; 32: 3 KB; 10: 311 B; a MinAtar grid "
                      "step, 400 float32 cells, is ~1.6 KB).");
  bool split_cores = false;
  command_line.AddBool("split-cores", &split_cores,
                       "With --certs: run the shard processes on CPU 0 and this process (the "
                       "clients) on CPU 1, and sample from real shard processes, so that the "
                       "server's and the clients' TLS work do not share a core (two machines of "
                       "one core each, emulated on one host; needs 2 CPUs).");
  int64_t idle_streams = 0;
  command_line.AddInt("idle-streams", &idle_streams,
                      "Measure only this: open N idle Insert streams against a shard without a "
                      "stream cap and with the default replay.max_streams; report the streams "
                      "served, the shard's threads and its RSS.");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (sample_streams < 1 || sample_streams > 64) {
    std::cerr << "--sample-streams " << sample_streams << ": must be in [1, 64]\n";
    return 2;
  }
  if (security_image < 1 || security_image > 256) {
    std::cerr << "--security-image " << security_image << ": must be in [1, 256]\n";
    return 2;
  }
  if (split_cores && certs.empty()) {
    std::cerr << "--split-cores needs --certs\n";
    return 2;
  }
  if (split_cores) {
    // Before any thread starts: every thread of this process then inherits CPU 1.
    if (absl::Status s = PinProcess(0, 1); !s.ok()) {
      std::cerr << "--split-cores: " << s << " (this machine has "
                << std::thread::hardware_concurrency() << " CPUs)\n";
      return 2;
    }
  }
  services::SetLogLevel(services::LogSeverity::kWarning);
  std::string pattern = "/tmp/bench_replay_XXXXXX";
  const std::string root = mkdtemp(pattern.data());
  std::cout << "# bench_replay (data in " << root << ")\n";
  if (idle_streams > 0) {
    BenchIdleStreams(root, static_cast<int>(idle_streams));
  } else if (!only_security) {
    BenchInsert(root, static_cast<uint64_t>(insert_steps));
    BenchSample(root, static_cast<int>(sample_batches));
    if (!skip_restart) BenchRestart(root, restart_steps, static_cast<int>(restart_image));
  }
  if (!certs.empty() && idle_streams == 0) {
    BenchSecurity(root, certs, static_cast<uint64_t>(insert_steps),
                  static_cast<int>(sample_batches), static_cast<int>(sample_streams),
                  static_cast<int>(security_image), split_cores);
  }
  std::string remove = "rm -rf " + root;
  (void)std::system(remove.c_str());
  return 0;
}

}  // namespace
}  // namespace dreamfleet::replay

int main(int argc, char** argv) { return dreamfleet::replay::Run(argc, argv); }
