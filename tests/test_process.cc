#include "tests/test_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace dreamfleet::testing {

std::string BinaryPath(const std::string& name) {
  const char* dir = std::getenv("DREAMFLEET_BIN_DIR");
  return std::string(dir ? dir : "build/bin") + "/" + name;
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/" + prefix + "XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  const char* made = mkdtemp(buffer.data());
  return made ? std::string(made) : pattern;
}

bool ScopedTempDir::made() const { return std::filesystem::is_directory(path_); }

ScopedTempDir::~ScopedTempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

namespace {
bool PortFree(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const bool free = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return free;
}
}  // namespace

int FreePortRange(int count) {
  std::mt19937 rng(static_cast<unsigned>(getpid()) * 2654435761u);
  std::uniform_int_distribution<int> base(20000, 60000 - count);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int first = base(rng);
    bool free = true;
    for (int i = 0; i < count && free; ++i) free = PortFree(first + i);
    if (free) return first;
  }
  return 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

bool Eventually(absl::Duration timeout, const std::function<bool()>& condition,
                absl::Duration poll) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(poll);
  }
  return condition();
}

absl::StatusOr<std::unique_ptr<TestProcess>> TestProcess::Start(std::vector<std::string> argv,
                                                               const std::string& stderr_path) {
  if (argv.empty() || access(argv[0].c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("not executable: ", argv.empty() ? "" : argv[0]));
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    if (!stderr_path.empty()) {
      int fd = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) dup2(fd, STDERR_FILENO);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  std::unique_ptr<TestProcess> process(new TestProcess);
  process->pid_ = pid;
  process->stdout_fd_ = pipe_fds[0];
  return process;
}

TestProcess::~TestProcess() {
  Kill();
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

absl::StatusOr<std::string> TestProcess::WaitForLine(const std::string& prefix,
                                                     absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  size_t checked = 0;
  while (true) {
    for (; checked < lines_.size(); ++checked) {
      if (absl::StartsWith(lines_[checked], prefix)) {
        std::string rest = lines_[checked].substr(prefix.size());
        lines_.erase(lines_.begin(), lines_.begin() + checked + 1);
        return rest;
      }
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || stdout_fd_ < 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("no line starting with \"", prefix, "\" from pid ", pid_));
    }
    pollfd fd = {stdout_fd_, POLLIN, 0};
    const int ready = poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready <= 0) continue;
    char chunk[4096];
    const ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
    if (n <= 0) {
      close(stdout_fd_);
      stdout_fd_ = -1;
      return absl::UnavailableError(absl::StrCat("pid ", pid_, " closed stdout before printing \"",
                                                 prefix, "\""));
    }
    buffer_.append(chunk, n);
    size_t newline;
    while ((newline = buffer_.find('\n')) != std::string::npos) {
      lines_.push_back(buffer_.substr(0, newline));
      buffer_.erase(0, newline + 1);
    }
  }
}

absl::StatusOr<int> TestProcess::WaitForPort(const std::string& prefix, absl::Duration timeout) {
  absl::StatusOr<std::string> rest = WaitForLine(prefix, timeout);
  if (!rest.ok()) return rest.status();
  const size_t colon = rest->rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(rest->substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("no port in \"", prefix, *rest, "\""));
  }
  return port;
}

absl::StatusOr<int> TestProcess::Stop(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  kill(pid_, SIGTERM);
  return Wait(timeout);
}

absl::StatusOr<int> TestProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (absl::Now() >= deadline) {
      Kill();
      return absl::DeadlineExceededError(absl::StrCat("pid ", pid_, " did not exit in time"));
    }
    // No portable wait-with-timeout for one child: poll its state.
    absl::SleepFor(absl::Milliseconds(20));
  }
  pid_ = 0;
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

void TestProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = 0;
}

}  // namespace dreamfleet::testing
