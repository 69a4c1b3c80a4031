// The table's write and sample side: signature checks, limiter waits, applying chunks to streams,
// items and episodes, FIFO eviction (and a stream's own beyond its share), batches, checkpoint
// snapshots. The query side is in table_queries.cc; how chunk bytes are stored is ChunkStore's
// (chunk_store.h).
#include "replay_server/table.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "replay_server/selectors/uniform.h"
#include "services/logging.h"
#include "services/status_macros.h"
#include "services/step_record.h"

namespace dreamfleet::replay {
namespace {

constexpr size_t kIndexBytesPerItem = 48;  // selector + hash map entry, for the memory gauge

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace

absl::StatusOr<std::unique_ptr<Table>> Table::Create(TableOptions options,
                                                     services::Metrics* metrics) {
  if (options.sequence_length < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence_length must be >= 1, got ", options.sequence_length));
  }
  if (options.capacity_steps < static_cast<uint64_t>(options.sequence_length)) {
    return absl::InvalidArgumentError(absl::StrCat("capacity_steps ", options.capacity_steps,
                                                   " is below sequence_length ",
                                                   options.sequence_length));
  }
  if (options.max_stream_steps > 0 &&
      options.max_stream_steps < static_cast<uint64_t>(options.sequence_length)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_stream_steps ", options.max_stream_steps, " is below sequence_length ",
                     options.sequence_length, ": no stream could hold one item"));
  }
  if (!(options.rewarded_share >= 0 && options.rewarded_share <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("rewarded_share must be in [0, 1], got ", options.rewarded_share));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Selector> selector, CreateSelector(options.selector));
  return std::unique_ptr<Table>(new Table(std::move(options), std::move(selector), metrics));
}

Table::Table(TableOptions options, std::unique_ptr<Selector> selector, services::Metrics* metrics)
    : options_(std::move(options)),
      store_(options_.compress),
      metrics_(metrics),
      selector_(std::move(selector)),
      limiter_(options_.limiter),
      rng_(options_.seed) {
  if (options_.rewarded_share > 0) rewarded_ = std::make_unique<UniformSelector>();
  const services::Labels table = {{"table", options_.name}};
  inserted_steps_ = &metrics_->Counter("dreamfleet_replay_inserted_steps_total",
                                       "Steps accepted into the table.", table);
  inserted_bytes_ = &metrics_->Counter("dreamfleet_replay_inserted_bytes_total",
                                       "Bytes of step data accepted (uncompressed).", table);
  sampled_items_counter_ = &metrics_->Counter("dreamfleet_replay_sampled_items_total",
                                              "Items (T-step windows) sampled.", table);
  const char* wait_help = "Seconds inserts or samples waited for the rate limiter.";
  insert_wait_counter_ = &metrics_->Counter("dreamfleet_replay_limiter_wait_seconds_total",
                                            wait_help, {{"table", options_.name}, {"side", "insert"}});
  sample_wait_counter_ = &metrics_->Counter("dreamfleet_replay_limiter_wait_seconds_total",
                                            wait_help, {{"table", options_.name}, {"side", "sample"}});
  share_evicted_steps_ = &metrics_->Counter(
      "dreamfleet_replay_share_evicted_steps_total",
      "Steps evicted because their actor stream held more than its share of the capacity "
      "(replay.max_actor_share); also counted in the table's evicted steps.",
      table);
  size_gauge_ = &metrics_->Gauge("dreamfleet_replay_size_steps", "Steps stored.", table);
  items_gauge_ = &metrics_->Gauge("dreamfleet_replay_items", "Sampleable items stored.", table);
  rewarded_items_gauge_ = &metrics_->Gauge(
      "dreamfleet_replay_rewarded_items",
      "Sampleable items holding a step with a nonzero reward (counted with replay.rewarded_share "
      "> 0 only; 0 otherwise).",
      table);
  episodes_gauge_ = &metrics_->Gauge("dreamfleet_replay_episodes", "Episodes (partly) stored.", table);
  memory_gauge_ = &metrics_->Gauge("dreamfleet_replay_memory_bytes",
                                   "Bytes of memory held for stored steps and their index.", table);
}

