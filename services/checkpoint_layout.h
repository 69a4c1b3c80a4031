// The learner's checkpoint directories as files, without LibTorch: shared by the learner's
// checkpoints (learner/checkpoint.h, which writes and loads their contents) and the launcher
// (`dreamfleet up --resume best`, which copies one). A checkpoint directory <dir> holds
//   ckpt-<step>/        one complete checkpoint (counters.txt inside: "name value" lines)
//   ckpt-<step>.tmp/    a checkpoint being written (ignored by readers)
//   latest              "ckpt-<step>\n": the checkpoint to resume from, replaced atomically
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dreamfleet::services {

inline constexpr char kCheckpointLatestFile[] = "latest";
inline constexpr char kCheckpointPrefix[] = "ckpt-";
inline constexpr char kCheckpointTmpSuffix[] = ".tmp";
inline constexpr char kCheckpointCountersFile[] = "counters.txt";

// "ckpt-<step>".
std::string CheckpointName(int64_t step);

// Parses "ckpt-<step>" (decimal digits, no suffix) into *step.
bool ParseCheckpointName(const std::string& name, int64_t* step);

// Steps of the complete checkpoints in <dir>, ascending (.tmp dirs excluded). NotFound when <dir>
// cannot be listed.
absl::StatusOr<std::vector<int64_t>> ListCheckpoints(const std::string& dir);

// The directory of the checkpoint to resume from: the one <dir>/latest names, or without a latest
// file the complete ckpt-<step> with the highest step. NotFound when <dir> holds no checkpoint;
// DataLoss when `latest` holds something else than a checkpoint name.
absl::StatusOr<std::string> LatestCheckpointDir(const std::string& dir);

// Points <dir>/latest at `name` (a checkpoint directory in <dir>), atomically and durably.
absl::Status PointLatestAt(const std::string& dir, const std::string& name);

// One file of a checkpoint directory, whole: NotFound ("cannot open <path>") when it cannot be
// opened, DataLoss ("cannot read <path>") when reading it fails.
absl::StatusOr<std::string> ReadCheckpointFile(const std::string& path);

// The "name value" lines of a counters.txt; DataLoss naming `path` on a malformed line.
absl::StatusOr<std::map<std::string, int64_t>> ParseCheckpointCounters(const std::string& text,
                                                                       const std::string& path);

// The counters of the checkpoint directory `ckpt_dir` (its counters.txt).
absl::StatusOr<std::map<std::string, int64_t>> ReadCheckpointCounters(const std::string& ckpt_dir);

// Removes every checkpoint of <dir> (ckpt-<step>, their .tmp leftovers and `latest`) and nothing
// else; a missing <dir> is not an error.
absl::Status RemoveCheckpoints(const std::string& dir);

}  // namespace dreamfleet::services
