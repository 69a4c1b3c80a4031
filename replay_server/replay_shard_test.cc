#include "replay_server/replay_shard.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replay_server/test_util.h"
#include "replay_server/write_ahead_log.h"
#include "services/record_file.h"

namespace dreamfleet::replay {
namespace {

using testing::ChunkSpec;
using testing::MakeChunk;

std::string TempDir() {
  std::string pattern = ::testing::TempDir() + "/replay_shard_XXXXXX";
  return mkdtemp(pattern.data());
}

ShardOptions Options(const std::string& dir) {
  ShardOptions options;
  options.data_dir = dir;
  options.table.sequence_length = 4;
  options.table.capacity_steps = 1000;
  options.fsync_interval = absl::Milliseconds(1);
  options.checkpoint_interval = absl::Hours(1);
  return options;
}

void InsertChunks(ReplayShard* shard, uint64_t first, uint64_t count) {
  for (uint64_t i = first; i < first + count; ++i) {
    ChunkSpec spec;
    spec.sequence = i;
    spec.first_step_value = 8 * i;
    if (i == 0) spec.episode_starts = {0};
    absl::StatusOr<ReplayShard::PendingInsert> pending =
        shard->Insert(MakeChunk(spec), absl::Now() + absl::Seconds(30));
    ASSERT_TRUE(pending.ok()) << pending.status();
    ASSERT_TRUE(shard->WaitDurable(pending->lsn).ok());
  }
}

TEST(RecordFileTest, ReadsBackWhatWasWrittenAndDetectsATornTail) {
  const std::string path = TempDir() + "/records";
  {
    auto writer = services::RecordWriter::Create(path);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append("hello ", "world").ok());
    ASSERT_TRUE((*writer)->Append(std::string(100000, 'x')).ok());
    ASSERT_TRUE((*writer)->Sync().ok());
  }
  {
    std::ofstream torn(path, std::ios::app | std::ios::binary);
    torn.write("\x10\x00\x00\x00\x01\x02", 6);
  }
  auto reader = services::RecordReader::Open(path);
  ASSERT_TRUE(reader.ok());
  std::string payload;
  absl::StatusOr<bool> got = (*reader)->Next(&payload);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(*got);
  EXPECT_EQ(payload, "hello world");
  got = (*reader)->Next(&payload);
  ASSERT_TRUE(got.ok() && *got) << got.status();
  EXPECT_EQ(payload.size(), 100000u);
  got = (*reader)->Next(&payload);
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
}

// A shard's files after chunks 0-2, a checkpoint, and chunks 3-4 in the log after it (40 steps).
void CheckpointThenTwoMoreChunks(const std::string& dir) {
  services::Metrics metrics;
  auto shard = ReplayShard::Open(Options(dir), &metrics);
  ASSERT_TRUE(shard.ok()) << shard.status();
  InsertChunks(shard->get(), 0, 3);
  ASSERT_TRUE((*shard)->Checkpoint().ok());
  InsertChunks(shard->get(), 3, 2);
}

// Flips the byte at `offset` of `path`.
void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(offset));
  char byte = 0;
  file.read(&byte, 1);
  byte = static_cast<char>(byte ^ 0x5a);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(&byte, 1);
  ASSERT_TRUE(file.good()) << path;
}

// The start offset of every record of `path`.
std::vector<uint64_t> RecordOffsets(const std::string& path) {
  std::vector<uint64_t> offsets;
  auto reader = services::RecordReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  std::string payload;
  while (true) {
    const uint64_t at = (*reader)->offset();
    absl::StatusOr<bool> got = (*reader)->Next(&payload);
    if (!got.ok() || !*got) break;
    offsets.push_back(at);
  }
  return offsets;
}