Table::~Table() { Close(); }

void Table::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

uint64_t Table::size_steps() const {
  absl::MutexLock lock(&mu_);
  return size_steps_;
}

absl::Status Table::CheckName(const std::string& requested) const {
  if (requested.empty() || requested == options_.name) return absl::OkStatus();
  return absl::NotFoundError(
      absl::StrCat("unknown table \"", requested, "\"; this shard serves \"", options_.name, "\""));
}

std::optional<Signature> Table::signature() const {
  absl::MutexLock lock(&mu_);
  return signature_;
}

absl::StatusOr<Table::SequenceVerdict> Table::CheckSequence(const v1::Chunk& chunk) const {
  auto it = streams_.find(chunk.actor_id());
  if (it == streams_.end() || !it->second->has_sequence) return SequenceVerdict::kNext;
  const Stream& stream = *it->second;
  const uint64_t sequence = chunk.sequence();
  if (sequence >= stream.first_sequence && sequence <= stream.last_sequence) {
    return SequenceVerdict::kDuplicate;
  }
  if (stream.last_sequence != std::numeric_limits<uint64_t>::max() &&
      sequence == stream.last_sequence + 1) {
    return SequenceVerdict::kNext;
  }
  if (stream.last_sequence == std::numeric_limits<uint64_t>::max()) {
    return absl::OutOfRangeError(
        absl::StrCat("actor stream ", services::QuoteClientText(chunk.actor_id()),
                     " has used up its chunk numbers; start a new stream"));
  }
  if (sequence < stream.first_sequence) {
    return absl::OutOfRangeError(absl::StrCat(
        "chunk ", sequence, " of actor stream ", services::QuoteClientText(chunk.actor_id()),
        " precedes the first chunk this shard stored of it (", stream.first_sequence,
        "); expected chunk ", stream.last_sequence + 1));
  }
  return absl::OutOfRangeError(absl::StrCat(
      "chunk ", sequence, " of actor stream ", services::QuoteClientText(chunk.actor_id()),
      " leaves a gap: expected chunk ", stream.last_sequence + 1,
      " (chunks are numbered consecutively and resent from the first unacknowledged one)"));
}

