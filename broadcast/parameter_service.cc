#include "broadcast/parameter_service.h"

#include <optional>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/grpc_util.h"
#include "services/logging.h"
#include "services/status_macros.h"

namespace dreamfleet::broadcast {
namespace {

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

size_t VarintSize(uint64_t value) {
  size_t size = 1;
  for (; value >= 0x80; value >>= 7) ++size;
  return size;
}

// Protobuf wire tags (field number << 3 | length-delimited) of ParameterUpdate.pieces and
// TensorPiece.data, checked against the generated code below.
constexpr char kPiecesTag = (v1::ParameterUpdate::kPiecesFieldNumber << 3) | 2;
constexpr char kDataTag = (v1::TensorPiece::kDataFieldNumber << 3) | 2;
static_assert(v1::ParameterUpdate::kPiecesFieldNumber == 4 &&
                  v1::TensorPiece::kDataFieldNumber == 6,
              "wire tags assume the field numbers of parameter.proto");
// Pieces smaller than this are copied into the framing slice; larger ones are referenced.
constexpr size_t kReferenceBytes = 4096;

void ReleaseWeights(void* user_data) {
  delete static_cast<std::shared_ptr<const broadcast::WeightsVersion>*>(user_data);
}

}  // namespace

std::shared_ptr<const EncodedVersion> EncodeVersion(
    std::shared_ptr<const broadcast::WeightsVersion> weights, size_t max_message_bytes,
    const std::string& learner_run) {
  const std::vector<std::vector<broadcast::PiecePlan>> plan =
      broadcast::PlanUpdates(*weights, max_message_bytes);
  auto encoded = std::make_shared<EncodedVersion>();
  encoded->version = weights->version;
  encoded->parts.reserve(plan.size());
  for (size_t m = 0; m < plan.size(); ++m) {
    // A part is: the header fields, then per piece `pieces` tag, length, the piece's fields but
    // data, `data` tag and length (all in `framing`), then the data (referenced when large).
    std::vector<grpc::Slice> slices;
    std::string framing;
    v1::ParameterUpdate header;
    header.set_version(weights->version);
    header.set_part(static_cast<int32_t>(m));
    header.set_num_parts(static_cast<int32_t>(plan.size()));
    if (m == 0) header.set_model_config(weights->model_config);
    header.set_learner_run(learner_run);
    header.AppendToString(&framing);
    for (const broadcast::PiecePlan& planned : plan[m]) {
      const services::NamedTensor& tensor = weights->tensors[planned.tensor];
      v1::TensorPiece meta;
      meta.set_name(tensor.name);
      meta.set_dtype(tensor.dtype);
      for (int64_t dim : tensor.shape) meta.add_shape(dim);
      meta.set_offset(planned.offset);
      meta.set_total_bytes(tensor.data.size());
      const size_t meta_size = meta.ByteSizeLong();
      framing.push_back(kPiecesTag);
      AppendVarint(meta_size + 1 + VarintSize(planned.length) + planned.length, &framing);
      meta.AppendToString(&framing);
      framing.push_back(kDataTag);
      AppendVarint(planned.length, &framing);
      const char* data = tensor.data.data() + planned.offset;
      if (planned.length < kReferenceBytes) {
        framing.append(data, planned.length);
        continue;
      }
      slices.emplace_back(framing);
      framing.clear();
      slices.emplace_back(const_cast<char*>(data), planned.length, &ReleaseWeights,
                          new std::shared_ptr<const broadcast::WeightsVersion>(weights));
    }
    if (!framing.empty()) slices.emplace_back(framing);
    encoded->parts.emplace_back(slices.data(), slices.size());
    encoded->total_bytes += encoded->parts.back().Length();
  }
  return encoded;
}

// One Subscribe call. All state is guarded by mu_; gRPC reactions (OnWriteDone, OnCancel) and the
// service's wake-ups (Wake, FinishNow, called with the service's reactors_mu_ held) meet there.
// gRPC runs OnDone on its own thread after Finish and the last write complete; OnDone unregisters
// from the service first, so no wake-up can arrive after it, then deletes the reactor.
class ParameterServiceImpl::SubscribeReactor final
    : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  SubscribeReactor(ParameterServiceImpl* service, std::string peer, std::string actor_id,
                   int64_t have_version)
      : service_(service),
        peer_(std::move(peer)),
        actor_id_(std::move(actor_id)),
        sent_version_(have_version) {}

