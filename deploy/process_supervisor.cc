#include "deploy/process_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "services/logging.h"
#include "services/status_macros.h"

namespace dreamfleet::deploy {

ProcessSupervisor::~ProcessSupervisor() { Stop(); }

absl::StatusOr<pid_t> ProcessSupervisor::Spawn(const ProcessSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError(absl::StrCat(spec.name, ": empty argv"));
  if (access(spec.argv[0].c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(spec.name, ": binary ", spec.argv[0],
                                            " is missing or not executable"));
  }
  int log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::UnavailableError(
        absl::StrCat(spec.name, ": cannot open log ", spec.log_path, ": ", std::strerror(errno)));
  }
  std::vector<char*> argv;
  for (const std::string& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return absl::ResourceExhaustedError(absl::StrCat(spec.name, ": fork failed"));
  }
  if (pid == 0) {
    // Child: own process group so a terminal Ctrl-C reaches only the launcher, which then stops
    // the children in order.
    setpgid(0, 0);
    // If the launcher dies without stopping us (kill -9), take the process down with it rather
    // than leave it holding the run's ports.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  return pid;
}

absl::Status ProcessSupervisor::Start(const ProcessSpec& spec) {
  ASSIGN_OR_RETURN(pid_t pid, Spawn(spec));
  absl::MutexLock lock(&mu_);
  Child child;
  child.spec = spec;
  child.pid = pid;
  children_.push_back(std::move(child));
  return absl::OkStatus();
}

namespace {

// Our binaries exit with code 2 when their config or a file it names is unusable; restarting them
// cannot help.
bool RejectedStart(pid_t pid, const std::string& last_exit) {
  return pid == 0 && last_exit == "exit 2";
}

}  // namespace

std::vector<std::string> ProcessSupervisor::Poll(absl::Duration backoff) {
  std::vector<std::string> exited;
  absl::MutexLock lock(&mu_);
  for (Child& child : children_) {
    if (child.pid > 0) {
      int status = 0;
      const pid_t done = waitpid(child.pid, &status, WNOHANG);
      if (done == child.pid) {
        child.last_exit = WIFSIGNALED(status) ? absl::StrCat("signal ", WTERMSIG(status))
                                              : absl::StrCat("exit ", WEXITSTATUS(status));
        child.pid = 0;
        child.next_start = absl::Now() + backoff;
        exited.push_back(child.spec.name);
      }
    }
    if (child.pid == 0 && child.spec.restart && !child.stopped &&
        !RejectedStart(child.pid, child.last_exit) && absl::Now() >= child.next_start &&
        !child.last_exit.empty()) {
      absl::StatusOr<pid_t> pid = Spawn(child.spec);
      if (pid.ok()) {
        child.pid = *pid;
        ++child.restarts;
        DF_LOG(WARNING) << child.spec.name << " exited (" << child.last_exit << "), restarted as pid "
                        << *pid << " (restart " << child.restarts << ")";
      } else {
        DF_LOG(ERROR) << "cannot restart " << child.spec.name << ": " << pid.status().message();
        child.next_start = absl::Now() + backoff;
      }
    }
  }
  return exited;
}

std::vector<ProcessState> ProcessSupervisor::States() const {
  absl::MutexLock lock(&mu_);
  std::vector<ProcessState> states;
  for (const Child& child : children_) {
    states.push_back({child.spec.name, child.pid, child.restarts, child.last_exit,
                      RejectedStart(child.pid, child.last_exit)});
  }
  return states;
}

pid_t ProcessSupervisor::Pid(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  for (const Child& child : children_) {
    if (child.spec.name == name) return child.pid;
  }
  return 0;
}

void ProcessSupervisor::Stop(absl::Duration grace, const std::string& prefix) {
  absl::MutexLock lock(&mu_);
  std::vector<Child*> stopping;
  for (Child& child : children_) {
    if (child.spec.name.compare(0, prefix.size(), prefix) != 0) continue;
    child.stopped = true;
    if (child.pid > 0) kill(child.pid, SIGTERM);
    stopping.push_back(&child);
  }
  const absl::Time deadline = absl::Now() + grace;
  for (Child* stopping_child : stopping) {
    Child& child = *stopping_child;
    while (child.pid > 0) {
      int status = 0;
      const pid_t done = waitpid(child.pid, &status, WNOHANG);
      if (done == child.pid || (done < 0 && errno == ECHILD)) {
        child.pid = 0;
        break;
      }
      if (absl::Now() >= deadline) {
        DF_LOG(WARNING) << child.spec.name << " did not stop within "
                        << absl::FormatDuration(grace) << "; killing it";
        kill(child.pid, SIGKILL);
        waitpid(child.pid, &status, 0);
        child.pid = 0;
        break;
      }
      // Polling waitpid: children may exit in any order and there is no portable wait-with-timeout
      // for a specific pid.
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
}

}  // namespace dreamfleet::deploy
