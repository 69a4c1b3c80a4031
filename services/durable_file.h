// Files that survive a crash: written and fsynced, replaced by rename so a reader sees the old or
// the new content and never half of one, and the directory fsynced so the rename itself survives.
// Used by the learner's checkpoints and best agent, the replay shard's log metadata, the learning
// curves and the launcher's process list.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace dreamfleet::services {

// Writes `data` to `path` (created or truncated) and fsyncs it. Errors name the path and errno.
absl::Status WriteFileDurably(const std::string& path, const std::string& data);

// fsyncs the directory `dir`, so that files created or renamed in it survive a crash.
absl::Status SyncDirectory(const std::string& dir);

// Replaces the file at `path` with `data` atomically and durably: written to <path>.tmp and
// fsynced, renamed over `path`, the directory fsynced. A crash leaves the old or the new file;
// on an error the .tmp file is removed and `path` is as it was.
absl::Status ReplaceFileDurably(const std::string& path, const std::string& data);

}  // namespace dreamfleet::services
