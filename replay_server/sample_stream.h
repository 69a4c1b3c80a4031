// The protocol of one Sample call, without gRPC: checks the request (table name, batch size
// against the message limit), then streams B x T batches until `num_batches` were sent (0 = until
// the client cancels or stops receiving). Each batch waits for the rate limiter in slices until
// the request's timeout, so a cancelled call is noticed. One batch is gathered ahead on a helper
// thread while the previous one is being written, so copying out of the table overlaps the
// transport; the two responses are reused, keeping their buffers' capacity between batches.
//
// Data flow: request -> checks -> [helper: Table::Sample into buffer k+1] || Peer::Write(buffer k).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "dreamfleet/v1/replay.pb.h"
#include "replay_server/table.h"

namespace dreamfleet::replay {

struct SampleStreamOptions {
  std::string shard_name = "shard-0";                  // set in every SampleResponse.shard
  size_t max_message_bytes = 64 << 20;                 // larger batches are INVALID_ARGUMENT
  absl::Duration default_timeout = absl::Seconds(60);  // per batch, when the request sets none
  // How long one wait on the rate limiter lasts before the call is checked for cancellation.
  absl::Duration wait_slice = absl::Milliseconds(500);
  // Called after each batch is written, with the time since the previous one was (or since the
  // stream started): the per-batch RPC latency metric. May be empty.
  std::function<void(absl::Duration)> on_batch;
};

class SampleStream {
 public:
  // The client end of the call. Write is called from the thread running Run; IsCancelled from it
  // and from the helper thread.
  class Peer {
   public:
    virtual ~Peer() = default;
    // Sends one batch; false when the client can no longer receive.
    virtual bool Write(const v1::SampleResponse& batch) = 0;
    virtual bool IsCancelled() = 0;
  };

  // How the call ended.
  struct Outcome {
    absl::Status status;
    // Why the request was rejected, for the rejection metric: "unknown_table", "oversized" or
    // "bad_request" (the table refused it). Empty otherwise.
    std::string rejection;
  };

  SampleStream(Table* table, Peer* peer, SampleStreamOptions options);

  // Streams the batches `request` asks for. Blocking; call once.
  Outcome Run(const v1::SampleRequest& request);

 private:
  // Fills `batch` from the table, waiting in slices until `timeout` passes, the call is
  // cancelled or the writer failed.
  absl::Status Gather(int batch_size, int sequence_length, absl::Duration timeout,
                      v1::SampleResponse* batch);

  Table* const table_;
  Peer* const peer_;
  const SampleStreamOptions options_;
  std::atomic<bool> writer_failed_{false};  // the batch being gathered is no longer wanted
};

}  // namespace dreamfleet::replay
