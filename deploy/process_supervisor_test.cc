#include "deploy/process_supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace dreamfleet::deploy {
namespace {

int LogLines(const std::string& path) {
  std::ifstream log(path);
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) ++lines;
  return lines;
}

// Waits (bounded) until the log at `path` has `lines` lines.
void WaitForLogLines(const std::string& path, int lines) {
  for (int i = 0; i < 4000 && LogLines(path) < lines; ++i) usleep(5000);
}

std::string TempDir() {
  std::string dir = std::filesystem::temp_directory_path() /
                    ("supervisor_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(ProcessSupervisorTest, RestartsACrashedProcessAndStopsAll) {
  const std::string dir = TempDir();
  ProcessSupervisor supervisor;
  ProcessSpec spec;
  spec.name = "sleeper";
  spec.argv = {"/bin/sh", "-c", "echo started; exec sleep 600"};
  spec.log_path = dir + "/sleeper.log";
  ASSERT_TRUE(supervisor.Start(spec).ok());
  const pid_t first = supervisor.Pid("sleeper");
  ASSERT_GT(first, 0);
  WaitForLogLines(spec.log_path, 1);
  ASSERT_EQ(kill(first, SIGKILL), 0);
  // Poll until the supervisor has noticed the crash and started a new process.
  pid_t second = 0;
  for (int i = 0; i < 2000 && (second == 0 || second == first); ++i) {
    supervisor.Poll(absl::ZeroDuration());
    second = supervisor.Pid("sleeper");
    if (second == 0 || second == first) usleep(5000);
  }
  ASSERT_GT(second, 0);
  EXPECT_NE(second, first);
  const std::vector<ProcessState> states = supervisor.States();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].restarts, 1);
  EXPECT_EQ(states[0].last_exit, "signal 9");
  WaitForLogLines(spec.log_path, 2);
  supervisor.Stop(absl::Seconds(10));
  EXPECT_EQ(supervisor.Pid("sleeper"), 0);
  EXPECT_NE(kill(second, 0), 0) << "the process must be gone after Stop";
  std::ifstream log(spec.log_path);
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_EQ(text.str(), "started\nstarted\n") << "both runs append to one log";
}

TEST(ProcessSupervisorTest, ExitCodeTwoIsNotRestartedAndIsReported) {
  const std::string dir = TempDir();
  ProcessSupervisor supervisor;
  ProcessSpec spec;
  spec.name = "actor-0";
  spec.argv = {"/bin/sh", "-c", "echo bad config; exit 2"};
  spec.log_path = dir + "/actor-0.log";
  ASSERT_TRUE(supervisor.Start(spec).ok());
  std::vector<ProcessState> states;
  for (int i = 0; i < 2000; ++i) {
    supervisor.Poll(absl::ZeroDuration());
    states = supervisor.States();
    if (states[0].pid == 0) break;
    usleep(5000);
  }
  ASSERT_EQ(states[0].pid, 0);
  EXPECT_EQ(states[0].last_exit, "exit 2");
  EXPECT_TRUE(states[0].rejected_start);
  for (int i = 0; i < 5; ++i) supervisor.Poll(absl::ZeroDuration());
  EXPECT_EQ(supervisor.Pid("actor-0"), 0);
  EXPECT_EQ(supervisor.States()[0].restarts, 0);
}

TEST(ProcessSupervisorTest, MissingBinaryIsAClearError) {
  ProcessSupervisor supervisor;
  ProcessSpec spec;
  spec.name = "learner";
  spec.argv = {"/nonexistent/dreamfleet-learner"};
  spec.log_path = TempDir() + "/learner.log";
  absl::Status status = supervisor.Start(spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(),
            "learner: binary /nonexistent/dreamfleet-learner is missing or not executable");
}

TEST(ProcessSupervisorTest, StopKillsAProcessThatIgnoresSigterm) {
  ProcessSupervisor supervisor;
  ProcessSpec spec;
  spec.name = "stubborn";
  spec.argv = {"/bin/sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"};
  spec.log_path = TempDir() + "/stubborn.log";
  ASSERT_TRUE(supervisor.Start(spec).ok());
  // Wait until the trap is installed (the shell prints after it).
  for (int i = 0; i < 2000; ++i) {
    std::ifstream log(spec.log_path);
    std::string line;
    if (std::getline(log, line) && line == "ready") break;
    usleep(5000);
  }
  const pid_t pid = supervisor.Pid("stubborn");
  supervisor.Stop(absl::Milliseconds(300));
  EXPECT_NE(kill(pid, 0), 0);
}

}  // namespace
}  // namespace dreamfleet::deploy
