// Shared helpers for multi-process integration tests: start a real dreamfleet binary with its
// stdout on a pipe, wait (bounded) for the lines it prints when it is serving ("listening on
// HOST:PORT", "metrics on HOST:PORT"), and stop or kill it. Tests bind every port to 0 and read the
// real ports from these lines.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dreamfleet::testing {

// build/bin/<name> (from DREAMFLEET_BIN_DIR, set by CTest).
std::string BinaryPath(const std::string& name);
// A fresh directory under the test temp dir.
std::string MakeTempDir(const std::string& prefix);
// A fresh directory (MakeTempDir) removed with everything in it when this goes out of scope.
// Tests check made() (false when the directory could not be created).
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& prefix) : path_(MakeTempDir(prefix)) {}
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::string& path() const { return path_; }
  bool made() const;

 private:
  std::string path_;
};
// A base port such that base .. base + count - 1 are free on 127.0.0.1 right now (for binaries
// that take consecutive ports from a config, e.g. `dreamfleet up`).
int FreePortRange(int count);
// The whole file, "" when it cannot be read.
std::string ReadFile(const std::string& path);
// Polls `condition` every `poll` until it holds or `timeout` passes (then checks it once more).
bool Eventually(absl::Duration timeout, const std::function<bool()>& condition,
                absl::Duration poll = absl::Milliseconds(200));

class TestProcess {
 public:
  // Starts argv[0] with argv; stderr goes to `stderr_path` ("" = inherit).
  static absl::StatusOr<std::unique_ptr<TestProcess>> Start(std::vector<std::string> argv,
                                                           const std::string& stderr_path = "");
  ~TestProcess();  // SIGKILLs the process if it still runs

  pid_t pid() const { return pid_; }
  // Reads stdout until a line starting with `prefix` arrives; returns the rest of that line.
  absl::StatusOr<std::string> WaitForLine(const std::string& prefix,
                                          absl::Duration timeout = absl::Seconds(120));
  // The port in "<prefix>HOST:PORT".
  absl::StatusOr<int> WaitForPort(const std::string& prefix,
                                  absl::Duration timeout = absl::Seconds(120));
  // SIGTERM, then waits up to `timeout` for exit; returns the exit code (128+signal when killed).
  absl::StatusOr<int> Stop(absl::Duration timeout = absl::Seconds(60));
  // Waits up to `timeout` for the process to exit by itself (SIGKILL after that); returns the exit
  // code as Stop does.
  absl::StatusOr<int> Wait(absl::Duration timeout = absl::Seconds(60));
  void Kill();  // SIGKILL and reap
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  TestProcess() = default;
  pid_t pid_ = 0;
  int stdout_fd_ = -1;
  std::string buffer_;
  std::vector<std::string> lines_;
};

}  // namespace dreamfleet::testing
