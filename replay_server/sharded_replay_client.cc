#include "replay_server/sharded_replay_client.h"

#include <algorithm>
#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "dreamfleet/v1/replay.grpc.pb.h"
#include "services/grpc_util.h"
#include "services/hash.h"
#include "services/logging.h"

namespace dreamfleet::replay {
namespace {

bool IsPermanent(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kNotFound ||
         code == absl::StatusCode::kFailedPrecondition ||
         code == absl::StatusCode::kResourceExhausted || code == absl::StatusCode::kOutOfRange ||
         code == absl::StatusCode::kUnimplemented ||
         // A token the shard does not accept stays unaccepted: fail with its message.
         code == absl::StatusCode::kUnauthenticated || code == absl::StatusCode::kPermissionDenied;
}

// Moves the (large) data out of `named`.
services::NamedTensor FromProto(v1::NamedTensor* named) {
  services::NamedTensor t;
  t.name = named->name();
  t.dtype = named->tensor().dtype();
  t.shape.assign(named->tensor().shape().begin(), named->tensor().shape().end());
  t.data = std::move(*named->mutable_tensor()->mutable_data());
  return t;
}

}  // namespace

struct ShardedReplayClient::Shard {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ReplayService::Stub> stub;
  // Guarded by the client's mu_.
  bool up = true;
  bool size_known = false;
  uint64_t size_steps = 0;
  absl::Duration backoff;
  absl::Time retry_at = absl::InfinitePast();
  prometheus::Gauge* up_gauge = nullptr;
  prometheus::Counter* reconnects = nullptr;
  // The shard's open Sample stream; declared after the stub so it is shut down first.
  absl::Mutex stream_mu;
  std::shared_ptr<SampleStream> sample_stream ABSL_GUARDED_BY(stream_mu);
};

// One Sample server stream (num_batches = 0) of one shard for one B x T. A reader thread pulls
// batches into a queue of at most kQueued; while it is full the thread stops reading and gRPC
// flow control holds the server back. Destruction cancels the call and joins the thread.
class ShardedReplayClient::SampleStream {
 public:
  enum class Outcome { kBatch, kTimedOut, kEnded };

  SampleStream(v1::ReplayService::Stub* stub, const v1::SampleRequest& request)
      : batch_size_(request.batch_size()),
        sequence_length_(request.sequence_length()),
        timeout_ms_(request.timeout_ms()) {
    reader_ = stub->Sample(&context_, request);
    thread_ = std::thread([this] { Run(); });
  }
  SampleStream(const SampleStream&) = delete;
  SampleStream& operator=(const SampleStream&) = delete;
  ~SampleStream() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    context_.TryCancel();
    thread_.join();
  }

  bool Matches(const v1::SampleRequest& request) const {
    return request.batch_size() == batch_size_ &&
           request.sequence_length() == sequence_length_ && request.timeout_ms() == timeout_ms_;
  }
  // Ends the call early; Next() then returns the queued batches, then kEnded.
  void Cancel() { context_.TryCancel(); }

  // The next batch (kBatch), or kTimedOut when none came by `deadline` (the stream stays open),
  // or kEnded with the call's final status once the stream is over and drained.
  Outcome Next(absl::Time deadline, v1::SampleResponse* response, grpc::Status* status) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !queue_.empty() || ended_;
    };
    mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
    if (!queue_.empty()) {
      response->Swap(&queue_.front());
      queue_.pop_front();
      return Outcome::kBatch;
    }
    if (ended_) {
      *status = status_;
      return Outcome::kEnded;
    }
    return Outcome::kTimedOut;
  }

 private:
  static constexpr size_t kQueued = 1;

  void Run() {
    v1::SampleResponse response;
    while (reader_->Read(&response)) {
      absl::MutexLock lock(&mu_);
      queue_.emplace_back();
      queue_.back().Swap(&response);
      auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || queue_.size() < kQueued;
      };
      mu_.Await(absl::Condition(&room));
      if (stopping_) break;
    }
    // Stopping: the context is (being) cancelled, so the remaining reads end promptly.
    while (reader_->Read(&response)) {
    }
    const grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    ended_ = true;
    status_ = status;
  }

  const int batch_size_;
  const int sequence_length_;
  const int64_t timeout_ms_;  // the shard's per-batch wait for the rate limiter
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::SampleResponse>> reader_;
  absl::Mutex mu_;
  std::deque<v1::SampleResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