absl::StatusOr<InsertResult> Table::Insert(const v1::Chunk& chunk, absl::Time deadline,
                                           const BeforeApply& before_apply,
                                           const InsertAbandon& abandon) {
  // Check against the signature (or derive it) outside the mutex: checking is the costly part.
  std::optional<Signature> signature = this->signature();
  bool fixes_signature = false;
  if (!signature.has_value()) {
    ASSIGN_OR_RETURN(signature, Signature::FromChunk(chunk, options_.name));
    fixes_signature = true;
  } else {
    RETURN_IF_ERROR(signature->Check(chunk, options_.name));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<StoredChunk> stored, store_.Encode(chunk, *signature));

  // A chunk worth more replayed steps than the limiter's slack could never be let through, and
  // waiting at the head of the queue it would hold every stream's inserts behind it.
  const double needed =
      static_cast<double>(chunk.num_steps()) * options_.limiter.samples_per_insert;
  if (options_.limiter.samples_per_insert > 0 && needed > options_.limiter.tolerance) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a chunk of ", chunk.num_steps(), " steps needs ", needed,
        " replayed steps of room (samples_per_insert ", options_.limiter.samples_per_insert,
        "), more than the rate limiter's tolerance of ", options_.limiter.tolerance,
        ": it could never be stored; send chunks of at most ",
        static_cast<uint64_t>(options_.limiter.tolerance / options_.limiter.samples_per_insert),
        " steps (actor.chunk_steps) or raise replay.limiter_tolerance"));
  }
  InsertResult result;
  absl::MutexLock lock(&mu_);
  if (fixes_signature && signature_.has_value()) {
    // Another writer fixed the signature meanwhile: check against that one and lay the fields
    // out in its order (rare: only racing first chunks get here).
    RETURN_IF_ERROR(signature_->Check(chunk, options_.name));
    ASSIGN_OR_RETURN(stored, store_.Encode(chunk, *signature_));
  }
  ASSIGN_OR_RETURN(SequenceVerdict verdict, CheckSequence(chunk));
  if (verdict == SequenceVerdict::kDuplicate) {
    result.duplicate = true;
    result.size_steps = size_steps_;
    return result;
  }
  const uint64_t steps = chunk.num_steps();
  const absl::Time start = absl::Now();
  bool ready = closed_ || (insert_queue_.empty() && limiter_.CanInsert(steps));
  bool abandoned = false;
  if (!ready) {
    // Wait behind the inserts already waiting; the limiter's room goes to the oldest first.
    const uint64_t ticket = next_insert_ticket_++;
    insert_queue_.insert(ticket);
    absl::Cleanup leave_queue = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      insert_queue_.erase(ticket);
    };
    auto can_insert = [this, steps, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closed_ || (*insert_queue_.begin() == ticket && limiter_.CanInsert(steps));
    };
    absl::Time counted = start;  // the wait is counted as it goes, so /metrics sees long waits
    while (true) {
      const absl::Time until =
          abandon.check
              ? std::min(deadline, absl::Now() + std::max(abandon.every, absl::Milliseconds(1)))
              : deadline;
      ready = mu_.AwaitWithDeadline(absl::Condition(&can_insert), until);
      const absl::Time now = absl::Now();
      const double waited = absl::ToDoubleSeconds(now - counted);
      insert_wait_seconds_ += waited;
      insert_wait_counter_->Increment(waited);
      counted = now;
      if (ready || now >= deadline) break;
      // Called under the mutex: a gRPC call's cancellation check is a non-blocking poll.
      if (abandon.check && abandon.check()) {
        abandoned = true;
        break;
      }
    }
  }
  result.limiter_wait = absl::Now() - start;
  if (closed_) return absl::UnavailableError("the replay table is shutting down");
  if (abandoned) {
    return absl::CancelledError(
        absl::StrCat("insert of ", steps, " steps abandoned while it waited for the rate limiter"));
  }
  if (!ready) {
    return absl::DeadlineExceededError(absl::StrCat(
        "insert of ", steps, " steps blocked by the rate limiter (inserted ", limiter_.inserted(),
        " steps, sampled ", limiter_.sampled(), " steps, samples_per_insert ",
        limiter_.options().samples_per_insert, ")"));
  }
  // A concurrent insert of the same stream may have stored this sequence while we waited.
  ASSIGN_OR_RETURN(verdict, CheckSequence(chunk));
  if (verdict == SequenceVerdict::kDuplicate) {
    result.duplicate = true;
    result.size_steps = size_steps_;
    return result;
  }
  stored->first_id = next_step_id_;
  stored->insert_time_ms = NowMs();
  if (before_apply) RETURN_IF_ERROR(before_apply(stored->first_id, stored->insert_time_ms));
  if (!signature_.has_value()) signature_ = std::move(*signature);
  result.first_step_id = stored->first_id;
  Apply(chunk, std::move(stored));
  limiter_.Inserted(steps);
  result.size_steps = size_steps_;
  return result;
}

absl::Status Table::RestoreHeader(const v1::CheckpointHeader& header) {
  absl::MutexLock lock(&mu_);
  if (header.signature_size() > 0) {
    ASSIGN_OR_RETURN(signature_, Signature::FromProto(header.signature()));
  }
  limiter_.Restore(header.inserted_steps(), header.sampled_steps());
  next_step_id_ = header.next_step_id();
  evicted_steps_ = header.evicted_steps();
  sampled_items_ = header.sampled_items();
  checkpoint_counts_actors_ = header.actors_size() > 0;
  for (const v1::ActorCount& actor : header.actors()) {
    std::unique_ptr<Stream>& slot = streams_[actor.actor_id()];
    if (slot == nullptr) {
      slot = std::make_unique<Stream>();
      slot->actor_id = actor.actor_id();
    }
    slot->steps_total = actor.steps();
    slot->episodes_total = actor.episodes();
  }
  return absl::OkStatus();
}

