// How a table holds a chunk's step data in memory: the stored form of a chunk (its fields in
// signature order, each raw or one zstd frame), and the ways back out of it. No locking: a
// StoredChunk is immutable once shared, so readers decode it outside the table mutex.
//
// Data flow: v1::Chunk -> Encode (signature order, zstd when compressing) -> StoredChunk, placed
// by the table. Sample/GetEpisode: ChunkSpans (steps of stored chunks) -> Reader::Append ->
// [steps, ...] bytes of one field. Checkpoints: StoredChunk -> ToRecord -> v1::StoredChunkRecord.
// Unlike Reverb's ChunkStore this does not index chunks by key: the table keeps its own index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dreamfleet/v1/replay.pb.h"
#include "replay_server/signature.h"

namespace dreamfleet::replay {

struct Stream;  // the table's per-actor stream (table.h); opaque here

// One chunk as stored: immutable once shared with the table, in-flight samples and checkpoints.
struct StoredChunk {
  // What the actor sent (set by ChunkStore::Encode).
  std::string actor_id;
  uint64_t sequence = 0;
  int64_t weights_version = 0;
  uint32_t num_steps = 0;
  bool compressed = false;
  std::vector<std::string> fields;  // per signature field: raw [num_steps, ...] bytes or zstd
  size_t bytes = 0;                 // sum of fields[i].size()
  // Where the table placed it (set by the table before the chunk is shared).
  uint64_t first_id = 0;  // table-wide id of the first step
  int64_t insert_time_ms = 0;
  uint64_t stream_pos = 0;   // position of the first step within its stream
  Stream* stream = nullptr;  // owned by the table; never freed while the table lives
};

// `count` consecutive steps of one stored chunk from step `offset`; keeps the chunk alive.
struct ChunkSpan {
  std::shared_ptr<const StoredChunk> chunk;
  uint32_t offset = 0;
  uint32_t count = 0;
};

class ChunkStore {
 public:
  // `compress`: zstd each field of each stored chunk (TableOptions::compress).
  explicit ChunkStore(bool compress, int zstd_level = 1)
      : compress_(compress), zstd_level_(zstd_level) {}

  // The stored form of `chunk`, its fields laid out in `signature` order. INVALID_ARGUMENT naming
  // the field when the chunk lacks one or its byte count does not match the signature (callers
  // check chunks against the signature first; this keeps a bad one from being stored). The
  // placement fields are left for the caller.
  absl::StatusOr<std::shared_ptr<StoredChunk>> Encode(const v1::Chunk& chunk,
                                                      const Signature& signature) const;

  // The record `chunk` was made from, with its fields decoded; `signature` is the one it was
  // encoded with. DATA_LOSS naming the field when a field does not decode.
  static absl::Status ToRecord(const StoredChunk& chunk, const Signature& signature,
                               v1::StoredChunkRecord* record);

  bool compress() const { return compress_; }

  // Copies step bytes out of stored chunks, decompressing each field of each chunk at most once
  // however many spans touch it. One per batch or message being assembled; not thread-safe.
  // Decompressed copies are kept until Clear() or destruction.
  class Reader {
   public:
    // Appends the bytes of field `field` (an index into `signature`) of every step in `spans` to
    // `out`, in order. DATA_LOSS naming the field and chunk when stored bytes do not decode to
    // the expected size; INTERNAL when a span or field lies outside its chunk.
    absl::Status Append(const std::vector<ChunkSpan>& spans, const Signature& signature,
                        size_t field, std::string* out);
    void Clear() { decompressed_.clear(); }

   private:
    // The raw bytes of `field` of `chunk`, decompressed into the cache when needed.
    absl::StatusOr<const std::string*> Raw(const StoredChunk& chunk, const FieldSpec& spec,
                                           size_t field);

    absl::flat_hash_map<const StoredChunk*, std::vector<std::optional<std::string>>> decompressed_;
  };

 private:
  const bool compress_;
  const int zstd_level_;
};

}  // namespace dreamfleet::replay