ReplayClientOptions ReplayClientOptionsFromConfig(const services::Config& config,
                                                  services::Metrics* metrics) {
  ReplayClientOptions options;
  options.addresses = ShardAddresses(config.replay);
  options.table = config.replay.table;
  options.max_message_bytes = static_cast<int>(config.replay.max_message_mb) << 20;
  options.metrics = metrics;
  return options;
}

absl::StatusOr<std::unique_ptr<ShardedReplayClient>> ShardedReplayClient::Create(
    ReplayClientOptions options) {
  if (options.addresses.empty()) {
    return absl::InvalidArgumentError("a replay client needs at least one shard address");
  }
  return std::unique_ptr<ShardedReplayClient>(new ShardedReplayClient(std::move(options)));
}

ShardedReplayClient::ShardedReplayClient(ReplayClientOptions options)
    : options_(std::move(options)), rng_(std::random_device()()) {
  services::ChannelOptions channel_options;
  channel_options.max_message_bytes = options_.max_message_bytes;
  channel_options.max_reconnect_backoff = options_.max_backoff;
  channel_options.security = options_.security;
  for (size_t i = 0; i < options_.addresses.size(); ++i) {
    auto shard = std::make_unique<Shard>();
    shard->address = options_.addresses[i];
    shard->channel = services::CreateChannel(shard->address, channel_options);
    shard->stub = v1::ReplayService::NewStub(shard->channel);
    shard->backoff = options_.min_backoff;
    if (options_.metrics != nullptr) {
      const services::Labels labels = {{"shard", absl::StrCat(i)}};
      shard->up_gauge = &options_.metrics->Gauge(
          "dreamfleet_replay_client_shard_up", "1 while the replay shard answers, else 0.", labels);
      shard->reconnects = &options_.metrics->Counter(
          "dreamfleet_replay_client_reconnects_total",
          "Times a replay shard came back after being down (or a stream was reopened).", labels);
      shard->up_gauge->Set(1);
    }
    shards_.push_back(std::move(shard));
  }
}

ShardedReplayClient::~ShardedReplayClient() {
  // Shut the sample streams down (cancel, join their readers) before the channels go.
  for (auto& shard : shards_) {
    std::shared_ptr<SampleStream> stream;
    {
      absl::MutexLock lock(&shard->stream_mu);
      stream = std::move(shard->sample_stream);
    }
  }
}

int ShardedReplayClient::ShardForActor(const std::string& actor_id) const {
  return static_cast<int>(services::Fnv1a64(actor_id) % shards_.size());
}

void ShardedReplayClient::MarkUp(int index, uint64_t size_steps, bool size_known) {
  absl::MutexLock lock(&mu_);
  Shard& shard = *shards_[index];
  if (!shard.up) {
    DF_LOG(INFO) << "replay shard " << index << " (" << shard.address << ") is back";
    if (shard.reconnects != nullptr) shard.reconnects->Increment();
  }
  shard.up = true;
  shard.backoff = options_.min_backoff;
  if (size_known) {
    shard.size_known = true;
    shard.size_steps = size_steps;
  }
  if (shard.up_gauge != nullptr) shard.up_gauge->Set(1);
}

void ShardedReplayClient::MarkDown(int index, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  Shard& shard = *shards_[index];
  if (shard.up) {
    DF_LOG(WARNING) << "replay shard " << index << " (" << shard.address << ") is down: "
                    << status.message();
  } else {
    shard.backoff = std::min(shard.backoff * 2, options_.max_backoff);
  }
  shard.up = false;
  shard.retry_at = absl::Now() + shard.backoff;
  if (shard.up_gauge != nullptr) shard.up_gauge->Set(0);
}