TEST(RecordFileTest, ADamagedRecordCostsOnlyItself) {
  const std::string path = TempDir() + "/records";
  {
    auto writer = services::RecordWriter::Create(path);
    ASSERT_TRUE(writer.ok());
    // Mostly zero bytes, as MinAtar's observations are: a scan must not take a run of zeros for
    // records.
    for (int i = 0; i < 4; ++i) {
      std::string payload(1000, '\0');
      payload[0] = static_cast<char>('a' + i);
      ASSERT_TRUE((*writer)->Append(payload).ok());
    }
    EXPECT_FALSE((*writer)->Append("").ok()) << "an empty record";
  }
  const std::vector<uint64_t> at = RecordOffsets(path);
  ASSERT_EQ(at.size(), 4u);
  auto read_all = [&](std::vector<char>* kept, uint64_t* skipped) {
    auto reader = services::RecordReader::Open(path);
    ASSERT_TRUE(reader.ok());
    std::string payload;
    while (true) {
      absl::StatusOr<bool> got = (*reader)->Next(&payload);
      if (!got.ok()) {
        *skipped += (*reader)->Resync();
        continue;
      }
      if (!*got) break;
      kept->push_back(payload[0]);
    }
  };
  // A byte of record 1's payload: record 1 is lost, the others read.
  FlipByte(path, at[1] + 8 + 500);  // a zero byte of record 1
  std::vector<char> kept;
  uint64_t skipped = 0;
  read_all(&kept, &skipped);
  EXPECT_EQ(kept, (std::vector<char>{'a', 'c', 'd'}));
  EXPECT_EQ(skipped, at[2] - at[1]);
  // And record 2's length too: found again by scanning.
  FlipByte(path, at[2] + 1);
  kept.clear();
  skipped = 0;
  read_all(&kept, &skipped);
  EXPECT_EQ(kept, (std::vector<char>{'a', 'd'}));
  EXPECT_EQ(skipped, at[3] - at[1]);
}

// The files of a shard that stored chunks 0-4 in its log and was killed before any checkpoint.
std::string CrashedAfterFiveChunks() {
  const std::string dir = TempDir();
  const std::string crashed = TempDir();
  services::Metrics metrics;
  auto shard = ReplayShard::Open(Options(dir), &metrics);
  EXPECT_TRUE(shard.ok()) << shard.status();
  InsertChunks(shard->get(), 0, 5);
  std::filesystem::copy(
      dir, crashed,
      std::filesystem::copy_options::overwrite_existing | std::filesystem::copy_options::recursive);
  return crashed;
}

TEST(ReplayShardTest, ADamagedWalRecordLosesOnlyItsChunkAndIsCounted) {
  const std::string crashed = CrashedAfterFiveChunks();
  const std::vector<std::pair<uint64_t, std::string>> wal = WriteAheadLog::ListFiles(crashed);
  ASSERT_EQ(wal.size(), 1u);
  // The file's header, then chunks 0-4.
  const std::vector<uint64_t> all = RecordOffsets(wal[0].second);
  ASSERT_EQ(all.size(), 6u);
  const std::vector<uint64_t> at(all.begin() + 1, all.end());
  FlipByte(wal[0].second, at[2] + 200);  // inside chunk 2's image bytes
  services::Metrics metrics;
  auto shard = ReplayShard::Open(Options(crashed), &metrics);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ((*shard)->restore_stats().chunks, 4u);
  EXPECT_EQ((*shard)->restore_stats().damaged_records, 1u);
  EXPECT_EQ((*shard)->restore_stats().dropped_tails, 0u);
  EXPECT_EQ((*shard)->restore_stats().lost_bytes, at[3] - at[2]);
  EXPECT_EQ((*shard)->table()->size_steps(), 32u) << "chunks 0, 1, 3 and 4";
  EXPECT_THAT(metrics.TextExposition(),
              ::testing::HasSubstr("dreamfleet_replay_restore_damaged_records 1"));
  InsertChunks(shard->get(), 5, 1);  // the stream goes on after the restored chunk 4
  EXPECT_EQ((*shard)->table()->size_steps(), 40u);
}

// Every log file starts with a header, so an emptied (or cut) one is the loss of what it held,
// refused by name, never a log that had nothing yet.
TEST(ReplayShardTest, AnEmptiedOrCutLogFileIsRefusedByName) {
  for (const uint64_t keep : {uint64_t{0}, uint64_t{10}}) {
    const std::string crashed = CrashedAfterFiveChunks();
    const std::vector<std::pair<uint64_t, std::string>> wal = WriteAheadLog::ListFiles(crashed);
    ASSERT_EQ(wal.size(), 1u);
    std::filesystem::resize_file(wal[0].second, keep);
    services::Metrics metrics;
    auto shard = ReplayShard::Open(Options(crashed), &metrics);
    ASSERT_FALSE(shard.ok());
    EXPECT_TRUE(absl::IsDataLoss(shard.status())) << shard.status();
    EXPECT_THAT(shard.status().message(),
                ::testing::HasSubstr(wal[0].second + (keep == 0 ? " is empty" : " is cut short")));
  }
  // A log file that is only its header (nothing written yet) restores to an empty table.
  const std::string fresh = TempDir();
  {
    services::Metrics metrics;
    ASSERT_TRUE(ReplayShard::Open(Options(fresh), &metrics).ok());
  }
  services::Metrics metrics;
  auto shard = ReplayShard::Open(Options(fresh), &metrics);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ((*shard)->table()->size_steps(), 0u);
}

