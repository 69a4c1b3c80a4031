// EpisodeLog: one CSV line per finished training episode (the env step it ended at, the env's row,
// return, length, success, terminal), appended as episodes end. It is the run's per-episode
// learning curve, and what lets a resumed run carry on its "last 100 episodes" window: resuming
// at env step S drops the lines of episodes that ended after S (the run plays those steps again)
// and hands back the rest.
//
//   env_steps,env,return,length,success,terminal
//   2504,3,0,2500,0,0
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envs/vector_env.h"

namespace dreamfleet::envs {

struct LoggedEpisode {
  int64_t env_steps = 0;  // the run's env steps when the episode ended
  EpisodeStats stats;     // its env row, return, length, success and terminal flag
};

class EpisodeLog {
 public:
  // A fresh run: creates or empties `path`. NOT_FOUND when its directory does not exist.
  static absl::StatusOr<EpisodeLog> Create(const std::string& path);

  // A run resumed at `env_steps`: keeps the lines of episodes that ended at or before it (in
  // `kept`, in order) and drops the later ones; a missing file starts empty. A last line cut
  // short (the run was killed while writing it) is dropped; any other line that does not parse
  // is DATA_LOSS naming the file and line.
  static absl::StatusOr<EpisodeLog> Resume(const std::string& path, int64_t env_steps,
                                           std::vector<LoggedEpisode>* kept);

  // Appends one line and flushes it. INTERNAL if the write fails.
  absl::Status Append(int64_t env_steps, const EpisodeStats& episode);

  const std::string& path() const { return path_; }

 private:
  EpisodeLog(std::string path, std::ofstream out) : path_(std::move(path)), out_(std::move(out)) {}

  std::string path_;
  std::ofstream out_;
};

}  // namespace dreamfleet::envs