absl::Status Table::Restore(const v1::StoredChunkRecord& record, bool counted_in_header) {
  const v1::Chunk& chunk = record.chunk();
  std::optional<Signature> signature = this->signature();
  if (!signature.has_value()) {
    ASSIGN_OR_RETURN(signature, Signature::FromChunk(chunk, options_.name));
  } else {
    RETURN_IF_ERROR(signature->Check(chunk, options_.name));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<StoredChunk> stored, store_.Encode(chunk, *signature));
  stored->first_id = record.first_step_id();
  stored->insert_time_ms = record.insert_time_unix_ms();
  absl::MutexLock lock(&mu_);
  if (!signature_.has_value()) signature_ = std::move(*signature);
  if (!chunks_.empty() &&
      record.first_step_id() < chunks_.back()->first_id + chunks_.back()->num_steps) {
    return absl::DataLossError(absl::StrCat("record with step id ", record.first_step_id(),
                                            " overlaps the stored chunk starting at ",
                                            chunks_.back()->first_id));
  }
  Apply(chunk, std::move(stored), !counted_in_header || !checkpoint_counts_actors_);
  if (!counted_in_header) limiter_.Inserted(chunk.num_steps());
  return absl::OkStatus();
}

void Table::RestoreSampleCounters(const v1::SampleCounters& counters) {
  absl::MutexLock lock(&mu_);
  limiter_.Restore(limiter_.inserted(), counters.sampled_steps());
  sampled_items_ = counters.sampled_items();
}

void Table::SetSampleLog(SampleLog log) {
  absl::MutexLock lock(&mu_);
  sample_log_ = std::move(log);
}