std::vector<int> ShardedReplayClient::SampleOrder() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  std::vector<int> order;
  std::vector<int> candidates;
  std::vector<double> weights;
  for (size_t i = 0; i < shards_.size(); ++i) {
    const Shard& shard = *shards_[i];
    if (!shard.up && now < shard.retry_at) continue;  // backing off
    candidates.push_back(static_cast<int>(i));
    // Unknown sizes weigh like the largest known so a fresh shard is tried.
    weights.push_back(shard.size_known ? static_cast<double>(shard.size_steps) : -1.0);
  }
  double largest = 1;
  for (double w : weights) largest = std::max(largest, w);
  for (double& w : weights) {
    if (w < 0) w = largest;
  }
  // Draw without replacement, proportional to size.
  while (!candidates.empty()) {
    double total = 0;
    for (double w : weights) total += w;
    size_t pick = 0;
    if (total > 0) {
      double u = std::uniform_real_distribution<double>(0, total)(rng_);
      for (pick = 0; pick + 1 < weights.size() && u >= weights[pick]; ++pick) u -= weights[pick];
    } else {
      pick = std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_);
    }
    order.push_back(candidates[pick]);
    candidates.erase(candidates.begin() + pick);
    weights.erase(weights.begin() + pick);
  }
  return order;
}

std::shared_ptr<ShardedReplayClient::SampleStream> ShardedReplayClient::OpenSampleStream(
    int index, int batch_size, int sequence_length, absl::Duration timeout, bool* opened) {
  Shard& shard = *shards_[index];
  v1::SampleRequest request;
  request.set_table(options_.table);
  request.set_batch_size(batch_size);
  request.set_sequence_length(sequence_length);
  request.set_num_batches(0);  // until cancelled
  request.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
  std::shared_ptr<SampleStream> replaced;  // released after the lock, by its last holder
  absl::MutexLock lock(&shard.stream_mu);
  if (shard.sample_stream != nullptr && shard.sample_stream->Matches(request)) {
    *opened = false;
    return shard.sample_stream;
  }
  replaced = std::move(shard.sample_stream);
  shard.sample_stream = std::make_shared<SampleStream>(shard.stub.get(), request);
  *opened = true;
  return shard.sample_stream;
}

void ShardedReplayClient::DropSampleStream(int index, const std::shared_ptr<SampleStream>& stream) {
  Shard& shard = *shards_[index];
  {
    absl::MutexLock lock(&shard.stream_mu);
    if (shard.sample_stream == stream) shard.sample_stream.reset();
  }
  stream->Cancel();  // other callers waiting on it see it end; the last holder joins it
}

absl::StatusOr<SampledBatch> ShardedReplayClient::Sample(int batch_size, int sequence_length,
                                                         absl::Duration timeout) {
  std::vector<int> order = SampleOrder();
  if (order.empty()) {
    return absl::UnavailableError(absl::StrCat("every one of the ", shards_.size(),
                                               " replay shards is down; retrying with backoff"));
  }
  absl::Status last;
  for (int index : order) {
    Shard& shard = *shards_[index];
    // The shard ends the stream with DEADLINE_EXCEEDED when the rate limiter holds a batch back
    // for `timeout`; that verdict is waited for (so no batch is drawn for a caller that gave up).
    // The client's own limit, as for a unary call, is timeout + rpc_timeout: a stuck shard.
    const absl::Time deadline = absl::Now() + timeout + options_.rpc_timeout;
    bool retried = false;
    while (true) {
      bool opened = false;
      std::shared_ptr<SampleStream> stream =
          OpenSampleStream(index, batch_size, sequence_length, timeout, &opened);
      v1::SampleResponse response;
      grpc::Status status;
      const SampleStream::Outcome outcome = stream->Next(deadline, &response, &status);
      if (outcome == SampleStream::Outcome::kBatch) {
        MarkUp(index, response.table_size_steps(), true);
        SampledBatch batch;
        batch.shard = index;
        batch.shard_size_steps = response.table_size_steps();
        for (v1::NamedTensor& t : *response.mutable_data()) batch.fields.push_back(FromProto(&t));
        batch.keys.assign(response.keys().begin(), response.keys().end());
        batch.probabilities.assign(response.probabilities().begin(),
                                   response.probabilities().end());
        return batch;
      }
      // The stream ended or the shard is stuck: the stream goes, the next attempt reopens.
      DropSampleStream(index, stream);
      if (outcome == SampleStream::Outcome::kTimedOut) {
        last = absl::DeadlineExceededError(absl::StrCat(
            "Sample from ", shard.address, ": no batch and no answer within ",
            absl::FormatDuration(timeout + options_.rpc_timeout)));
        MarkUp(index, 0, false);
        break;
      }
      last = services::FromGrpcStatus(status, absl::StrCat("Sample from ", shard.address));
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
        MarkDown(index, last);
        break;
      }
      MarkUp(index, 0, false);
      if (IsPermanent(last.code())) return last;  // the request is wrong for every shard
      // A stream opened by an earlier call may have ended on its own (e.g. the shard's
      // per-batch timeout while nobody was reading): open a fresh one once.
      if (opened || retried) break;
      retried = true;
    }
  }
  return last;
}

