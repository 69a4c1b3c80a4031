#include "replay_server/table.h"

#include <atomic>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replay_server/test_util.h"
#include "tests/test_process.h"

namespace dreamfleet::replay {
namespace {

using ::testing::HasSubstr;
using testing::ChunkSpec;
using testing::MakeChunk;

const absl::Time kSoon() { return absl::Now() + absl::Seconds(30); }

TableOptions SmallTable(int t = 4, uint64_t capacity = 1000) {
  TableOptions options;
  options.capacity_steps = capacity;
  options.sequence_length = t;
  options.limiter.min_size_to_sample = 1;
  return options;
}

std::unique_ptr<Table> MakeTable(TableOptions options, services::Metrics* metrics) {
  absl::StatusOr<std::unique_ptr<Table>> table = Table::Create(std::move(options), metrics);
  EXPECT_TRUE(table.ok()) << table.status();
  return std::move(*table);
}

TEST(TableTest, FirstChunkFixesTheSignatureAndLaterChunksAreChecked) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(), &metrics);
  ChunkSpec spec;
  spec.episode_starts = {0};
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  ASSERT_TRUE(table->signature().has_value());
  EXPECT_EQ(table->signature()->fields().size(), 6u);

  spec.sequence = 1;
  spec.image_size = 5;
  absl::StatusOr<InsertResult> bad = table->Insert(MakeChunk(spec), kSoon());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(bad.status().message(), HasSubstr("field \"image\" has shape [8,5,5,3], expected [8,4,4,3]"));
  EXPECT_EQ(table->size_steps(), 8u);
}

TEST(TableTest, RejectsNonFiniteRewardsNamingTheField) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(), &metrics);
  ChunkSpec spec;
  spec.reward = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<InsertResult> bad = table->Insert(MakeChunk(spec), kSoon());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(bad.status().message(), HasSubstr("field \"reward\" has the non-finite value nan"));
  EXPECT_EQ(table->size_steps(), 0u);
}

TEST(TableTest, ItemsAreWindowsOfOneStreamAndSampleCopiesThem) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(/*t=*/4), &metrics);
  ChunkSpec a;
  a.actor_id = "a";
  a.num_steps = 3;
  a.first_step_value = 10;
  a.episode_starts = {0};
  ChunkSpec b = a;
  b.actor_id = "b";
  b.first_step_value = 100;
  ASSERT_TRUE(table->Insert(MakeChunk(a), kSoon()).ok());
  ASSERT_TRUE(table->Insert(MakeChunk(b), kSoon()).ok());
  EXPECT_EQ(table->Info().items(), 0u);  // no stream has 4 steps yet
  a.sequence = 1;
  a.first_step_value = 13;
  a.episode_starts = {};
  ASSERT_TRUE(table->Insert(MakeChunk(a), kSoon()).ok());
  // Stream a has 6 steps: windows start at positions 0, 1, 2.
  EXPECT_EQ(table->Info().items(), 3u);
  v1::SampleResponse batch;
  ASSERT_TRUE(table->Sample(8, 4, kSoon(), &batch).ok());
  ASSERT_EQ(batch.keys_size(), 8);
  const v1::TensorProto& image = batch.data(0).tensor();
  ASSERT_EQ(batch.data(0).name(), "image");
  EXPECT_THAT(std::vector<int64_t>(image.shape().begin(), image.shape().end()),
              ::testing::ElementsAre(8, 4, 4, 4, 3));
  const size_t step_bytes = 4 * 4 * 3;
  for (int b = 0; b < 8; ++b) {
    const uint8_t first = image.data()[b * 4 * step_bytes];
    EXPECT_GE(first, 10);
    EXPECT_LE(first, 12);
    for (int t = 0; t < 4; ++t) {
      EXPECT_EQ(static_cast<uint8_t>(image.data()[(b * 4 + t) * step_bytes]), first + t);
    }
  }
}

TEST(TableTest, EvictsOldestChunksBeyondCapacityAndTheirItems) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(/*t=*/2, /*capacity=*/20), &metrics);
  for (uint64_t i = 0; i < 5; ++i) {
    ChunkSpec spec;
    spec.sequence = i;
    spec.num_steps = 8;
    spec.first_step_value = 8 * i;
    spec.episode_starts = {0};
    spec.episode_ends = {7};
    ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  }
  const v1::TableInfo info = table->Info();
  EXPECT_EQ(info.size_steps(), 16u);
  EXPECT_EQ(info.evicted_steps(), 24u);
  EXPECT_EQ(info.episodes(), 2u);
  EXPECT_EQ(info.items(), 15u);
  EXPECT_EQ(info.inserted_steps(), 40u);
}