bool Table::Apply(const v1::Chunk& chunk, std::shared_ptr<StoredChunk> stored, bool count_totals) {
  std::unique_ptr<Stream>& slot = streams_[chunk.actor_id()];
  if (slot == nullptr) {
    slot = std::make_unique<Stream>();
    slot->actor_id = chunk.actor_id();
  }
  Stream& stream = *slot;
  const uint64_t sequence = chunk.sequence();
  if (!stream.has_sequence) {
    stream.has_sequence = true;
    stream.first_sequence = sequence;
  } else if (sequence >= stream.first_sequence && sequence <= stream.last_sequence) {
    return false;
  } else if (sequence != stream.last_sequence + 1) {
    // Only restored records get here (Insert refuses gaps): files written before the protocol
    // refused them. No item spans the gap.
    DF_LOG(WARNING) << "restored chunk " << sequence << " of actor stream "
                    << services::QuoteClientText(chunk.actor_id()) << " follows chunk "
                    << stream.last_sequence << ": starting a new segment";
    stream.segment_start = stream.next_pos;
    stream.open_episode.reset();
    stream.first_sequence = std::min(stream.first_sequence, sequence);
  }
  stream.last_sequence = sequence;

  const Signature& signature = *signature_;
  const uint32_t n = chunk.num_steps();
  stored->stream = &stream;
  stored->stream_pos = stream.next_pos;
  const int64_t now = stored->insert_time_ms;

  // Episodes.
  const v1::NamedTensor* is_first = FindField(chunk, services::step_field::kIsFirst);
  const v1::NamedTensor* is_last = FindField(chunk, services::step_field::kIsLast);
  const v1::NamedTensor* reward = FindField(chunk, services::step_field::kReward);
  for (uint32_t k = 0; k < n; ++k) {
    const bool first = is_first->tensor().data()[k] != 0;
    if (first || !stream.open_episode.has_value()) {
      Episode episode;
      episode.id = stored->first_id + k;
      episode.stream = &stream;
      episode.start_pos = stream.next_pos + k;
      episode.start_ms = now;
      episode.truncated = !first;
      stream.open_episode = episode.id;
      stream.episodes.push_back(episode.id);
      if (count_totals) ++stream.episodes_total;
      episodes_.emplace(episode.id, episode);
    }
    Episode& episode = episodes_[*stream.open_episode];
    ++episode.length;
    episode.end_ms = now;
    if (reward != nullptr) {
      float r;
      std::memcpy(&r, reward->tensor().data().data() + k * sizeof(float), sizeof(float));
      episode.episode_return += r;
      if (rewarded_ != nullptr && r != 0.0f && std::isfinite(r)) {
        stream.rewarded.push_back(stream.next_pos + k);
      }
    }
    if (is_last != nullptr && is_last->tensor().data()[k] != 0) {
      episode.complete = true;
      stream.open_episode.reset();
    }
  }

  const uint64_t old_end = stream.next_pos;
  stream.next_pos += n;
  if (count_totals) stream.steps_total += n;
  size_steps_ += n;
  bytes_ += stored->bytes;
  next_step_id_ = std::max(next_step_id_, stored->first_id + n);
  std::shared_ptr<const StoredChunk> shared = std::move(stored);
  stream.chunks.push_back(shared);
  chunks_.push_back(shared);

  // Items: every window of T steps of this segment that ends in the new chunk.
  const uint64_t t = options_.sequence_length;
  if (stream.next_pos >= t) {
    uint64_t lo = std::max(stream.first_pos, stream.segment_start);
    if (old_end + 1 >= t) lo = std::max(lo, old_end + 1 - t);
    // With a rewarded share: the first rewarded step at or after each window's start.
    auto next_reward = std::lower_bound(stream.rewarded.begin(), stream.rewarded.end(), lo);
    for (uint64_t s = lo; s + t <= stream.next_pos; ++s) {
      const uint64_t key = GlobalId(stream, s);
      selector_->Insert(key);
      if (rewarded_ == nullptr) continue;
      while (next_reward != stream.rewarded.end() && *next_reward < s) ++next_reward;
      if (next_reward != stream.rewarded.end() && *next_reward < s + t) rewarded_->Insert(key);
    }
  }
  inserted_steps_->Increment(n);
  inserted_bytes_->Increment(static_cast<double>(signature.step_bytes()) * n);

  // A stream beyond its share gives up its own oldest chunks first, so that one actor (a fast
  // one, or one that floods) cannot push every other actor's steps out of the table.
  while (options_.max_stream_steps > 0 && stream.chunks.size() > 1 &&
         stream.next_pos - stream.first_pos > options_.max_stream_steps) {
    share_evicted_steps_->Increment(stream.chunks.front()->num_steps);
    Evict(stream.chunks.front());
  }
  while (size_steps_ > options_.capacity_steps && chunks_.size() > 1) Evict(chunks_.front());
  UpdateGauges();
  return true;
}

