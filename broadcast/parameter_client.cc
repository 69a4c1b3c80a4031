#include "broadcast/parameter_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/logging.h"

namespace dreamfleet::broadcast {

absl::StatusOr<std::unique_ptr<ParameterClient>> ParameterClient::Create(Options options) {
  if (options.address.empty() && options.channel == nullptr) {
    return absl::InvalidArgumentError("ParameterClient needs the learner address");
  }
  if (options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        absl::StrCat("ParameterClient backoff must satisfy 0 < initial (",
                     absl::FormatDuration(options.initial_backoff), ") <= max (",
                     absl::FormatDuration(options.max_backoff), ")"));
  }
  std::unique_ptr<ParameterClient> client(new ParameterClient(std::move(options)));
  client->thread_ = std::thread([raw = client.get()] { raw->Run(); });
  return client;
}

ParameterClient::ParameterClient(Options options) : options_(std::move(options)) {
  channel_ = options_.channel != nullptr
                 ? options_.channel
                 : services::CreateChannel(options_.address, options_.channel_options);
  stub_ = v1::ParameterService::NewStub(channel_);
  if (options_.metrics != nullptr) {
    version_gauge_ = &options_.metrics->Gauge("dreamfleet_actor_weights_version",
                                              "Policy weights version the actor holds.");
  }
}

ParameterClient::~ParameterClient() { Stop(); }

void ParameterClient::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&latest_mu_);
  stopped_ = true;
}

std::shared_ptr<const broadcast::WeightsVersion> ParameterClient::Latest() const {
  absl::MutexLock lock(&latest_mu_);
  return latest_;
}

absl::StatusOr<std::shared_ptr<const broadcast::WeightsVersion>> ParameterClient::WaitForVersion(
    int64_t min_version, absl::Duration timeout) {
  absl::MutexLock lock(&latest_mu_);
  auto arrived = [this, min_version]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(latest_mu_) {
    return stopped_ || (latest_ != nullptr && latest_->version >= min_version);
  };
  latest_mu_.AwaitWithTimeout(absl::Condition(&arrived), timeout);
  if (latest_ != nullptr && latest_->version >= min_version) return latest_;
  if (stopped_) return absl::CancelledError("ParameterClient stopped");
  return absl::DeadlineExceededError(absl::StrCat(
      "no weights version >= ", min_version, " from ", options_.address, " within ",
      absl::FormatDuration(timeout), " (have ", latest_ == nullptr ? 0 : latest_->version, ")"));
}

void ParameterClient::Install(std::shared_ptr<const broadcast::WeightsVersion> weights) {
  // The gauge first, so whoever sees the version in Latest() also sees it exported.
  if (version_gauge_ != nullptr) version_gauge_->Set(static_cast<double>(weights->version));
  {
    absl::MutexLock lock(&latest_mu_);
    latest_ = weights;
    latest_version_.store(weights->version, std::memory_order_release);
  }
  if (options_.on_version) options_.on_version(weights);
}

grpc::Status ParameterClient::RunStream(bool* got_version) {
  // No deadline: the stream lives as long as the learner; the channel's keepalive notices a
  // vanished peer, and Stop() cancels it.
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return grpc::Status(grpc::StatusCode::CANCELLED, "stopped");
    context_ = &context;
  }
  v1::SubscribeRequest request;
  request.set_actor_id(options_.actor_id);
  request.set_have_version(latest_version());
  request.set_learner_run(learner_run_);
  std::unique_ptr<grpc::ClientReader<v1::ParameterUpdate>> reader =
      stub_->Subscribe(&context, request);
  broadcast::WeightsAssembler assembler;
  v1::ParameterUpdate update;
  std::string learner_run_candidate;
  std::string broken;
  while (reader->Read(&update)) {
    if (options_.on_message_for_test) options_.on_message_for_test(update);
    const bool last_part = update.part() + 1 == update.num_parts();
    if (last_part) learner_run_candidate.assign(update.learner_run());
    absl::StatusOr<std::shared_ptr<const broadcast::WeightsVersion>> done = assembler.Add(&update);
    if (!done.ok()) {
      // Resubscribing makes the learner send its newest version from part 0.
      broken = std::string(done.status().message());
      context.TryCancel();
      break;
    }
    if (*done != nullptr) {
      *got_version = true;
      learner_run_ = learner_run_candidate;
      Install(std::move(*done));
    }
  }
  grpc::Status status = reader->Finish();
  {
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
  }
  if (!broken.empty()) return grpc::Status(grpc::StatusCode::DATA_LOSS, broken);
  return status;
}

void ParameterClient::Run() {
  absl::Duration backoff = options_.initial_backoff;
  for (int64_t attempt = 0;; ++attempt) {
    if (attempt > 0) reconnects_.fetch_add(1, std::memory_order_relaxed);
    bool got_version = false;
    const grpc::Status status = RunStream(&got_version);
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    if (got_version) backoff = options_.initial_backoff;  // the learner was healthy
    DF_LOG(WARNING) << "weights stream from " << options_.address << " ended ("
                    << status.error_code() << ": " << status.error_message() << ") at version "
                    << latest_version() << "; resubscribing in " << absl::FormatDuration(backoff);
    // Backoff, cut short by Stop().
    mu_.AwaitWithTimeout(absl::Condition(&stop_), backoff);
    if (stop_) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace dreamfleet::broadcast
