// InsertStream: the reading loop on the caller's thread and the in-order acknowledger thread,
// which share only the queue of accepted chunks and the acknowledger's error.
#include "replay_server/insert_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "services/logging.h"

namespace dreamfleet::replay {
namespace {

std::string ChunkName(const v1::Chunk& chunk) {
  return absl::StrCat("actor ", services::QuoteClientText(chunk.actor_id()), " chunk ",
                      chunk.sequence());
}

}  // namespace

InsertStream::InsertStream(ReplayShard* shard, Peer* peer, InsertStreamOptions options)
    : shard_(shard), peer_(peer), options_(std::move(options)) {}

InsertStream::~InsertStream() {
  if (acker_.joinable()) acker_.join();
}

InsertStream::Outcome InsertStream::Run() {
  // The acker thread starts with the first accepted chunk: an idle stream holds one thread.
  const Outcome read = ReadRequests();
  {
    absl::MutexLock lock(&mu_);
    reading_done_ = true;
  }
  if (acker_.joinable()) acker_.join();  // every chunk accepted before an error is acknowledged
  if (!read.status.ok()) return read;
  absl::MutexLock lock(&mu_);
  return {ack_error_, ""};
}

InsertStream::Outcome InsertStream::ReadRequests() {
  v1::InsertRequest request;
  while (peer_->Read(&request)) {
    const absl::Time received = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      if (!ack_error_.ok()) return {};  // nothing more could be acknowledged; Run reports why
    }
    const size_t size = request.ByteSizeLong();
    if (size > options_.max_message_bytes) {
      return {absl::InvalidArgumentError(absl::StrCat(
                  "insert message of ", size, " bytes from ", ChunkName(request.chunk()),
                  " exceeds replay.max_message_mb (", options_.max_message_bytes, " bytes)")),
              "oversized"};
    }
    if (request.chunk().actor_id().size() > options_.max_actor_id_bytes) {
      return {absl::InvalidArgumentError(absl::StrCat(
                  "actor id of ", request.chunk().actor_id().size(), " bytes (",
                  services::QuoteClientText(request.chunk().actor_id(), 32),
                  ") exceeds replay.max_actor_id_bytes (", options_.max_actor_id_bytes, ")")),
              "actor_id_too_long"};
    }
    if (absl::Status s = shard_->table()->CheckName(request.table()); !s.ok()) {
      return {s, "unknown_table"};
    }
    absl::StatusOr<ReplayShard::PendingInsert> pending = InsertUntilCancelled(request.chunk());
    if (!pending.ok()) {
      const absl::Status& s = pending.status();
      if (absl::IsCancelled(s)) return {s, ""};
      if (absl::IsInvalidArgument(s)) {
        return {
            absl::InvalidArgumentError(absl::StrCat(ChunkName(request.chunk()), ": ", s.message())),
            "invalid_chunk"};
      }
      if (absl::IsOutOfRange(s)) return {s, "sequence"};  // a gap: the message names it
      return {s, "unavailable"};
    }
    PendingAck ack;
    ack.response.set_actor_id(request.chunk().actor_id());
    ack.response.set_sequence(request.chunk().sequence());
    ack.response.set_table_size_steps(pending->result.size_steps);
    ack.response.set_limiter_wait_seconds(absl::ToDoubleSeconds(pending->result.limiter_wait));
    ack.response.set_duplicate(pending->result.duplicate);
    ack.lsn = pending->lsn;
    ack.received = received;
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back(std::move(ack));
    }
    if (!acker_.joinable()) acker_ = std::thread([this] { AcknowledgeInOrder(); });
  }
  if (absl::Status error = peer_->ReadError(); !error.ok()) return {error, "malformed"};
  return {};
}

absl::StatusOr<ReplayShard::PendingInsert> InsertStream::InsertUntilCancelled(
    const v1::Chunk& chunk) {
  // One wait for as long as the call lives, checked for cancellation every slice: the chunk keeps
  // its place among the inserts waiting for the rate limiter (the table serves them in order).
  InsertAbandon abandon;
  abandon.check = [this] { return peer_->IsCancelled(); };
  abandon.every = options_.wait_slice;
  absl::StatusOr<ReplayShard::PendingInsert> pending =
      shard_->Insert(chunk, absl::InfiniteFuture(), abandon);
  if (absl::IsCancelled(pending.status())) {
    return absl::CancelledError(absl::StrCat("the Insert call was cancelled while ",
                                             ChunkName(chunk), " waited for the rate limiter"));
  }
  return pending;
}

void InsertStream::AcknowledgeInOrder() {
  while (true) {
    PendingAck ack;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || reading_done_;
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;
      ack = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::Status status = shard_->WaitDurable(ack.lsn);
    if (status.ok() && !peer_->Write(ack.response)) {
      status = absl::CancelledError(absl::StrCat(
          "the client stopped receiving acknowledgements before actor ",
          services::QuoteClientText(ack.response.actor_id()), " chunk ", ack.response.sequence()));
    }
    if (!status.ok()) {
      absl::MutexLock lock(&mu_);
      ack_error_ = std::move(status);
      return;
    }
    if (options_.on_ack) options_.on_ack(absl::Now() - ack.received);
  }
}

}  // namespace dreamfleet::replay