  // A newer version may be available.
  void Wake() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    Advance();
  }

  // Ends the stream with `status` as soon as no write is in flight.
  void FinishNow(grpc::Status status) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!finish_status_.has_value()) finish_status_ = std::move(status);
    Advance();
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok) {
      // The client went away or the call was cancelled: nothing more can be written.
      if (!finish_status_.has_value()) {
        finish_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
      }
    } else {
      service_->sent_bytes_->Increment(static_cast<double>(current_->parts[next_part_].Length()));
      ++next_part_;
      if (next_part_ == current_->parts.size()) {
        sent_version_ = current_->version;
        current_.reset();
      }
    }
    Advance();
  }

  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_) {
    FinishNow(grpc::Status(grpc::StatusCode::CANCELLED, "subscriber went away"));
  }

  void OnDone() override {
    service_->Remove(this);
    int64_t sent_version;
    {
      absl::MutexLock lock(&mu_);  // a thread may still be leaving Wake/FinishNow
      sent_version = sent_version_;
    }
    DF_LOG(INFO) << "weights subscriber " << actor_id_ << " (" << peer_ << ") left at version "
                 << sent_version;
    delete this;
  }

 private:
  // Starts the next write, or finishes, or waits for news. At most one write is in flight; a
  // version is always written to its last part; the next version is the newest one published.
  void Advance() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || write_in_flight_) return;
    if (finish_status_.has_value()) {
      finished_ = true;
      Finish(*finish_status_);
      return;
    }
    if (current_ == nullptr) {
      std::shared_ptr<const EncodedVersion> latest = service_->latest_encoded();
      if (latest == nullptr || latest->version <= sent_version_) return;
      current_ = std::move(latest);
      next_part_ = 0;
    }
    write_in_flight_ = true;
    StartWrite(&current_->parts[next_part_]);
  }

  ParameterServiceImpl* const service_;
  const std::string peer_;
  const std::string actor_id_;
  absl::Mutex mu_;
  int64_t sent_version_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const EncodedVersion> current_ ABSL_GUARDED_BY(mu_);  // being written
  size_t next_part_ ABSL_GUARDED_BY(mu_) = 0;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

ParameterServiceImpl::ParameterServiceImpl() : ParameterServiceImpl(Options()) {}

namespace {

// Parts above gRPC's default 64 MiB receive limit would be refused by every subscriber.
ParameterServiceImpl::Options Checked(ParameterServiceImpl::Options options) {
  if (options.learner_run.empty()) {
    std::random_device random;
    options.learner_run =
        absl::StrCat(absl::Hex((uint64_t{random()} << 32) | random(), absl::kZeroPad16));
  }
  constexpr size_t kMaxPart = services::kDefaultMaxMessageBytes - (64 << 10);
  if (options.max_message_bytes > kMaxPart) {
    DF_LOG(WARNING) << "weights message size " << options.max_message_bytes
                    << " exceeds what subscribers accept; using " << kMaxPart;
    options.max_message_bytes = kMaxPart;
  }
  return options;
}

}  // namespace