// Restores `table`'s snapshot (as a checkpoint would) into a new table with the same options.
std::unique_ptr<Table> RestoredCopy(Table& table, TableOptions options, services::Metrics* metrics,
                                    bool drop_actor_counts = false) {
  Table::Snapshot snapshot = table.TakeSnapshot([] {});
  if (drop_actor_counts) snapshot.header.clear_actors();  // a checkpoint of an older version
  auto copy = MakeTable(std::move(options), metrics);
  EXPECT_TRUE(copy->RestoreHeader(snapshot.header).ok());
  for (const auto& stored : snapshot.chunks) {
    v1::StoredChunkRecord record;
    EXPECT_TRUE(table.ToRecord(*stored, &record).ok());
    EXPECT_TRUE(copy->Restore(record, /*counted_in_header=*/true).ok());
  }
  return copy;
}

// Inserts `chunks` chunks of 8 steps, each a whole episode, for `actor` (sequences from `first`).
void InsertEpisodes(Table& table, const std::string& actor, uint64_t first, uint64_t chunks) {
  for (uint64_t i = first; i < first + chunks; ++i) {
    ChunkSpec spec;
    spec.actor_id = actor;
    spec.sequence = i;
    spec.first_step_value = static_cast<uint32_t>(8 * i);
    spec.episode_starts = {0};
    spec.episode_ends = {7};
    ASSERT_TRUE(table.Insert(MakeChunk(spec), kSoon()).ok());
  }
}

// A stream beyond its share of the capacity evicts its own oldest chunks; another stream's steps,
// which plain FIFO would have evicted first, stay.
TEST(TableTest, AStreamBeyondItsShareEvictsItsOwnOldestChunks) {
  services::Metrics metrics;
  TableOptions options = SmallTable(/*t=*/4, /*capacity=*/40);
  options.max_stream_steps = 16;
  auto table = MakeTable(options, &metrics);
  InsertEpisodes(*table, "quiet", 0, 2);
  InsertEpisodes(*table, "flood", 0, 6);
  v1::TableInfo info = table->Info();
  EXPECT_EQ(info.size_steps(), 32u);  // 16 each; FIFO alone would have kept flood's newest 40
  EXPECT_EQ(info.evicted_steps(), 32u);
  EXPECT_EQ(info.episodes(), 4u);
  EXPECT_EQ(info.items(), 2u * (16 - 4 + 1));
  EXPECT_THAT(metrics.TextExposition(),
              HasSubstr("dreamfleet_replay_share_evicted_steps_total{table=\"default\"} 32"));
  // Flood keeps its newest two episodes (chunks 4 and 5), quiet both of its own.
  v1::ListEpisodesRequest request;
  absl::StatusOr<v1::ListEpisodesResponse> episodes = table->ListEpisodes(request);
  ASSERT_TRUE(episodes.ok()) << episodes.status();
  std::string listed;
  for (const v1::EpisodeInfo& e : episodes->episodes()) {
    absl::StrAppend(&listed, e.actor_id(), "@", e.id(), " ");
  }
  EXPECT_EQ(listed, "quiet@0 quiet@8 flood@48 flood@56 ");
  // The same contents after a restart, and the share still holds for what comes next.
  auto restored = RestoredCopy(*table, options, &metrics);
  EXPECT_EQ(restored->Info().size_steps(), 32u);
  EXPECT_EQ(restored->Info().items(), info.items());
  InsertEpisodes(*restored, "flood", 6, 1);
  EXPECT_EQ(restored->Info().size_steps(), 32u);
  // Past the capacity the oldest chunk overall goes, as before: quiet's first.
  InsertEpisodes(*table, "third", 0, 2);
  info = table->Info();
  EXPECT_EQ(info.size_steps(), 40u);
  EXPECT_EQ(info.evicted_steps(), 40u);
}

TEST(TableTest, AShareBelowOneItemIsRefused) {
  services::Metrics metrics;
  TableOptions options = SmallTable(/*t=*/8, /*capacity=*/40);
  options.max_stream_steps = 7;
  absl::StatusOr<std::unique_ptr<Table>> table = Table::Create(options, &metrics);
  EXPECT_TRUE(absl::IsInvalidArgument(table.status()));
  EXPECT_THAT(table.status().message(), HasSubstr("max_stream_steps 7 is below sequence_length 8"));
}