absl::StatusOr<uint64_t> ShardedReplayClient::UpdatePriorities(
    int index, const std::vector<uint64_t>& keys, const std::vector<double>& priorities) {
  if (index < 0 || index >= num_shards()) {
    return absl::InvalidArgumentError(absl::StrCat("shard ", index, " is out of range"));
  }
  v1::UpdatePrioritiesRequest request;
  request.set_table(options_.table);
  for (uint64_t k : keys) request.add_keys(k);
  for (double p : priorities) request.add_priorities(p);
  v1::UpdatePrioritiesResponse response;
  grpc::ClientContext context;
  services::SetDeadline(&context, options_.rpc_timeout);
  const grpc::Status status = shards_[index]->stub->UpdatePriorities(&context, request, &response);
  if (!status.ok()) {
    absl::Status s = services::FromGrpcStatus(
        status, absl::StrCat("UpdatePriorities to ", shards_[index]->address));
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) MarkDown(index, s);
    return s;
  }
  return response.updated();
}

std::vector<ShardStats> ShardedReplayClient::Info() {
  std::vector<ShardStats> stats(shards_.size());
  for (size_t i = 0; i < shards_.size(); ++i) {
    stats[i].address = shards_[i]->address;
    v1::InfoRequest request;
    request.set_table(options_.table);
    v1::InfoResponse response;
    grpc::ClientContext context;
    services::SetDeadline(&context, options_.rpc_timeout);
    const grpc::Status status = shards_[i]->stub->Info(&context, request, &response);
    if (!status.ok() || response.tables_size() == 0) {
      absl::Status s = status.ok() ? absl::NotFoundError("no table")
                                   : services::FromGrpcStatus(status, shards_[i]->address);
      stats[i].error = std::string(s.message());
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
          status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        MarkDown(static_cast<int>(i), s);
      }
      continue;
    }
    const v1::TableInfo& table = response.tables(0);
    stats[i].up = true;
    stats[i].size_steps = table.size_steps();
    stats[i].items = table.items();
    stats[i].episodes = table.episodes();
    stats[i].inserted_steps = table.inserted_steps();
    stats[i].sampled_items = table.sampled_items();
    stats[i].bytes = table.bytes();
    MarkUp(static_cast<int>(i), table.size_steps(), true);
  }
  return stats;
}

std::unique_ptr<InsertWriter> ShardedReplayClient::NewWriter(const std::string& stream_id,
                                                             const std::string& actor_id) {
  std::unique_ptr<InsertWriter> writer(new InsertWriter(this, ShardForActor(actor_id), stream_id));
  writer->thread_ = std::thread([w = writer.get()] { w->Run(); });
  return writer;
}

// ---- InsertWriter

InsertWriter::InsertWriter(ShardedReplayClient* client, int shard, std::string actor_id)
    : client_(client), shard_(shard), actor_id_(std::move(actor_id)) {}

InsertWriter::~InsertWriter() { (void)Close(); }

uint64_t InsertWriter::acknowledged() const {
  absl::MutexLock lock(&mu_);
  return acknowledged_;
}

absl::Status InsertWriter::Send(StepChunk chunk) {
  auto request = std::make_shared<v1::InsertRequest>();
  request->set_table(client_->options_.table);
  v1::Chunk* out = request->mutable_chunk();
  out->set_actor_id(chunk.actor_id.empty() ? actor_id_ : chunk.actor_id);
  out->set_sequence(chunk.sequence);
  out->set_num_steps(chunk.num_steps);
  out->set_weights_version(chunk.weights_version);
  for (services::NamedTensor& field : chunk.fields) {
    v1::NamedTensor* named = out->add_data();
    named->set_name(field.name);
    named->mutable_tensor()->set_dtype(field.dtype);
    for (int64_t d : field.shape) named->mutable_tensor()->add_shape(d);
    named->mutable_tensor()->set_data(std::move(field.data));
  }
  absl::MutexLock lock(&mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !error_.ok() || closing_ || unacked_.size() < client_->options_.max_chunks_in_flight;
  };
  mu_.Await(absl::Condition(&room));
  if (!error_.ok()) return error_;
  if (closing_) return absl::FailedPreconditionError("the insert writer is closed");
  unacked_.push_back(std::move(request));
  return absl::OkStatus();
}