ParameterServiceImpl::ParameterServiceImpl(Options options) : options_(Checked(options)) {
  services::Metrics* metrics = options_.metrics;
  if (metrics == nullptr) {
    own_metrics_ = std::make_unique<services::Metrics>();
    metrics = own_metrics_.get();
  }
  subscribers_gauge_ = &metrics->Gauge("dreamfleet_learner_subscribers",
                                       "Actors subscribed to the weight broadcast.");
  version_gauge_ = &metrics->Gauge("dreamfleet_learner_weights_version",
                                   "Newest published policy weights version.");
  sent_bytes_ = &metrics->Counter("dreamfleet_learner_weights_sent_bytes_total",
                                  "Serialized weight bytes written to subscribers.");
  const std::string refused_help =
      "Calls to the learner refused: no or an unknown token (unauthenticated), or a role the "
      "method does not allow (permission_denied).";
  refused_unauthenticated_ = &metrics->Counter("dreamfleet_learner_refused_calls_total",
                                               refused_help, {{"reason", "unauthenticated"}});
  refused_permission_denied_ = &metrics->Counter("dreamfleet_learner_refused_calls_total",
                                                 refused_help, {{"reason", "permission_denied"}});
  notifier_ = std::thread([this] { NotifyLoop(); });
}

void ParameterServiceImpl::NotifyLoop() {
  int64_t handled = 0;
  for (;;) {
    std::vector<std::shared_ptr<const void>> release;  // dropped after the wake-ups
    {
      absl::MutexLock lock(&notify_mu_);
      auto pending = [this, &handled]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(notify_mu_) {
        return notify_stop_ || notify_requests_ != handled;
      };
      notify_mu_.Await(absl::Condition(&pending));
      if (notify_stop_) return;
      handled = notify_requests_;
      release.swap(to_release_);
    }
    absl::MutexLock lock(&reactors_mu_);
    for (SubscribeReactor* reactor : reactors_) reactor->Wake();
  }
}

ParameterServiceImpl::~ParameterServiceImpl() {
  Shutdown();
  {
    absl::MutexLock lock(&notify_mu_);
    notify_stop_ = true;
  }
  notifier_.join();
  absl::MutexLock lock(&reactors_mu_);
  reactors_mu_.Await(absl::Condition(
      +[](int* live) { return *live == 0; }, &live_reactors_));
}

absl::Status ParameterServiceImpl::Publish(
    std::shared_ptr<const broadcast::WeightsVersion> weights) {
  if (weights == nullptr) return absl::InvalidArgumentError("Publish of null weights");
  RETURN_IF_ERROR(broadcast::ValidateWeights(*weights));
  absl::MutexLock publish_lock(&publish_mu_);
  if (const int64_t current = version(); weights->version <= current) {
    return absl::FailedPreconditionError(absl::StrCat(
        "weights version ", weights->version, " is not newer than the published ", current));
  }
  std::shared_ptr<const EncodedVersion> encoded =
      EncodeVersion(weights, options_.max_message_bytes, options_.learner_run);
  version_gauge_->Set(static_cast<double>(weights->version));
  std::shared_ptr<const broadcast::WeightsVersion> previous;
  std::shared_ptr<const EncodedVersion> previous_encoded;
  {
    absl::MutexLock lock(&latest_mu_);
    previous = std::exchange(latest_, weights);
    previous_encoded = std::exchange(latest_encoded_, encoded);
  }
  absl::MutexLock lock(&notify_mu_);
  ++notify_requests_;
  if (previous != nullptr) to_release_.push_back(std::move(previous));
  if (previous_encoded != nullptr) to_release_.push_back(std::move(previous_encoded));
  return absl::OkStatus();
}

std::shared_ptr<const broadcast::WeightsVersion> ParameterServiceImpl::latest() const {
  absl::MutexLock lock(&latest_mu_);
  return latest_;
}

std::shared_ptr<const EncodedVersion> ParameterServiceImpl::latest_encoded() const {
  absl::MutexLock lock(&latest_mu_);
  return latest_encoded_;
}

int64_t ParameterServiceImpl::version() const {
  absl::MutexLock lock(&latest_mu_);
  return latest_ == nullptr ? 0 : latest_->version;
}

int ParameterServiceImpl::subscribers() const {
  absl::MutexLock lock(&reactors_mu_);
  return static_cast<int>(reactors_.size());
}