std::string ActorCounts(const Table& table) {
  std::string out;
  const v1::TableInfo info = table.Info();
  for (const v1::ActorCount& actor : info.actors()) {
    absl::StrAppend(&out, actor.actor_id(), ":", actor.steps(), "/", actor.episodes(), " ");
  }
  return out;
}

// Info's per-actor counts are lifetime counts (evicted steps included) of the streams that hold
// steps; a checkpoint keeps them. Found by fuzz_insert: a restart used to count only the chunks
// still stored. A stream whose steps were all evicted is not listed (nor kept in checkpoints).
TEST(TableTest, PerActorCountsSurviveACheckpointAndListOnlyStreamsHoldingSteps) {
  services::Metrics metrics;
  const TableOptions options = SmallTable(4, 24);
  auto table = MakeTable(options, &metrics);
  ChunkSpec gone;
  gone.actor_id = "gone";
  gone.episode_starts = {0};
  ASSERT_TRUE(table->Insert(MakeChunk(gone), kSoon()).ok());
  for (uint64_t i = 0; i < 4; ++i) {
    ChunkSpec spec;
    spec.actor_id = "live";
    spec.sequence = i;
    spec.episode_starts = {0};
    ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  }
  // 40 steps went in, 24 fit: "gone" and live's chunk 0 were evicted.
  EXPECT_EQ(ActorCounts(*table), "live:32/4 ");
  auto restored = RestoredCopy(*table, options, &metrics);
  EXPECT_EQ(ActorCounts(*restored), "live:32/4 ");
  EXPECT_EQ(restored->Info().episodes(), table->Info().episodes());
  // A checkpoint written before the header carried the counts: they count what is stored.
  auto from_old = RestoredCopy(*table, options, &metrics, /*drop_actor_counts=*/true);
  EXPECT_EQ(ActorCounts(*from_old), "live:24/3 ");
}

// An episode still being written whose steps were all evicted is gone, as after a restart; the
// stream's next steps start a truncated episode. Found by fuzz_insert.
TEST(TableTest, AnOpenEpisodeWhoseStepsWereAllEvictedIsGone) {
  services::Metrics metrics;
  const TableOptions options = SmallTable(4, 16);
  auto table = MakeTable(options, &metrics);
  ChunkSpec open;
  open.actor_id = "slow";
  open.episode_starts = {0};  // never ends
  ASSERT_TRUE(table->Insert(MakeChunk(open), kSoon()).ok());
  for (uint64_t i = 0; i < 2; ++i) {
    ChunkSpec spec;
    spec.actor_id = "fast";
    spec.sequence = i;
    spec.episode_starts = {0};
    spec.episode_ends = {7};
    ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  }
  absl::StatusOr<v1::ListEpisodesResponse> listed = table->ListEpisodes(v1::ListEpisodesRequest());
  ASSERT_TRUE(listed.ok());
  for (const v1::EpisodeInfo& episode : listed->episodes()) {
    EXPECT_NE(episode.actor_id(), "slow") << "an episode with no stored step is listed";
  }
  EXPECT_EQ(table->Info().episodes(), 2u);
  EXPECT_EQ(RestoredCopy(*table, options, &metrics)->Info().episodes(), 2u);
  // The slow stream goes on: its next chunk opens a new (truncated) episode.
  open.sequence = 1;
  open.episode_starts = {};
  ASSERT_TRUE(table->Insert(MakeChunk(open), kSoon()).ok());
  EXPECT_EQ(table->Info().episodes(), 2u);  // fast's first was evicted, slow's new one came
}

