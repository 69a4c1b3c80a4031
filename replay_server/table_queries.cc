// The table's query side for the CLI and tools: episode listing with filters and paging, and the
// steps of one episode split into messages. Same class as table.cc, split for length.
#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "replay_server/table.h"
#include "services/status_macros.h"

namespace dreamfleet::replay {

void Table::FillEpisodeInfo(const Episode& episode, v1::EpisodeInfo* info) const {
  info->set_id(episode.id);
  info->set_actor_id(episode.stream->actor_id);
  info->set_length(episode.length);
  info->set_episode_return(episode.episode_return);
  info->set_start_time_unix_ms(episode.start_ms);
  info->set_end_time_unix_ms(episode.end_ms);
  info->set_complete(episode.complete);
  info->set_truncated(episode.truncated);
}

absl::StatusOr<v1::ListEpisodesResponse> Table::ListEpisodes(
    const v1::ListEpisodesRequest& request) const {
  const int page_size = request.page_size() <= 0 ? 100 : std::min(request.page_size(), 10000);
  uint64_t after = 0;
  bool has_after = false;
  if (!request.page_token().empty()) {
    if (!absl::SimpleAtoi(request.page_token(), &after)) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token \"", request.page_token(), "\" is not one this server issued"));
    }
    has_after = true;
  }
  if (request.has_min_return() && request.has_max_return() &&
      request.min_return() > request.max_return()) {
    return absl::InvalidArgumentError(absl::StrCat("min_return ", request.min_return(),
                                                   " is above max_return ",
                                                   request.max_return()));
  }
  v1::ListEpisodesResponse response;
  absl::MutexLock lock(&mu_);
  uint64_t matching = 0;
  for (const auto& [id, episode] : episodes_) {
    if (!request.actor_id().empty() && episode.stream->actor_id != request.actor_id()) continue;
    if (request.has_min_return() && episode.episode_return < request.min_return()) continue;
    if (request.has_max_return() && episode.episode_return > request.max_return()) continue;
    ++matching;
    if (has_after && id <= after) continue;
    if (response.episodes_size() < page_size) {
      FillEpisodeInfo(episode, response.add_episodes());
    } else if (response.next_page_token().empty()) {
      response.set_next_page_token(absl::StrCat(response.episodes().rbegin()->id()));
    }
  }
  response.set_total_matching(matching);
  return response;
}

absl::Status Table::GetEpisode(
    uint64_t episode_id, int max_steps_per_message,
    const std::function<bool(const v1::GetEpisodeResponse&)>& emit) const {
  const int per_message = max_steps_per_message <= 0 ? 256 : max_steps_per_message;
  v1::EpisodeInfo info;
  std::vector<ChunkSpan> spans;
  {
    absl::MutexLock lock(&mu_);
    auto it = episodes_.find(episode_id);
    if (it == episodes_.end()) {
      std::string range = episodes_.empty()
                              ? std::string("no episodes are stored")
                              : absl::StrCat("stored episode ids run from ",
                                             episodes_.begin()->first, " to ",
                                             episodes_.rbegin()->first);
      return absl::NotFoundError(absl::StrCat("episode id ", episode_id, " is not stored in table \"",
                                              options_.name, "\" (", range, ")"));
    }
    const Episode& episode = it->second;
    FillEpisodeInfo(episode, &info);
    const uint64_t first = std::max(episode.start_pos, episode.stream->first_pos);
    const uint64_t end = episode.start_pos + episode.length;
    spans = Spans(*episode.stream, first, end - first);
  }
  const Signature signature = *this->signature();
  ChunkStore::Reader reader;
  // Flatten the spans into messages of at most `per_message` steps.
  std::vector<ChunkSpan> pending;
  uint64_t pending_steps = 0;
  uint64_t sent = 0;
  bool first_message = true;
  auto flush = [&]() -> absl::Status {
    v1::GetEpisodeResponse message;
    if (first_message) *message.mutable_info() = info;
    first_message = false;
    message.set_first_step(sent);
    for (size_t f = 0; f < signature.fields().size(); ++f) {
      const FieldSpec& field = signature.fields()[f];
      v1::NamedTensor* named = message.add_data();
      named->set_name(field.name);
      v1::TensorProto* tensor = named->mutable_tensor();
      tensor->set_dtype(field.dtype);
      tensor->add_shape(static_cast<int64_t>(pending_steps));
      for (int64_t d : field.shape) tensor->add_shape(d);
      std::string* bytes = tensor->mutable_data();
      bytes->reserve(field.step_bytes * pending_steps);
      RETURN_IF_ERROR(reader.Append(pending, signature, f, bytes));
    }
    sent += pending_steps;
    pending.clear();
    pending_steps = 0;
    reader.Clear();
    if (!emit(message)) return absl::CancelledError("the reader went away");
    return absl::OkStatus();
  };
  for (ChunkSpan span : spans) {
    while (span.count > 0) {
      const uint32_t take =
          std::min<uint32_t>(span.count, static_cast<uint32_t>(per_message - pending_steps));
      pending.push_back({span.chunk, span.offset, take});
      pending_steps += take;
      span.offset += take;
      span.count -= take;
      if (pending_steps == static_cast<uint64_t>(per_message)) {
        RETURN_IF_ERROR(flush());
      }
    }
  }
  if (pending_steps > 0 || first_message) return flush();
  return absl::OkStatus();
}

}  // namespace dreamfleet::replay
