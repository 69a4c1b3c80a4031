// Fuzz target: a shard's restart from its data directory - checkpoint and write-ahead-log record
// decoding, the fallback to the previous checkpoint, resynchronisation past damaged records.
// Each message of the input (fuzz_input.h) is appended to one file of a fresh data directory:
// tag % 4 picks checkpoint.bin, checkpoint.prev.bin, wal-0 or wal-1, and tag & 4 writes the bytes
// raw (damage: torn or flipped framing) instead of as one well-framed record with its checksum,
// so both the framing and the payload decoding are reached; tag & 8 on any message also writes
// WAL_FORMAT ("headers-from 0": every log file must start with its header). Properties beyond "no
// crash, no sanitizer report": whatever the shard restored, it restores again, identically, from
// the checkpoint it then writes.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "dreamfleet/v1/replay.pb.h"
#include "replay_server/replay_shard.h"
#include "replay_server/test_util.h"
#include "replay_server/write_ahead_log.h"
#include "services/metrics.h"
#include "services/record_file.h"
#include "tests/fuzz/fuzz_input.h"

namespace dreamfleet::replay {
namespace {

ShardOptions FuzzShardOptions(const std::string& dir) {
  ShardOptions options;
  options.table.name = "default";
  options.table.capacity_steps = 48;
  options.table.sequence_length = 4;
  options.table.limiter.min_size_to_sample = 1;
  options.data_dir = dir;
  options.fsync_interval = absl::ZeroDuration();
  options.checkpoint_interval = absl::Hours(1);  // only the one written on close
  return options;
}

std::string FilePath(const std::string& dir, uint8_t tag) {
  switch (tag % 4) {
    case 0:
      return dir + "/checkpoint.bin";
    case 1:
      return dir + "/checkpoint.prev.bin";
    case 2:
      return WriteAheadLog::FileName(dir, 0);
    default:
      return WriteAheadLog::FileName(dir, 1);
  }
}

std::string Contents(const Table& table) {
  v1::TableInfo info = table.Info();
  info.clear_limiter();
  info.clear_bytes();
  return info.ShortDebugString();
}

// A scratch data directory for this process (tmpfs when there is one: fsyncs are cheap there).
// Removed when the process exits normally.
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const char* base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string pattern = absl::StrCat(base, "/dreamfleet-fuzz-records-XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    auto* made = new std::string(pattern);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(ScratchDir(), ignored);
    });
    return made;
  }();
  return *dir;
}

void ClearDir(const std::string& dir) {
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::filesystem::remove_all(entry.path());
  }
}