// Log files of the version before headers (no WAL_FORMAT file, no header record, and an empty
// newest file as every clean stop left) restore as before; the files written from then on have
// headers.
TEST(ReplayShardTest, LogFilesWithoutHeadersFromAnEarlierVersionStillRestore) {
  const std::string crashed = CrashedAfterFiveChunks();
  const std::string wal0 = WriteAheadLog::FileName(crashed, 0);
  const std::vector<uint64_t> at = RecordOffsets(wal0);
  ASSERT_EQ(at.size(), 6u);
  std::string bytes;
  {
    std::ifstream in(wal0, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  {
    std::ofstream out(wal0, std::ios::binary | std::ios::trunc);
    out << bytes.substr(at[1]);  // without the header
  }
  std::ofstream(WriteAheadLog::FileName(crashed, 1), std::ios::binary | std::ios::trunc).close();
  std::filesystem::remove(crashed + "/WAL_FORMAT");
  {
    services::Metrics metrics;
    auto shard = ReplayShard::Open(Options(crashed), &metrics);
    ASSERT_TRUE(shard.ok()) << shard.status();
    EXPECT_EQ((*shard)->table()->size_steps(), 40u);
    EXPECT_EQ((*shard)->restore_stats().damaged_records, 0u);
  }
  std::ifstream format(crashed + "/WAL_FORMAT");
  std::string line;
  ASSERT_TRUE(std::getline(format, line));
  EXPECT_EQ(line, "headers-from 2");
}

TEST(ReplayShardTest, ADeletedCheckpointIsRefusedRatherThanRestoredFromTheLaterLogAlone) {
  const std::string dir = TempDir();
  CheckpointThenTwoMoreChunks(dir);
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("checkpoint", 0) == 0) {
      std::filesystem::remove(entry.path(), error);
    }
  }
  services::Metrics metrics;
  auto shard = ReplayShard::Open(Options(dir), &metrics);
  ASSERT_FALSE(shard.ok()) << "started from the log after a deleted checkpoint";
  EXPECT_TRUE(absl::IsDataLoss(shard.status())) << shard.status();
  EXPECT_THAT(std::string(shard.status().message()), ::testing::HasSubstr("no checkpoint"));
}

// The first byte of the second chunk record of the checkpoint at `path` (damage there leaves
// the header readable).
uint64_t SecondChunkRecord(const std::string& path) {
  const std::vector<uint64_t> at = RecordOffsets(path);
  EXPECT_GE(at.size(), 3u) << path;
  return at.size() >= 3 ? at[2] + 40 : 0;
}

TEST(ReplayShardTest, ADamagedCheckpointFallsBackToThePreviousOneAndTheLogAfterIt) {
  const std::string dir = TempDir();
  CheckpointThenTwoMoreChunks(dir);  // checkpoints of 3 and (on close) 5 chunks
  ASSERT_TRUE(std::filesystem::exists(dir + "/checkpoint.prev.bin"));
  FlipByte(dir + "/checkpoint.bin", SecondChunkRecord(dir + "/checkpoint.bin"));
  {
    services::Metrics metrics;
    auto shard = ReplayShard::Open(Options(dir), &metrics);
    ASSERT_TRUE(shard.ok()) << shard.status();
    EXPECT_TRUE((*shard)->restore_stats().used_previous_checkpoint);
    EXPECT_EQ((*shard)->table()->size_steps(), 40u) << "every acknowledged step is back";
    EXPECT_TRUE(std::filesystem::exists(dir + "/checkpoint.damaged.bin"));
    EXPECT_THAT(metrics.TextExposition(),
                ::testing::HasSubstr("\ndreamfleet_replay_restore_used_previous_checkpoint 1\n"));
    InsertChunks(shard->get(), 5, 1);  // the stream goes on after the restored chunk 4
    ASSERT_TRUE((*shard)->Checkpoint().ok());
    InsertChunks(shard->get(), 6, 1);
  }
  // The checkpoints written after the fallback are good again.
  services::Metrics metrics;
  auto shard = ReplayShard::Open(Options(dir), &metrics);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_FALSE((*shard)->restore_stats().used_previous_checkpoint);
  EXPECT_EQ((*shard)->table()->size_steps(), 56u);
}

TEST(ReplayShardTest, TheNewestCheckpointFallsBackToTheLogAfterItsPreviousOneWasRemoved) {
  const std::string dir = TempDir();
  CheckpointThenTwoMoreChunks(dir);
  // Then the newest goes too: the previous one and the log after it hold everything.
  std::filesystem::remove(dir + "/checkpoint.bin");
  services::Metrics metrics;
  auto shard = ReplayShard::Open(Options(dir), &metrics);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ((*shard)->table()->size_steps(), 40u);
}