TEST(TableTest, EpisodesHaveLengthsReturnsAndCanBeFetched) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(), &metrics);
  ChunkSpec spec;
  spec.num_steps = 10;
  spec.episode_starts = {0, 6};
  spec.episode_ends = {5};
  spec.reward = 0.5f;
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  v1::ListEpisodesRequest request;
  absl::StatusOr<v1::ListEpisodesResponse> list = table->ListEpisodes(request);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->episodes_size(), 2);
  EXPECT_EQ(list->episodes(0).length(), 6u);
  EXPECT_DOUBLE_EQ(list->episodes(0).episode_return(), 3.0);
  EXPECT_TRUE(list->episodes(0).complete());
  EXPECT_FALSE(list->episodes(1).complete());
  request.set_min_return(2.5);
  list = table->ListEpisodes(request);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->episodes_size(), 1);

  std::vector<v1::GetEpisodeResponse> messages;
  ASSERT_TRUE(table->GetEpisode(list->episodes(0).id(), 4, [&](const v1::GetEpisodeResponse& m) {
                  messages.push_back(m);
                  return true;
                }).ok());
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].info().length(), 6u);
  EXPECT_EQ(messages[0].data(0).tensor().shape(0), 4);
  EXPECT_EQ(messages[1].data(0).tensor().shape(0), 2);
  EXPECT_EQ(messages[1].first_step(), 4u);
  EXPECT_TRUE(absl::IsNotFound(table->GetEpisode(999, 4, [](const auto&) { return true; })));
}

TEST(TableTest, DuplicateSequenceIsAcknowledgedButNotStoredTwice) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(), &metrics);
  ChunkSpec spec;
  spec.episode_starts = {0};
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  spec.sequence = 1;
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  absl::StatusOr<InsertResult> again = table->Insert(MakeChunk(spec), kSoon());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(table->size_steps(), 16u);
}

// The insert protocol, chunk by chunk: what is acknowledged is stored exactly once, and what
// cannot be stored is refused naming the chunk the stream expects.
TEST(TableTest, AResentFirstChunkIsADuplicateNotANewSegment) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(), &metrics);
  ChunkSpec spec;
  spec.episode_starts = {0};
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  spec.sequence = 1;
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  spec.sequence = 0;
  absl::StatusOr<InsertResult> again = table->Insert(MakeChunk(spec), kSoon());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(table->size_steps(), 16u);
  spec.sequence = 2;
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok()) << "the stream goes on after it";
  EXPECT_EQ(table->size_steps(), 24u);
}

TEST(TableTest, AGapIsRefusedNamingTheExpectedChunk) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(), &metrics);
  ChunkSpec spec;
  spec.episode_starts = {0};
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  spec.sequence = 2;
  absl::StatusOr<InsertResult> gap = table->Insert(MakeChunk(spec), kSoon());
  ASSERT_FALSE(gap.ok()) << "chunk 2 after chunk 0 was accepted";
  EXPECT_TRUE(absl::IsOutOfRange(gap.status())) << gap.status();
  EXPECT_THAT(std::string(gap.status().message()),
              HasSubstr("chunk 2 of actor stream \"actor-0\" leaves a gap: expected chunk 1"));
  EXPECT_EQ(table->size_steps(), 8u);
  spec.sequence = 1;
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok()) << "the expected chunk still fits";
  EXPECT_EQ(table->size_steps(), 16u);
}

TEST(TableTest, ChunksBeforeAStreamsFirstStoredChunkAreRefusedNotAcknowledged) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(), &metrics);
  ChunkSpec spec;
  spec.sequence = 5;  // a stream this table never saw may start anywhere (its start was lost)
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  for (uint64_t sequence : {3, 4}) {
    spec.sequence = sequence;
    absl::StatusOr<InsertResult> early = table->Insert(MakeChunk(spec), kSoon());
    ASSERT_FALSE(early.ok()) << "chunk " << sequence << " after chunk 5 was acknowledged";
    EXPECT_THAT(std::string(early.status().message()),
                HasSubstr(absl::StrCat("chunk ", sequence,
                                       " of actor stream \"actor-0\" precedes "
                                       "the first chunk this shard stored of it (5); expected "
                                       "chunk 6")));
  }
  EXPECT_EQ(table->size_steps(), 8u);
}

TEST(TableTest, AStreamAtTheLastSequenceNumberRefusesMoreAndOtherStreamsGoOn) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(), &metrics);
  ChunkSpec spec;
  spec.actor_id = "victim\nI20261202 forged log line";
  spec.sequence = std::numeric_limits<uint64_t>::max();
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  spec.sequence = 0;
  absl::StatusOr<InsertResult> next = table->Insert(MakeChunk(spec), kSoon());
  ASSERT_FALSE(next.ok()) << "chunk 0 after chunk 2^64-1 was acknowledged";
  EXPECT_THAT(std::string(next.status().message()),
              HasSubstr("actor stream \"victim\\nI20261202 forged log line\" has used up its "
                        "chunk numbers"));
  spec.actor_id = "actor-1";
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  EXPECT_EQ(table->size_steps(), 16u);
}

