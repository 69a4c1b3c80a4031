// SampleStream: request checks, then the double-buffered loop in which a helper thread gathers
// batch k+1 while batch k is written.
#include "replay_server/sample_stream.h"

#include <algorithm>
#include <future>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace dreamfleet::replay {

SampleStream::SampleStream(Table* table, Peer* peer, SampleStreamOptions options)
    : table_(table), peer_(peer), options_(std::move(options)) {}

SampleStream::Outcome SampleStream::Run(const v1::SampleRequest& request) {
  if (absl::Status s = table_->CheckName(request.table()); !s.ok()) return {s, "unknown_table"};
  const int batch_size = request.batch_size() == 0 ? 16 : request.batch_size();
  const int sequence_length =
      request.sequence_length() == 0 ? table_->sequence_length() : request.sequence_length();
  if (request.num_batches() < 0) {
    return {absl::InvalidArgumentError(absl::StrCat(
                "num_batches must be >= 0 (0 = unbounded), got ", request.num_batches())),
            "bad_request"};
  }
  if (std::optional<Signature> signature = table_->signature()) {
    const double bytes =
        static_cast<double>(signature->step_bytes()) * batch_size * std::max(sequence_length, 1);
    if (bytes > static_cast<double>(options_.max_message_bytes)) {
      return {absl::InvalidArgumentError(absl::StrCat(
                  "a batch of ", batch_size, " x ", sequence_length, " steps is ", bytes,
                  " bytes, above replay.max_message_mb (", options_.max_message_bytes, " bytes)")),
              "oversized"};
    }
  }
  const absl::Duration timeout = request.timeout_ms() > 0 ? absl::Milliseconds(request.timeout_ms())
                                                          : options_.default_timeout;
  v1::SampleResponse buffers[2];
  auto gather = [&](v1::SampleResponse* batch) {
    return Gather(batch_size, sequence_length, timeout, batch);
  };
  const int64_t wanted = request.num_batches();
  absl::Time last = absl::Now();
  // The future's destructor joins the helper thread, so no return below leaves it running.
  std::future<absl::Status> next = std::async(std::launch::async, gather, &buffers[0]);
  for (int64_t sent = 0; wanted == 0 || sent < wanted; ++sent) {
    const absl::Status status = next.get();
    if (peer_->IsCancelled()) {
      return {absl::CancelledError(
                  absl::StrCat("the Sample call was cancelled after ", sent, " batches")),
              ""};
    }
    if (!status.ok()) return {status, absl::IsInvalidArgument(status) ? "bad_request" : ""};
    v1::SampleResponse& batch = buffers[sent % 2];
    const bool more = wanted == 0 || sent + 1 < wanted;
    if (more) next = std::async(std::launch::async, gather, &buffers[(sent + 1) % 2]);
    batch.set_shard(options_.shard_name);
    const bool written = peer_->Write(batch);
    const absl::Time now = absl::Now();
    if (options_.on_batch) options_.on_batch(now - last);
    last = now;
    if (!written) {
      writer_failed_ = true;  // the batch being gathered gives up at its next slice
      if (more) (void)next.get();
      return {absl::CancelledError(
                  absl::StrCat("the client stopped receiving batches after ", sent, " were sent")),
              ""};
    }
  }
  return {};
}

absl::Status SampleStream::Gather(int batch_size, int sequence_length, absl::Duration timeout,
                                  v1::SampleResponse* batch) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::Status status = table_->Sample(
        batch_size, sequence_length, std::min(deadline, absl::Now() + options_.wait_slice), batch);
    if (!absl::IsDeadlineExceeded(status) || absl::Now() >= deadline || writer_failed_ ||
        peer_->IsCancelled()) {
      return status;
    }
  }
}

}  // namespace dreamfleet::replay