void Table::Evict(const std::shared_ptr<const StoredChunk>& to_evict) {
  std::shared_ptr<const StoredChunk> chunk = to_evict;  // the reference may point into chunks_
  // chunks_ is ordered by first_id; the oldest chunk overall is the common case.
  if (chunks_.front() == chunk) {
    chunks_.pop_front();
  } else {
    // Erasing inside the deque moves the chunks before or after it: O(chunks) pointer moves under
    // the mutex, ~30k for a million-step table; only streams over their share get here.
    auto it = std::lower_bound(
        chunks_.begin(), chunks_.end(), chunk->first_id,
        [](const std::shared_ptr<const StoredChunk>& c, uint64_t id) { return c->first_id < id; });
    if (it == chunks_.end() || *it != chunk) {  // cannot happen: every stored chunk is in chunks_
      DF_LOG(ERROR) << "table " << options_.name << ": chunk " << chunk->first_id
                    << " to evict is not stored";
      std::abort();
    }
    chunks_.erase(it);
  }
  Stream& stream = *chunk->stream;
  stream.chunks.pop_front();
  stream.first_pos = chunk->stream_pos + chunk->num_steps;
  for (uint32_t k = 0; k < chunk->num_steps; ++k) {
    selector_->Delete(chunk->first_id + k);
    if (rewarded_ != nullptr) rewarded_->Delete(chunk->first_id + k);
  }
  while (!stream.rewarded.empty() && stream.rewarded.front() < stream.first_pos) {
    stream.rewarded.pop_front();
  }
  size_steps_ -= chunk->num_steps;
  bytes_ -= chunk->bytes;
  evicted_steps_ += chunk->num_steps;
  while (!stream.episodes.empty()) {
    auto it = episodes_.find(stream.episodes.front());
    Episode& episode = it->second;
    if (episode.start_pos >= stream.first_pos) break;
    if (episode.start_pos + episode.length <= stream.first_pos) {
      // Every step is gone. An episode still being written goes too: the stream's next steps
      // start a truncated one, as they would after a restart from the chunks that are left.
      if (stream.open_episode == episode.id) stream.open_episode.reset();
      episodes_.erase(it);
      stream.episodes.pop_front();
      continue;
    }
    episode.truncated = true;
    break;
  }
}

uint64_t Table::GlobalId(const Stream& stream, uint64_t pos) const {
  auto it = std::upper_bound(
      stream.chunks.begin(), stream.chunks.end(), pos,
      [](uint64_t p, const std::shared_ptr<const StoredChunk>& c) { return p < c->stream_pos; });
  const StoredChunk& chunk = **(it - 1);
  return chunk.first_id + (pos - chunk.stream_pos);
}

const StoredChunk* Table::FindChunk(uint64_t step_id) const {
  auto it = std::upper_bound(
      chunks_.begin(), chunks_.end(), step_id,
      [](uint64_t id, const std::shared_ptr<const StoredChunk>& c) { return id < c->first_id; });
  if (it == chunks_.begin()) return nullptr;
  const StoredChunk* chunk = (it - 1)->get();
  if (step_id >= chunk->first_id + chunk->num_steps) return nullptr;
  return chunk;
}

std::vector<ChunkSpan> Table::Spans(const Stream& stream, uint64_t pos, uint64_t count) const {
  std::vector<ChunkSpan> spans;
  auto it = std::upper_bound(
      stream.chunks.begin(), stream.chunks.end(), pos,
      [](uint64_t p, const std::shared_ptr<const StoredChunk>& c) { return p < c->stream_pos; });
  if (it == stream.chunks.begin()) return spans;
  for (--it; it != stream.chunks.end() && count > 0; ++it) {
    const StoredChunk& chunk = **it;
    const uint64_t offset = pos - chunk.stream_pos;
    const uint64_t take = std::min<uint64_t>(count, chunk.num_steps - offset);
    spans.push_back({*it, static_cast<uint32_t>(offset), static_cast<uint32_t>(take)});
    pos += take;
    count -= take;
  }
  return spans;
}