TEST(TableTest, SampleBlocksUntilMinSizeThenInsertBlocksUntilSampled) {
  services::Metrics metrics;
  TableOptions options = SmallTable(/*t=*/2);
  options.limiter.samples_per_insert = 1.0;
  options.limiter.tolerance = 8;
  options.limiter.min_size_to_sample = 8;
  auto table = MakeTable(options, &metrics);
  v1::SampleResponse batch;
  EXPECT_TRUE(absl::IsDeadlineExceeded(
      table->Sample(2, 2, absl::Now() + absl::Milliseconds(50), &batch)));
  ChunkSpec spec;
  spec.num_steps = 8;
  spec.episode_starts = {0};
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  // inserted 8 * 1 - sampled 0 = 8 = r*m; one more chunk reaches 16 > r*m + tolerance? 16 <= 16.
  spec.sequence = 1;
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  spec.sequence = 2;
  // 24 > 16: blocked until 8 steps are sampled.
  EXPECT_TRUE(absl::IsDeadlineExceeded(
      table->Insert(MakeChunk(spec), absl::Now() + absl::Milliseconds(50)).status()));
  std::thread inserter([&] { EXPECT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok()); });
  ASSERT_TRUE(table->Sample(4, 2, kSoon(), &batch).ok());
  inserter.join();
  EXPECT_EQ(table->size_steps(), 24u);
  EXPECT_GT(table->Info().limiter().insert_wait_seconds(), 0);
}

// A table whose limiter lets one replayed step per inserted step through with 8 steps of slack,
// holding `first`'s 16 steps: every further insert waits until more is sampled.
std::unique_ptr<Table> FullLimiterTable(services::Metrics* metrics) {
  TableOptions options = SmallTable(/*t=*/2);
  options.limiter.samples_per_insert = 1.0;
  options.limiter.tolerance = 8;
  options.limiter.min_size_to_sample = 8;
  auto table = MakeTable(options, metrics);
  ChunkSpec spec;
  spec.actor_id = "first";
  spec.episode_starts = {0};
  for (uint64_t i = 0; i < 2; ++i) {
    spec.sequence = i;
    EXPECT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  }
  return table;
}

v1::Chunk WriterChunk(const std::string& actor_id, uint32_t steps = 8) {
  ChunkSpec spec;
  spec.actor_id = actor_id;
  spec.num_steps = steps;
  spec.episode_starts = {0};
  return MakeChunk(spec);
}

// Waits (up to 30 s, polling every millisecond) until `done` holds; false if it never did.
bool Eventually(const std::function<bool()>& done) {
  return dreamfleet::testing::Eventually(absl::Seconds(30), done, absl::Milliseconds(1));
}

TEST(TableTest, WaitingInsertsGoInTheOrderTheyBeganToWait) {
  services::Metrics metrics;
  auto table = FullLimiterTable(&metrics);
  // Four writers queue up one after another; each checks for abandonment every millisecond, so
  // each re-enters its wait hundreds of times while it waits (the way an Insert stream waits).
  constexpr int kWriters = 4;
  std::atomic<int> checks[kWriters] = {};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      InsertAbandon abandon;
      abandon.check = [&checks, w] {
        ++checks[w];
        return false;
      };
      abandon.every = absl::Milliseconds(1);
      EXPECT_TRUE(
          table->Insert(WriterChunk(absl::StrCat("writer-", w)), kSoon(), nullptr, abandon).ok());
    });
    // Writer w is waiting (its first check came after its first wait) before w + 1 starts.
    EXPECT_TRUE(Eventually([&] { return checks[w] > 0; })) << "writer " << w << " never waited";
  }
  absl::SleepFor(absl::Milliseconds(50));  // let them all re-enter their waits many times
  v1::SampleResponse batch;
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_TRUE(table->Sample(4, 2, kSoon(), &batch).ok());  // room for exactly one chunk
    v1::TableInfo info;
    EXPECT_TRUE(Eventually([&] {
      info = table->Info();
      return info.actors_size() >= w + 2;
    }));
    // Actors list in name order: "first", then the writers that got in, writer-0 before writer-1.
    if (info.actors_size() != w + 2) {
      ADD_FAILURE() << info.actors_size() << " actors after " << w + 1 << " releases";
      break;
    }
    EXPECT_EQ(info.actors(w + 1).actor_id(), absl::StrCat("writer-", w));
    EXPECT_EQ(info.limiter().inserts_blocked(), w + 1 < kWriters);
  }
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(table->size_steps(), 16u + 8u * kWriters);
}