TEST(ReplayShardTest, TheFirstCheckpointFallsBackToTheWholeLog) {
  const std::string dir = TempDir();
  {
    services::Metrics metrics;
    auto shard = ReplayShard::Open(Options(dir), &metrics);
    ASSERT_TRUE(shard.ok()) << shard.status();
    InsertChunks(shard->get(), 0, 3);
    ASSERT_TRUE((*shard)->Checkpoint().ok());
  }
  ASSERT_FALSE(std::filesystem::exists(dir + "/checkpoint.prev.bin"));
  FlipByte(dir + "/checkpoint.bin", SecondChunkRecord(dir + "/checkpoint.bin"));
  services::Metrics metrics;
  auto shard = ReplayShard::Open(Options(dir), &metrics);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_TRUE((*shard)->restore_stats().used_previous_checkpoint);
  EXPECT_EQ((*shard)->table()->size_steps(), 24u);
}

TEST(ReplayShardTest, BothCheckpointsDamagedOrAMissingLogFileIsRefused) {
  const std::string damaged = TempDir();
  CheckpointThenTwoMoreChunks(damaged);
  FlipByte(damaged + "/checkpoint.bin", SecondChunkRecord(damaged + "/checkpoint.bin"));
  FlipByte(damaged + "/checkpoint.prev.bin", SecondChunkRecord(damaged + "/checkpoint.prev.bin"));
  services::Metrics metrics;
  auto shard = ReplayShard::Open(Options(damaged), &metrics);
  ASSERT_FALSE(shard.ok());
  EXPECT_TRUE(absl::IsDataLoss(shard.status())) << shard.status();
  EXPECT_THAT(std::string(shard.status().message()),
              ::testing::HasSubstr("both checkpoints are damaged"));

  const std::string missing = TempDir();
  CheckpointThenTwoMoreChunks(missing);
  const std::vector<std::pair<uint64_t, std::string>> logs = WriteAheadLog::ListFiles(missing);
  ASSERT_FALSE(logs.empty());
  std::filesystem::remove(logs.back().second);  // the file the newest checkpoint starts at
  shard = ReplayShard::Open(Options(missing), &metrics);
  ASSERT_FALSE(shard.ok()) << "started without the log file its checkpoint names";
  EXPECT_TRUE(absl::IsDataLoss(shard.status())) << shard.status();
  EXPECT_THAT(std::string(shard.status().message()), ::testing::HasSubstr("is missing"));
}