absl::Status InsertWriter::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !error_.ok() || unacked_.empty();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(unacked_.size(),
                                                    " chunks still unacknowledged by shard ",
                                                    shard_, " after ",
                                                    absl::FormatDuration(timeout)));
  }
  return error_;
}

size_t InsertWriter::in_flight() const {
  absl::MutexLock lock(&mu_);
  return unacked_.size();
}

absl::Status InsertWriter::Close() { return Close(client_->options_.rpc_timeout); }

absl::Status InsertWriter::Close(absl::Duration flush_timeout) {
  absl::Status flushed = Flush(flush_timeout);
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    // The writer thread may be inside a Write that waits for flow-control credit the shard will
    // not give while its rate limiter holds the stream; only cancelling the call ends that wait.
    if (!unacked_.empty() && stream_context_ != nullptr) stream_context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
  return flushed;
}

void InsertWriter::Run() {
  ShardedReplayClient::Shard& shard = *client_->shards_[shard_];
  absl::Duration backoff = client_->options_.min_backoff;
  bool first_attempt = true;
  while (true) {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::InsertRequest, v1::InsertResponse>> stream =
        shard.stub->Insert(&context);
    {
      absl::MutexLock lock(&mu_);
      sent_on_stream_ = 0;
      stream_broken_ = false;
      stream_context_ = &context;
    }
    if (!first_attempt && shard.reconnects != nullptr) shard.reconnects->Increment();
    first_attempt = false;
    std::thread reader([&] {
      v1::InsertResponse ack;
      while (stream->Read(&ack)) {
        absl::MutexLock lock(&mu_);
        while (!unacked_.empty() && unacked_.front()->chunk().sequence() <= ack.sequence() &&
               sent_on_stream_ > 0) {
          unacked_.pop_front();
          --sent_on_stream_;
          ++acknowledged_;
        }
      }
      absl::MutexLock lock(&mu_);
      stream_broken_ = true;
    });
    bool wrote_all = true;
    while (true) {
      std::shared_ptr<const v1::InsertRequest> next;
      {
        absl::MutexLock lock(&mu_);
        // Close() has already waited for the acknowledgements it was willing to wait for, so
        // closing ends the stream even with chunks outstanding.
        auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stream_broken_ || sent_on_stream_ < unacked_.size() || closing_;
        };
        mu_.Await(absl::Condition(&work));
        if (stream_broken_ || closing_ || sent_on_stream_ >= unacked_.size()) break;
        next = unacked_[sent_on_stream_];
        ++sent_on_stream_;
      }
      if (!stream->Write(*next)) {
        wrote_all = false;
        break;
      }
      backoff = client_->options_.min_backoff;  // the stream works
    }
    {
      // Abandoning unacknowledged chunks at Close: cancel, or the reader would wait for
      // acknowledgements the shard's rate limiter may hold back indefinitely.
      absl::MutexLock lock(&mu_);
      if (closing_ && !unacked_.empty()) context.TryCancel();
    }
    if (wrote_all) stream->WritesDone();
    reader.join();
    const grpc::Status status = stream->Finish();
    absl::MutexLock lock(&mu_);
    stream_context_ = nullptr;
    if (closing_ && unacked_.empty()) return;
    if (closing_) {
      error_ = absl::UnavailableError(absl::StrCat(
          unacked_.size(), " chunks unacknowledged when the writer closed"));
      return;
    }
    if (!status.ok()) {
      absl::Status s = services::FromGrpcStatus(
          status, absl::StrCat("Insert of actor \"", actor_id_, "\" to ", shard.address));
      if (IsPermanent(s.code())) {
        error_ = s;
        return;
      }
      DF_LOG(WARNING) << s.message() << "; reconnecting in " << absl::FormatDuration(backoff);
    }
    // Backoff before reopening the stream; Close() ends the wait early.
    auto closing = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closing_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&closing), backoff) && unacked_.empty()) return;
    if (closing_) {
      error_ = absl::UnavailableError(absl::StrCat(unacked_.size(),
                                                   " chunks unacknowledged when the writer closed"));
      return;
    }
    backoff = std::min(backoff * 2, client_->options_.max_backoff);
  }
}

}  // namespace dreamfleet::replay