TEST(TableTest, ALaterSmallerChunkWaitsBehindTheOldestUntilItGivesUp) {
  services::Metrics metrics;
  auto table = FullLimiterTable(&metrics);
  std::atomic<bool> give_up{false};
  std::atomic<int> head_checks{0};
  std::atomic<int> next_checks{0};
  absl::Status head_status;
  absl::Status next_status;
  std::thread head([&] {
    InsertAbandon abandon;
    abandon.check = [&] {
      ++head_checks;
      return give_up.load();
    };
    abandon.every = absl::Milliseconds(1);
    head_status = table->Insert(WriterChunk("head", 8), kSoon(), nullptr, abandon).status();
  });
  EXPECT_TRUE(Eventually([&] { return head_checks > 0; }));
  std::thread next([&] {
    InsertAbandon abandon;
    abandon.check = [&] {
      ++next_checks;
      return false;
    };
    abandon.every = absl::Milliseconds(1);
    next_status = table->Insert(WriterChunk("next", 4), kSoon(), nullptr, abandon).status();
  });
  EXPECT_TRUE(Eventually([&] { return next_checks > 0; }));
  // Room for 4 steps: not for the head's 8, and the 4-step chunks behind it may not pass it.
  v1::SampleResponse batch;
  EXPECT_TRUE(table->Sample(2, 2, kSoon(), &batch).ok());
  const absl::StatusOr<InsertResult> late =
      table->Insert(WriterChunk("late", 4), absl::InfinitePast());
  EXPECT_TRUE(absl::IsDeadlineExceeded(late.status())) << late.status();
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(table->size_steps(), 16u);
  // The head gives up; with nothing sampled since, the next in line now gets the room.
  give_up = true;
  head.join();
  next.join();
  EXPECT_TRUE(absl::IsCancelled(head_status)) << head_status;
  EXPECT_THAT(head_status.message(), HasSubstr("abandoned while it waited for the rate limiter"));
  EXPECT_TRUE(next_status.ok()) << next_status;
  EXPECT_EQ(table->size_steps(), 20u);
  EXPECT_FALSE(table->Info().limiter().inserts_blocked());
}

TEST(TableTest, AChunkLargerThanTheLimiterCouldEverAdmitIsRefused) {
  services::Metrics metrics;
  auto table = FullLimiterTable(&metrics);  // tolerance 8 at one replayed step per step
  const absl::StatusOr<InsertResult> big = table->Insert(WriterChunk("big", 16), kSoon());
  EXPECT_TRUE(absl::IsInvalidArgument(big.status())) << big.status();
  EXPECT_THAT(big.status().message(),
              HasSubstr("a chunk of 16 steps needs 16 replayed steps of room (samples_per_insert "
                        "1), more than the rate limiter's tolerance of 8"));
  EXPECT_EQ(table->size_steps(), 16u);
}

TEST(TableTest, CloseWakesBlockedSamples) {
  services::Metrics metrics;
  auto table = MakeTable(SmallTable(), &metrics);
  std::thread closer([&] { table->Close(); });
  v1::SampleResponse batch;
  absl::Status status = table->Sample(1, 4, absl::InfiniteFuture(), &batch);
  closer.join();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
}

TEST(TableTest, CompressedTableSamplesTheSameBytes) {
  services::Metrics metrics;
  TableOptions options = SmallTable(/*t=*/8);
  options.compress = true;
  auto table = MakeTable(options, &metrics);
  ChunkSpec spec;
  spec.num_steps = 8;
  spec.first_step_value = 40;
  spec.episode_starts = {0};
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  v1::SampleResponse batch;
  ASSERT_TRUE(table->Sample(1, 8, kSoon(), &batch).ok());
  const std::string& image = batch.data(0).tensor().data();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(static_cast<uint8_t>(image[t * 48]), 40 + t);
  EXPECT_LT(table->Info().bytes(), 8u * (48 + 8 + 4 + 3));
}