// A resent chunk is acknowledged only once its first copy is durable: its insert waits for the
// log record the first copy wrote (which may not be synced yet), not for nothing.
TEST(ReplayShardTest, ADuplicateWaitsForItsFirstCopysLogRecord) {
  ShardOptions options = Options(TempDir());
  options.fsync_interval = absl::Hours(1);  // nothing synced until asked
  services::Metrics metrics;
  auto shard = ReplayShard::Open(options, &metrics);
  ASSERT_TRUE(shard.ok()) << shard.status();
  ChunkSpec spec;
  spec.episode_starts = {0};
  absl::StatusOr<ReplayShard::PendingInsert> first =
      (*shard)->Insert(MakeChunk(spec), absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_GT(first->lsn, 0u);
  absl::StatusOr<ReplayShard::PendingInsert> again =
      (*shard)->Insert(MakeChunk(spec), absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->result.duplicate);
  EXPECT_GE(again->lsn, first->lsn) << "a duplicate acknowledged before its first copy is durable";
  EXPECT_EQ((*shard)->table()->size_steps(), 8u);
}

TEST(ReplayShardTest, RestoresFromTheWriteAheadLogAfterACrash) {
  const std::string crashed = CrashedAfterFiveChunks();  // WAL only, no checkpoint yet
  services::Metrics metrics;
  auto shard = ReplayShard::Open(Options(crashed), &metrics);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ((*shard)->restore_stats().dropped_tails, 0u);
  EXPECT_EQ((*shard)->table()->size_steps(), 40u);
}

TEST(ReplayShardTest, CheckpointPlusLaterWalRestoresEverything) {
  const std::string dir = TempDir();
  CheckpointThenTwoMoreChunks(dir);
  services::Metrics metrics2;
  auto shard = ReplayShard::Open(Options(dir), &metrics2);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ((*shard)->table()->size_steps(), 40u);
  v1::SampleResponse batch;
  ASSERT_TRUE((*shard)->table()->Sample(4, 4, absl::Now() + absl::Seconds(30), &batch).ok());
  InsertChunks(shard->get(), 5, 1);
  EXPECT_EQ((*shard)->table()->size_steps(), 48u);
  EXPECT_EQ((*shard)->table()->Info().episodes(), 1u);
}

// A stream held to its share of the capacity restarts (checkpoint, then the log after it) with
// exactly the contents it had: the share's evictions replay in the order they happened.
TEST(ReplayShardTest, AStreamsShareEvictionsReplayTheSameAfterARestart) {
  const std::string dir = TempDir();
  ShardOptions options = Options(dir);
  options.table.max_stream_steps = 24;
  v1::TableInfo before;
  {
    services::Metrics metrics;
    auto shard = ReplayShard::Open(options, &metrics);
    ASSERT_TRUE(shard.ok()) << shard.status();
    InsertChunks(shard->get(), 0, 4);  // 32 steps of one stream: its first chunk goes
    ASSERT_TRUE((*shard)->Checkpoint().ok());
    InsertChunks(shard->get(), 4, 3);  // three more, logged only: three more go
    const v1::TableInfo info = (*shard)->table()->Info();
    EXPECT_EQ(info.size_steps(), 24u);
    EXPECT_EQ(info.evicted_steps(), 32u);
    before = info;
  }
  services::Metrics metrics;
  auto shard = ReplayShard::Open(options, &metrics);
  ASSERT_TRUE(shard.ok()) << shard.status();
  v1::TableInfo info = (*shard)->table()->Info();
  info.clear_limiter();
  info.clear_bytes();
  before.clear_limiter();  // wait times, and bytes (a restored chunk may be stored more compactly)
  before.clear_bytes();
  EXPECT_EQ(info.ShortDebugString(), before.ShortDebugString());
}

TEST(ReplayShardTest, ACrashAfterACheckpointKeepsTheLimiterCountersExactly) {
  const std::string dir = TempDir();
  const std::string crashed = TempDir();
  services::Metrics metrics;
  v1::TableInfo before;
  {
    auto shard = ReplayShard::Open(Options(dir), &metrics);
    ASSERT_TRUE(shard.ok()) << shard.status();
    InsertChunks(shard->get(), 0, 3);
    v1::SampleResponse batch;
    ASSERT_TRUE((*shard)->table()->Sample(2, 4, absl::Now() + absl::Seconds(30), &batch).ok());
    ASSERT_TRUE((*shard)->Checkpoint().ok());
    InsertChunks(shard->get(), 3, 2);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE((*shard)->table()->Sample(4, 4, absl::Now() + absl::Seconds(30), &batch).ok());
    }
    before = (*shard)->table()->Info();
    // The files as a kill -9 would leave them: the checkpoint and the log written after it.
    std::filesystem::copy(dir, crashed,
                          std::filesystem::copy_options::overwrite_existing |
                              std::filesystem::copy_options::recursive);
  }
  EXPECT_EQ(before.inserted_steps(), 40u);
  EXPECT_EQ(before.sampled_steps(), 2u * 4 + 3 * 4 * 4);
  services::Metrics metrics2;
  auto shard = ReplayShard::Open(Options(crashed), &metrics2);
  ASSERT_TRUE(shard.ok()) << shard.status();
  const v1::TableInfo after = (*shard)->table()->Info();
  EXPECT_EQ(after.inserted_steps(), before.inserted_steps());  // not the checkpoint's twice
  EXPECT_EQ(after.sampled_steps(), before.sampled_steps());    // nor the samples since lost
  EXPECT_EQ(after.sampled_items(), before.sampled_items());
  EXPECT_EQ(after.size_steps(), before.size_steps());
  EXPECT_EQ(after.evicted_steps(), before.evicted_steps());
}

TEST(ReplayShardTest, ASecondShardOnTheSameDataDirIsRefusedUntilTheFirstIsGone) {
  const std::string dir = TempDir();
  services::Metrics metrics;
  auto first = ReplayShard::Open(Options(dir), &metrics);
  ASSERT_TRUE(first.ok()) << first.status();
  InsertChunks(first->get(), 0, 2);
  services::Metrics metrics2;
  auto second = ReplayShard::Open(Options(dir), &metrics2);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_NE(second.status().message().find("in use by another replay shard"), std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find(std::to_string(::getpid())), std::string::npos)
      << second.status();
  first->reset();  // closes the shard and releases the lock
  services::Metrics metrics3;
  auto third = ReplayShard::Open(Options(dir), &metrics3);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)->table()->size_steps(), 16u);  // the first shard's data, intact
}

}  // namespace
}  // namespace dreamfleet::replay