std::vector<std::string> Seeds() {
  using testing::ChunkSpec;
  using testing::MakeChunk;
  services::Metrics metrics;
  absl::StatusOr<std::unique_ptr<Table>> table =
      Table::Create(FuzzShardOptions("").table, &metrics);
  if (!table.ok()) std::abort();
  std::vector<std::string> records;  // chunk records of one stream, in order
  for (uint64_t s = 0; s < 5; ++s) {
    ChunkSpec spec;
    spec.sequence = s;
    spec.first_step_value = static_cast<uint32_t>(8 * s);
    if (s == 0) spec.episode_starts = {0};
    if (s == 2) spec.episode_ends = {3}, spec.episode_starts = {4};
    if (!(*table)->Insert(MakeChunk(spec), absl::InfinitePast()).ok()) std::abort();
  }
  Table::Snapshot snapshot = (*table)->TakeSnapshot([] {});
  for (const auto& stored : snapshot.chunks) {
    v1::StoredChunkRecord record;
    if (!(*table)->ToRecord(*stored, &record).ok()) std::abort();
    records.push_back(record.SerializeAsString());
  }
  v1::StoredChunkRecord counters;
  counters.mutable_sample_counters()->set_sampled_steps(16);
  counters.mutable_sample_counters()->set_sampled_items(4);

  std::vector<std::string> seeds;
  {  // the whole log in wal-0 with its header, no checkpoint; sample counters between chunks
    std::string seed;
    fuzz::AppendMessage(2 | 8, WriteAheadLog::HeaderPayload(0), &seed);
    for (size_t i = 0; i < records.size(); ++i) {
      fuzz::AppendMessage(2, records[i], &seed);
      if (i == 2) fuzz::AppendMessage(2, counters.SerializeAsString(), &seed);
    }
    seeds.push_back(seed);
  }
  {  // a checkpoint of the first three chunks (wal_index 1), then wal-1 with the rest
    v1::CheckpointHeader header = snapshot.header;
    header.set_wal_index(1);
    header.set_num_chunks(3);
    std::string seed;
    fuzz::AppendMessage(0, header.SerializeAsString(), &seed);
    for (size_t i = 0; i < 3; ++i) fuzz::AppendMessage(0, records[i], &seed);
    for (size_t i = 3; i < records.size(); ++i) fuzz::AppendMessage(3, records[i], &seed);
    seeds.push_back(seed);
  }
  {  // a damaged newest checkpoint with a good previous one; a torn record in the middle of wal-1
    v1::CheckpointHeader header = snapshot.header;
    header.set_wal_index(1);
    header.set_num_chunks(2);
    std::string seed;
    fuzz::AppendMessage(0, header.SerializeAsString(), &seed);
    fuzz::AppendMessage(4, records[0].substr(0, 40), &seed);  // raw: torn framing
    fuzz::AppendMessage(1, header.SerializeAsString(), &seed);
    fuzz::AppendMessage(1, records[0], &seed);
    fuzz::AppendMessage(1, records[1], &seed);
    fuzz::AppendMessage(3, records[2], &seed);
    fuzz::AppendMessage(7, "\x20\x00\x00\x00garbage", &seed);
    fuzz::AppendMessage(3, records[3], &seed);
    seeds.push_back(seed);
  }
  return seeds;
}

}  // namespace
}  // namespace dreamfleet::replay

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dreamfleet::fuzz::InitializeFuzzer(dreamfleet::replay::Seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dreamfleet;
  using namespace dreamfleet::replay;
  static services::Metrics* metrics = new services::Metrics();
  const std::string& dir = ScratchDir();
  ClearDir(dir);
  {
    std::map<std::string, std::unique_ptr<services::RecordWriter>> files;
    for (const fuzz::Message& message : fuzz::SplitMessages(data, size, 32)) {
      if ((message.tag & 8) && !std::filesystem::exists(dir + "/WAL_FORMAT")) {
        std::ofstream(dir + "/WAL_FORMAT") << "headers-from 0\n";
      }
      const std::string path = FilePath(dir, message.tag);
      auto& writer = files[path];
      if (writer == nullptr) {
        absl::StatusOr<std::unique_ptr<services::RecordWriter>> created =
            services::RecordWriter::Create(path);
        FUZZ_CHECK(created.ok(), created.status().ToString());
        writer = std::move(*created);
      }
      if (message.tag & 4) {  // raw bytes, no framing
        FUZZ_CHECK(::write(writer->fd(), message.bytes.data(), message.bytes.size()) ==
                       static_cast<ssize_t>(message.bytes.size()),
                   path);
      } else if (!message.bytes.empty()) {  // record payloads are never empty
        absl::Status appended = writer->Append(message.bytes);
        FUZZ_CHECK(appended.ok(), appended.ToString());
      }
    }
  }
  std::string first;
  {
    absl::StatusOr<std::unique_ptr<ReplayShard>> shard =
        ReplayShard::Open(FuzzShardOptions(dir), metrics);
    if (!shard.ok()) return 0;  // refused, with a message: fine
    first = Contents(*(*shard)->table());
    absl::Status checkpoint = (*shard)->Checkpoint();
    FUZZ_CHECK(checkpoint.ok(), checkpoint.ToString());
  }
  absl::StatusOr<std::unique_ptr<ReplayShard>> again =
      ReplayShard::Open(FuzzShardOptions(dir), metrics);
  FUZZ_CHECK(again.ok(), absl::StrCat("the shard's own checkpoint does not restore: ",
                                      again.status().ToString()));
  FUZZ_CHECK(Contents(*(*again)->table()) == first,
             absl::StrCat(Contents(*(*again)->table()), " vs ", first));
  return 0;
}
