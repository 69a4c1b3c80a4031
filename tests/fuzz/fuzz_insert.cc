// Fuzz target: chunk validation and table insert, the path every actor's chunk takes on a shard.
// Each message of the input (fuzz_input.h) is a serialized v1::Chunk inserted into one fresh
// in-memory table (tag % 4 != 3), or a sample of a few windows (tag % 4 == 3). Properties checked
// beyond "no crash, no sanitizer report": a rejected chunk leaves the table as it was, and a
// checkpoint of the table (its snapshot records) restores into a new table with the same
// contents - the shard's restart path.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "dreamfleet/v1/replay.pb.h"
#include "replay_server/table.h"
#include "replay_server/test_util.h"
#include "services/metrics.h"
#include "tests/fuzz/fuzz_input.h"

namespace dreamfleet::replay {
namespace {

TableOptions FuzzTableOptions() {
  TableOptions options;
  options.name = "default";
  options.capacity_steps = 48;  // small, so eviction runs
  options.max_stream_steps = 24;  // and a stream's own eviction beyond its share
  options.sequence_length = 4;
  options.limiter.min_size_to_sample = 1;  // ratio 0: inserts never wait
  options.rewarded_share = 0.5;  // the items holding a reward are kept through every eviction
  return options;
}

// What a restart must keep: everything Info reports but the limiter's wait times and the bytes
// held (a restored chunk may be stored more compactly).
std::string Contents(const Table& table) {
  v1::TableInfo info = table.Info();
  info.clear_limiter();
  info.clear_bytes();
  std::string out;
  info.SerializeToString(&out);
  return absl::StrCat(info.ShortDebugString(), "|", out.size());
}

std::vector<std::string> Seeds() {
  using testing::ChunkSpec;
  using testing::MakeChunk;
  std::vector<std::string> seeds;
  auto chunk_bytes = [](const ChunkSpec& spec) { return MakeChunk(spec).SerializeAsString(); };
  {  // one stream: an episode across two chunks, then a sample
    std::string seed;
    ChunkSpec a;
    a.episode_starts = {0};
    fuzz::AppendMessage(0, chunk_bytes(a), &seed);
    ChunkSpec b;
    b.sequence = 1;
    b.first_step_value = 8;
    b.episode_ends = {5};
    b.episode_starts = {6};
    fuzz::AppendMessage(0, chunk_bytes(b), &seed);
    fuzz::AppendMessage(3, "", &seed);
    seeds.push_back(seed);
  }
  {  // two streams, a duplicate, a gap, eviction past 48 steps
    std::string seed;
    for (uint64_t s = 0; s < 4; ++s) {
      ChunkSpec spec;
      spec.sequence = s;
      spec.first_step_value = static_cast<uint32_t>(8 * s);
      if (s == 0) spec.episode_starts = {0};
      fuzz::AppendMessage(0, chunk_bytes(spec), &seed);
      spec.actor_id = "actor-1";
      fuzz::AppendMessage(1, chunk_bytes(spec), &seed);
    }
    ChunkSpec duplicate;
    duplicate.sequence = 3;
    fuzz::AppendMessage(0, chunk_bytes(duplicate), &seed);
    ChunkSpec gap;
    gap.sequence = 9;
    fuzz::AppendMessage(0, chunk_bytes(gap), &seed);
    fuzz::AppendMessage(7, "", &seed);
    seeds.push_back(seed);
  }
  {  // a chunk whose image field has the wrong shape after a good one
    std::string seed;
    ChunkSpec good;
    fuzz::AppendMessage(0, chunk_bytes(good), &seed);
    ChunkSpec other;
    other.actor_id = "actor-2";
    other.image_size = 5;
    fuzz::AppendMessage(0, chunk_bytes(other), &seed);
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
  absl::StatusOr<std::unique_ptr<Table>> created = Table::Create(FuzzTableOptions(), metrics);
  FUZZ_CHECK(created.ok(), created.status().ToString());
  Table& table = **created;
  for (const fuzz::Message& message : fuzz::SplitMessages(data, size, 32)) {
    if (message.tag % 4 == 3) {
      v1::SampleResponse batch;
      const int batch_size = 1 + (message.tag >> 2) % 4;
      const absl::Status sampled =
          table.Sample(batch_size, table.sequence_length(), absl::InfinitePast(), &batch);
      // Empty or rate-limited is fine; an item whose steps are gone is not.
      FUZZ_CHECK(!absl::IsInternal(sampled), sampled.ToString());
      continue;
    }
    v1::Chunk chunk;
    if (!chunk.ParseFromArray(message.bytes.data(), static_cast<int>(message.bytes.size()))) {
      continue;
    }
    const std::string before = Contents(table);
    absl::StatusOr<InsertResult> inserted = table.Insert(chunk, absl::InfinitePast());
    if (!inserted.ok() || inserted->duplicate) {
      // Nothing stored. (inserted_steps counts only stored chunks.)
      FUZZ_CHECK(Contents(table) == before,
                 absl::StrCat(inserted.ok() ? "duplicate" : inserted.status().ToString(),
                              " changed the table"));
    }
  }

  // The checkpoint path: snapshot, records, restore into a new table.
  Table::Snapshot snapshot = table.TakeSnapshot([] {});
  absl::StatusOr<std::unique_ptr<Table>> restored = Table::Create(FuzzTableOptions(), metrics);
  FUZZ_CHECK(restored.ok(), restored.status().ToString());
  absl::Status header = (*restored)->RestoreHeader(snapshot.header);
  FUZZ_CHECK(header.ok(), header.ToString());
  for (const auto& stored : snapshot.chunks) {
    v1::StoredChunkRecord record;
    absl::Status to_record = table.ToRecord(*stored, &record);
    FUZZ_CHECK(to_record.ok(), to_record.ToString());
    absl::Status applied = (*restored)->Restore(record, /*counted_in_header=*/true);
    FUZZ_CHECK(applied.ok(), applied.ToString());
  }
  FUZZ_CHECK(Contents(**restored) == Contents(table),
             absl::StrCat("restored ", Contents(**restored), " vs ", Contents(table)));
  return 0;
}