// replay.rewarded_share: that share of the items come from those holding a rewarded step still
// stored; the set follows eviction and is rebuilt by a restore.
TEST(TableTest, RewardedShareDrawsItemsHoldingARewardedStep) {
  services::Metrics metrics;
  TableOptions options = SmallTable(/*t=*/4, /*capacity=*/40);
  options.rewarded_share = 1.0;
  auto table = MakeTable(options, &metrics);
  services::Metrics half_metrics;  // its own: both tables are named "default"
  TableOptions half_options = options;
  half_options.rewarded_share = 0.5;
  auto half = MakeTable(half_options, &half_metrics);
  TableOptions bad = options;
  bad.rewarded_share = 1.5;
  EXPECT_TRUE(absl::IsInvalidArgument(Table::Create(bad, &metrics).status()));

  // Six chunks of 8 steps (the first is evicted: 40 of 48 held); rewards at positions 2 (in the
  // evicted chunk) and 29. Image bytes of position p are p.
  v1::SampleResponse batch;
  for (uint64_t i = 0; i < 6; ++i) {
    ChunkSpec spec;
    spec.sequence = i;
    spec.first_step_value = static_cast<uint32_t>(8 * i);
    if (i == 0) spec.episode_starts = {0};
    spec.reward = i == 0 || i == 3 ? 1.0f : 0.0f;
    if (i == 0) spec.reward_steps = {2};
    if (i == 3) spec.reward_steps = {5};
    ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
    ASSERT_TRUE(half->Insert(MakeChunk(spec), kSoon()).ok());
    if (i == 0) {
      ASSERT_TRUE(table->Sample(16, 4, kSoon(), &batch).ok());
      for (uint64_t key : batch.keys()) EXPECT_LE(key, 2u) << "windows 0-2 hold position 2";
    }
    if (i == 1) {  // 16 steps: items 0-12, of which 0-2 hold position 2
      EXPECT_THAT(metrics.TextExposition(),
                  HasSubstr("dreamfleet_replay_rewarded_items{table=\"default\"} 3\n"));
    }
  }
  EXPECT_EQ(table->Info().size_steps(), 40u);
  auto first_positions = [](const v1::SampleResponse& b) {
    std::vector<int> firsts;
    const std::string& image = b.data(0).tensor().data();
    for (int row = 0; row < b.keys_size(); ++row) {
      firsts.push_back(static_cast<uint8_t>(image[row * 4 * 4 * 4 * 3]));
    }
    return firsts;
  };
  ASSERT_TRUE(table->Sample(200, 4, kSoon(), &batch).ok());
  std::set<int> seen;
  for (int first : first_positions(batch)) {
    EXPECT_GE(first, 26) << "the windows holding position 29 start at 26-29";
    EXPECT_LE(first, 29);
    seen.insert(first);
  }
  EXPECT_EQ(seen.size(), 4u);
  // Half of the draws: ~100 of 200 plus the uniform ones that hold it (4 of 37 items).
  ASSERT_TRUE(half->Sample(200, 4, kSoon(), &batch).ok());
  int around = 0;
  for (int first : first_positions(batch)) around += first >= 26 && first <= 29;
  EXPECT_GT(around, 70);
  EXPECT_LT(around, 150);

  // A restored copy (a checkpoint) draws around the same reward.
  services::Metrics copy_metrics;
  auto copy = RestoredCopy(*table, options, &copy_metrics);
  ASSERT_TRUE(copy->Sample(50, 4, kSoon(), &batch).ok());
  for (int first : first_positions(batch)) {
    EXPECT_GE(first, 26);
    EXPECT_LE(first, 29);
  }
}

TEST(TableTest, RecencySelectorPrefersTheNewestItems) {
  services::Metrics metrics;
  TableOptions options = SmallTable(/*t=*/2);
  options.selector.name = "recency";
  options.selector.recency_decay = 0.5;
  auto table = MakeTable(options, &metrics);
  ChunkSpec spec;
  spec.num_steps = 32;
  spec.episode_starts = {0};
  ASSERT_TRUE(table->Insert(MakeChunk(spec), kSoon()).ok());
  v1::SampleResponse batch;
  ASSERT_TRUE(table->Sample(64, 2, kSoon(), &batch).ok());
  int newest = 0;
  for (uint64_t key : batch.keys()) newest += key >= 28;  // the 3 newest of 31 items
  EXPECT_GT(newest, 48);  // expected 64 * (1 - 0.5^3) = 56
  EXPECT_EQ(table->Info().selector(), "recency");
}

}  // namespace
}  // namespace dreamfleet::replay