absl::Status Table::Sample(int batch_size, int sequence_length, absl::Time deadline,
                           v1::SampleResponse* out) {
  if (batch_size < 1 || batch_size > 65536) {
    return absl::InvalidArgumentError(absl::StrCat("batch_size must be in [1, 65536], got ",
                                                   batch_size));
  }
  if (sequence_length != options_.sequence_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequence_length ", sequence_length, " does not match table \"", options_.name,
        "\" items of ", options_.sequence_length, " steps"));
  }
  const uint64_t replayed = static_cast<uint64_t>(batch_size) * sequence_length;
  std::vector<std::vector<ChunkSpan>> windows(batch_size);
  std::vector<Selector::Sampled> picks(batch_size);
  {
    absl::MutexLock lock(&mu_);
    const absl::Time start = absl::Now();
    ++samples_waiting_;
    auto can_sample = [this, replayed]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closed_ || (selector_->size() > 0 && limiter_.CanSample(replayed));
    };
    const bool ready = mu_.AwaitWithDeadline(absl::Condition(&can_sample), deadline);
    --samples_waiting_;
    const double waited = absl::ToDoubleSeconds(absl::Now() - start);
    sample_wait_seconds_ += waited;
    sample_wait_counter_->Increment(waited);
    if (closed_) return absl::UnavailableError("the replay table is shutting down");
    if (!ready) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no batch within the deadline: ", selector_->size(), " items stored, inserted ",
          limiter_.inserted(), " steps (min_size_to_sample ",
          limiter_.options().min_size_to_sample, "), sampled ", limiter_.sampled(),
          " steps, samples_per_insert ", limiter_.options().samples_per_insert));
    }
    for (int b = 0; b < batch_size; ++b) {
      // With a rewarded share, that share of the items come from those holding a reward (the
      // probability reported is the drawing selector's own).
      const bool around_reward = rewarded_ != nullptr && rewarded_->size() > 0 &&
                                 std::bernoulli_distribution(options_.rewarded_share)(rng_);
      picks[b] = around_reward ? rewarded_->Sample(rng_) : selector_->Sample(rng_);
      const StoredChunk* chunk = FindChunk(picks[b].key);
      if (chunk == nullptr) return absl::InternalError("a sampled item has no stored chunk");
      windows[b] = Spans(*chunk->stream, chunk->stream_pos + (picks[b].key - chunk->first_id),
                         sequence_length);
    }
    limiter_.Sampled(replayed);
    sampled_items_ += batch_size;
    sampled_items_counter_->Increment(batch_size);
    if (sample_log_) {
      v1::SampleCounters counters;
      counters.set_sampled_steps(limiter_.sampled());
      counters.set_sampled_items(sampled_items_);
      sample_log_(counters);
    }
    out->set_table_size_steps(size_steps_);
  }
  // Copy outside the mutex: the chunks are immutable and kept alive by the spans.
  const Signature signature = *this->signature();  // fixed once set
  ChunkStore::Reader reader;
  out->clear_data();
  for (size_t f = 0; f < signature.fields().size(); ++f) {
    const FieldSpec& field = signature.fields()[f];
    v1::NamedTensor* named = out->add_data();
    named->set_name(field.name);
    v1::TensorProto* tensor = named->mutable_tensor();
    tensor->set_dtype(field.dtype);
    tensor->add_shape(batch_size);
    tensor->add_shape(sequence_length);
    for (int64_t d : field.shape) tensor->add_shape(d);
    // Appending into the reused, reserved buffer copies each byte once and, when the caller
    // reuses `out`, touches no fresh pages.
    std::string* bytes = tensor->mutable_data();
    bytes->clear();
    bytes->reserve(field.step_bytes * replayed);
    for (int b = 0; b < batch_size; ++b) {
      RETURN_IF_ERROR(reader.Append(windows[b], signature, f, bytes));
    }
  }
  out->clear_keys();
  out->clear_probabilities();
  for (const Selector::Sampled& pick : picks) {
    out->add_keys(pick.key);
    out->add_probabilities(pick.probability);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::UpdatePrioritiesResponse> Table::UpdatePriorities(
    const v1::UpdatePrioritiesRequest& request) {
  if (request.keys_size() != request.priorities_size()) {
    return absl::InvalidArgumentError(absl::StrCat("keys has ", request.keys_size(),
                                                   " entries but priorities has ",
                                                   request.priorities_size()));
  }
  for (int i = 0; i < request.priorities_size(); ++i) {
    const double p = request.priorities(i);
    if (!std::isfinite(p) || p < 0) {
      return absl::InvalidArgumentError(absl::StrCat("priority ", p, " for key ",
                                                     request.keys(i),
                                                     " is not finite and >= 0"));
    }
  }
  v1::UpdatePrioritiesResponse response;
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < request.keys_size(); ++i) {
    if (selector_->Update(request.keys(i), request.priorities(i))) {
      response.set_updated(response.updated() + 1);
    } else {
      response.set_unknown_keys(response.unknown_keys() + 1);
    }
  }
  return response;
}

