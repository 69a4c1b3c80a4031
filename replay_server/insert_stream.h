// The protocol of one Insert call, without gRPC. The calling thread reads requests, checks what
// only the wire can get wrong (message size, table name) and hands each chunk to the shard,
// waiting on the rate limiter in its place among the waiting inserts and checking every slice
// whether the call was cancelled. A second thread, owned by
// the stream, acknowledges the accepted chunks in the order they arrived, each only once the
// write-ahead log has made it durable; it starts with the first accepted chunk, so an idle stream
// holds only the calling thread. A rejected request ends the reading, but every chunk
// accepted before it is still acknowledged; a failed acknowledgement ends the reading too.
//
// Data flow: Peer::Read -> size / table checks -> ReplayShard::Insert (WAL append) -> queue ->
// acker thread: ReplayShard::WaitDurable -> Peer::Write(ack).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dreamfleet/v1/replay.pb.h"
#include "replay_server/replay_shard.h"

namespace dreamfleet::replay {

struct InsertStreamOptions {
  size_t max_message_bytes = 64 << 20;  // larger requests end the call with INVALID_ARGUMENT
  size_t max_actor_id_bytes = 256;      // so do longer actor ids (rejection "actor_id_too_long")
  // How often a chunk waiting for the rate limiter checks whether the call was cancelled.
  absl::Duration wait_slice = absl::Milliseconds(500);
  // Called from the acker thread after each acknowledgement is written, with the time since its
  // chunk was read (the RPC latency metric); may be empty.
  std::function<void(absl::Duration)> on_ack;
};

class InsertStream {
 public:
  // The client end of the call. Read is called from the thread running Run, Write from the
  // acker thread, IsCancelled from either; at most one Read and one Write are in flight at once.
  class Peer {
   public:
    virtual ~Peer() = default;
    // Blocks for the next request; false once the client has no more (or went away), or when
    // the next message is not an InsertRequest (ReadError then says so).
    virtual bool Read(v1::InsertRequest* request) = 0;
    // After Read returned false: OK at the end of the stream, INVALID_ARGUMENT naming the message
    // that did not parse.
    virtual absl::Status ReadError() { return absl::OkStatus(); }
    // Sends one acknowledgement; false when the client can no longer receive.
    virtual bool Write(const v1::InsertResponse& ack) = 0;
    virtual bool IsCancelled() = 0;
  };

  // How the call ended.
  struct Outcome {
    absl::Status status;
    // Why a request was rejected, for the rejection metric: "malformed" (not an InsertRequest),
    // "oversized", "unknown_table", "invalid_chunk" or "unavailable" (the shard could not take it).
    // Empty when none was: the call succeeded, was cancelled, or could not be acknowledged.
    std::string rejection;
  };

  InsertStream(ReplayShard* shard, Peer* peer, InsertStreamOptions options);
  ~InsertStream();

  // Runs the call to its end: reads until the client is done or a request is rejected, then
  // returns once every accepted chunk was acknowledged (or could not be). Blocking; call once.
  Outcome Run();

 private:
  struct PendingAck {
    v1::InsertResponse response;
    uint64_t lsn = 0;  // WAL record to wait for; 0 = nothing written (a duplicate)
    absl::Time received;
  };

  // The reading side of Run: returns the rejection that ended it, or OK.
  Outcome ReadRequests();
  // Inserts `chunk`, waiting for the limiter until it lets the chunk through or the call is
  // cancelled (checked every wait_slice).
  absl::StatusOr<ReplayShard::PendingInsert> InsertUntilCancelled(const v1::Chunk& chunk);
  // The acker thread.
  void AcknowledgeInOrder();

  ReplayShard* const shard_;
  Peer* const peer_;
  const InsertStreamOptions options_;

  absl::Mutex mu_;
  std::deque<PendingAck> queue_ ABSL_GUARDED_BY(mu_);  // accepted, not yet acknowledged
  bool reading_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status ack_error_ ABSL_GUARDED_BY(mu_);  // why the acker stopped before the queue ended
  std::thread acker_;
};

}  // namespace dreamfleet::replay
