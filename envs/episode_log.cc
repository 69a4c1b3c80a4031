#include "envs/episode_log.h"

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <string_view>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/durable_file.h"
#include "services/status_macros.h"

namespace dreamfleet::envs {
namespace {

constexpr char kHeader[] = "env_steps,env,return,length,success,terminal";

absl::StatusOr<std::ofstream> OpenForAppend(const std::string& path, bool fresh) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!parent.empty() && !std::filesystem::is_directory(parent, error)) {
    return absl::NotFoundError(
        absl::StrCat("the episode log's directory ", parent.string(), " does not exist"));
  }
  std::ofstream out(path, fresh ? std::ios::trunc : std::ios::app);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write the episode log ", path));
  if (fresh && !(out << kHeader << "\n" << std::flush)) {
    return absl::InternalError(absl::StrCat("cannot write the episode log ", path));
  }
  return out;
}

bool ParseLine(const std::string& line, LoggedEpisode* e) {
  std::vector<std::string> f = absl::StrSplit(line, ',');
  int64_t env = 0, success = 0, terminal = 0;
  if (f.size() != 6 || !absl::SimpleAtoi(f[0], &e->env_steps) || !absl::SimpleAtoi(f[1], &env) ||
      !absl::SimpleAtod(f[2], &e->stats.episode_return) ||
      !absl::SimpleAtoi(f[3], &e->stats.length) || !absl::SimpleAtoi(f[4], &success) ||
      !absl::SimpleAtoi(f[5], &terminal) || e->env_steps < 0 || env < 0 || e->stats.length < 0 ||
      (success != 0 && success != 1) || (terminal != 0 && terminal != 1)) {
    return false;
  }
  e->stats.env = static_cast<int>(env);
  e->stats.success = success == 1;
  e->stats.terminal = terminal == 1;
  return true;
}

}  // namespace

absl::StatusOr<EpisodeLog> EpisodeLog::Create(const std::string& path) {
  absl::StatusOr<std::ofstream> out = OpenForAppend(path, /*fresh=*/true);
  if (!out.ok()) return out.status();
  return EpisodeLog(path, std::move(*out));
}

absl::StatusOr<EpisodeLog> EpisodeLog::Resume(const std::string& path, int64_t env_steps,
                                              std::vector<LoggedEpisode>* kept) {
  kept->clear();
  std::error_code error;
  if (!std::filesystem::exists(path, error) && !error) {
    return Create(path);  // none yet (a run from before the log existed, or none written)
  }
  std::ifstream in(path);
  if (!in) return absl::PermissionDeniedError(absl::StrCat("cannot read the episode log ", path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string text;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i == 0) {
      if (lines[0] != kHeader) {
        return absl::DataLossError(absl::StrCat("episode log ", path, " line 1 is \"", lines[0],
                                                "\", not the header \"", kHeader, "\""));
      }
      continue;
    }
    LoggedEpisode e;
    if (!ParseLine(lines[i], &e)) {
      if (i + 1 == lines.size()) break;  // cut short by a kill: that episode is played again
      return absl::DataLossError(absl::StrCat("episode log ", path, " line ", i + 1, " (\"",
                                              lines[i], "\") is not ", kHeader));
    }
    if (e.env_steps > env_steps) break;  // ended after the checkpoint: played again
    kept->push_back(e);
    absl::StrAppend(&text, lines[i], "\n");
  }
  // Rewritten atomically and durably: a crash now loses nothing kept.
  RETURN_IF_ERROR(services::ReplaceFileDurably(path, absl::StrCat(kHeader, "\n", text)));
  absl::StatusOr<std::ofstream> out = OpenForAppend(path, /*fresh=*/false);
  if (!out.ok()) return out.status();
  return EpisodeLog(path, std::move(*out));
}

absl::Status EpisodeLog::Append(int64_t env_steps, const EpisodeStats& e) {
  // The shortest text that reads back as the same double: a resumed window's mean is the same.
  char ret[64];
  const auto written = std::to_chars(ret, ret + sizeof(ret), e.episode_return);
  if (!(out_ << env_steps << "," << e.env << "," << std::string_view(ret, written.ptr - ret) << ","
             << e.length << "," << (e.success ? 1 : 0) << "," << (e.terminal ? 1 : 0) << "\n"
             << std::flush)) {
    return absl::InternalError(absl::StrCat("cannot append to the episode log ", path_));
  }
  return absl::OkStatus();
}

}  // namespace dreamfleet::envs