bool ParameterServiceImpl::WaitForSubscribers(int count, absl::Duration timeout) const {
  absl::MutexLock lock(&reactors_mu_);
  auto reached = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(reactors_mu_) {
    return static_cast<int>(reactors_.size()) == count;
  };
  return reactors_mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

void ParameterServiceImpl::SetStatusProvider(std::function<v1::StatusResponse()> provider) {
  absl::MutexLock lock(&latest_mu_);
  status_provider_ = std::move(provider);
}

void ParameterServiceImpl::Shutdown() {
  absl::MutexLock lock(&reactors_mu_);
  if (shutting_down_) return;
  shutting_down_ = true;
  for (SubscribeReactor* reactor : reactors_) {
    reactor->FinishNow(grpc::Status(grpc::StatusCode::UNAVAILABLE, "learner shutting down"));
  }
}

void ParameterServiceImpl::Remove(SubscribeReactor* reactor) {
  absl::MutexLock lock(&reactors_mu_);
  reactors_.erase(reactor);
  --live_reactors_;
  subscribers_gauge_->Set(static_cast<double>(reactors_.size()));
}

grpc::Status ParameterServiceImpl::Authorize(const grpc::CallbackServerContext* context,
                                             absl::string_view method) {
  if (options_.authorizer == nullptr) return grpc::Status::OK;
  grpc::Status status = options_.authorizer->Check(
      *context, method,
      {services::Role::kActor, services::Role::kLearner, services::Role::kReader});
  if (status.ok()) return status;
  DF_LOG(WARNING) << "refused " << method << " from " << services::QuoteClientText(context->peer())
                  << ": " << status.error_message();
  (status.error_code() == grpc::StatusCode::PERMISSION_DENIED ? refused_permission_denied_
                                                              : refused_unauthenticated_)
      ->Increment();
  return status;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* ParameterServiceImpl::Subscribe(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  v1::SubscribeRequest subscribe;
  grpc::ByteBuffer copy(*request);
  grpc::Status parsed =
      grpc::SerializationTraits<v1::SubscribeRequest>::Deserialize(&copy, &subscribe);
  // A version number from another learner run says nothing about this run's weights.
  const int64_t have_version =
      subscribe.learner_run() == options_.learner_run ? subscribe.have_version() : 0;
  auto* reactor = new SubscribeReactor(this, context->peer(), subscribe.actor_id(), have_version);
  const grpc::Status authorized = Authorize(context, "Subscribe");
  absl::MutexLock lock(&reactors_mu_);
  ++live_reactors_;
  if (!authorized.ok()) {
    reactor->FinishNow(authorized);
  } else if (!parsed.ok()) {
    reactor->FinishNow(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "SubscribeRequest does not parse"));
  } else if (shutting_down_) {
    reactor->FinishNow(grpc::Status(grpc::StatusCode::UNAVAILABLE, "learner shutting down"));
  } else {
    reactors_.insert(reactor);
    subscribers_gauge_->Set(static_cast<double>(reactors_.size()));
    DF_LOG(INFO) << "weights subscriber " << subscribe.actor_id() << " (" << context->peer()
                 << ") joined with version " << subscribe.have_version() << " of run "
                 << (subscribe.learner_run().empty() ? "-" : subscribe.learner_run())
                 << (have_version == subscribe.have_version() ? "" : " (another run)");
    reactor->Wake();
  }
  return reactor;
}

grpc::ServerUnaryReactor* ParameterServiceImpl::Status(grpc::CallbackServerContext* context,
                                                       const v1::StatusRequest* /*request*/,
                                                       v1::StatusResponse* response) {
  if (grpc::Status denied = Authorize(context, "Status"); !denied.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(denied);
    return reactor;
  }
  std::function<v1::StatusResponse()> provider;
  {
    absl::MutexLock lock(&latest_mu_);
    provider = status_provider_;
  }
  if (provider) *response = provider();
  if (response->weights_version() == 0) response->set_weights_version(version());
  if (response->subscribers() == 0) response->set_subscribers(subscribers());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace dreamfleet::broadcast