void Table::UpdateGauges() {
  size_gauge_->Set(static_cast<double>(size_steps_));
  items_gauge_->Set(static_cast<double>(selector_->size()));
  rewarded_items_gauge_->Set(rewarded_ == nullptr ? 0.0 : static_cast<double>(rewarded_->size()));
  episodes_gauge_->Set(static_cast<double>(episodes_.size()));
  const size_t index_items = selector_->size() + (rewarded_ == nullptr ? 0 : rewarded_->size());
  memory_gauge_->Set(static_cast<double>(bytes_ + index_items * kIndexBytesPerItem +
                                         chunks_.size() * sizeof(StoredChunk)));
}

v1::TableInfo Table::Info() const {
  v1::TableInfo info;
  absl::MutexLock lock(&mu_);
  info.set_name(options_.name);
  if (signature_.has_value()) signature_->ToProto(info.mutable_signature());
  info.set_sequence_length(options_.sequence_length);
  info.set_selector(selector_->name());
  info.set_capacity_steps(options_.capacity_steps);
  info.set_size_steps(size_steps_);
  info.set_items(selector_->size());
  info.set_episodes(episodes_.size());
  info.set_inserted_steps(limiter_.inserted());
  info.set_sampled_items(sampled_items_);
  info.set_sampled_steps(limiter_.sampled());
  info.set_bytes(bytes_);
  info.set_evicted_steps(evicted_steps_);
  v1::RateLimiterInfo* limiter = info.mutable_limiter();
  limiter_.FillInfo(1, 1, limiter);
  limiter->set_inserts_blocked(!insert_queue_.empty());
  limiter->set_samples_blocked(samples_waiting_ > 0);
  limiter->set_insert_wait_seconds(insert_wait_seconds_);
  limiter->set_sample_wait_seconds(sample_wait_seconds_);
  std::vector<const Stream*> streams;
  // Streams that hold steps: an actor restart starts a new stream id, so the ones whose steps
  // were all evicted would pile up here (and in every checkpoint) for the life of the shard.
  for (const auto& [id, stream] : streams_) {
    if (!stream->chunks.empty()) streams.push_back(stream.get());
  }
  std::sort(streams.begin(), streams.end(),
            [](const Stream* a, const Stream* b) { return a->actor_id < b->actor_id; });
  for (const Stream* stream : streams) {
    v1::ActorCount* actor = info.add_actors();
    actor->set_actor_id(stream->actor_id);
    actor->set_steps(stream->steps_total);
    actor->set_episodes(stream->episodes_total);
  }
  return info;
}

Table::Snapshot Table::TakeSnapshot(const std::function<void()>& under_lock) {
  Snapshot snapshot;
  absl::MutexLock lock(&mu_);
  if (under_lock) under_lock();
  v1::CheckpointHeader& header = snapshot.header;
  header.set_table(options_.name);
  if (signature_.has_value()) signature_->ToProto(header.mutable_signature());
  header.set_inserted_steps(limiter_.inserted());
  header.set_sampled_steps(limiter_.sampled());
  header.set_next_step_id(next_step_id_);
  header.set_num_chunks(chunks_.size());
  header.set_evicted_steps(evicted_steps_);
  header.set_sampled_items(sampled_items_);
  for (const auto& [id, stream] : streams_) {
    if (stream->chunks.empty()) continue;  // as Info: only streams that hold steps
    v1::ActorCount* actor = header.add_actors();
    actor->set_actor_id(stream->actor_id);
    actor->set_steps(stream->steps_total);
    actor->set_episodes(stream->episodes_total);
  }
  snapshot.chunks.assign(chunks_.begin(), chunks_.end());
  return snapshot;
}

absl::Status Table::ToRecord(const StoredChunk& chunk, v1::StoredChunkRecord* record) const {
  return ChunkStore::ToRecord(chunk, *signature(), record);
}

}  // namespace dreamfleet::replay
