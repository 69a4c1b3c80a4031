// Starts and watches the processes of a local cluster (`dreamfleet up`). Each child runs a
// dreamfleet binary with its stdout/stderr in <run.dir>/logs/<name>.log; a child that dies is
// restarted (with backoff) when its spec says so; Stop() sends SIGTERM to every child, waits, then
// SIGKILLs what is left.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace dreamfleet::deploy {

struct ProcessSpec {
  std::string name;               // "replay-0", "learner", "actor-3"
  std::vector<std::string> argv;  // argv[0] is the binary path
  std::string log_path;           // stdout and stderr go here (appended)
  bool restart = true;            // restart when it exits or crashes (never after exit code 2,
                                  // which our binaries use for bad config or missing files)
};

struct ProcessState {
  std::string name;
  pid_t pid = 0;                  // 0 when not running
  int restarts = 0;
  std::string last_exit;          // "exit 1", "signal 9", "" while never exited
  bool rejected_start = false;    // exited with code 2 (bad config or missing file): not
                                  // restarted, the run cannot go on without it
};

class ProcessSupervisor {
 public:
  ProcessSupervisor() = default;
  ~ProcessSupervisor();
  ProcessSupervisor(const ProcessSupervisor&) = delete;
  ProcessSupervisor& operator=(const ProcessSupervisor&) = delete;

  // Starts one process; an error when fork/exec preparation fails (e.g. missing binary).
  absl::Status Start(const ProcessSpec& spec);
  // Reaps exited children and restarts those that should be (waiting `backoff` between restarts of
  // the same process). Returns the names of processes that exited since the last call.
  std::vector<std::string> Poll(absl::Duration backoff = absl::Seconds(1));
  std::vector<ProcessState> States() const;
  // The pid of a running process, 0 when not running.
  pid_t Pid(const std::string& name) const;
  // SIGTERM to all whose name starts with `prefix` ("" = all), wait up to `grace`, then SIGKILL;
  // none of them is restarted afterwards. Idempotent.
  void Stop(absl::Duration grace = absl::Seconds(10), const std::string& prefix = "");

 private:
  struct Child {
    ProcessSpec spec;
    pid_t pid = 0;
    int restarts = 0;
    std::string last_exit;
    absl::Time next_start = absl::InfinitePast();
    bool stopped = false;
  };
  absl::StatusOr<pid_t> Spawn(const ProcessSpec& spec);

  mutable absl::Mutex mu_;
  std::vector<Child> children_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dreamfleet::deploy
