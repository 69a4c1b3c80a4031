#include "services/shutdown.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace dreamfleet::services {
namespace {

int g_pipe[2] = {-1, -1};
std::atomic<int> g_signal{0};
std::atomic<int> g_signal_count{0};

struct State {
  absl::Notification requested;
  absl::Mutex mu;
  std::vector<std::function<void()>> callbacks ABSL_GUARDED_BY(mu);
  bool callbacks_ran ABSL_GUARDED_BY(mu) = false;
};
State& GetState() {
  static auto* state = new State;
  return *state;
}

void RunCallbacks() {
  State& state = GetState();
  std::vector<std::function<void()>> callbacks;
  {
    absl::MutexLock lock(&state.mu);
    if (state.callbacks_ran) return;
    state.callbacks_ran = true;
    callbacks.swap(state.callbacks);
  }
  for (auto& callback : callbacks) callback();
}

void Trigger() {
  State& state = GetState();
  if (!state.requested.HasBeenNotified()) state.requested.Notify();
  RunCallbacks();
}

extern "C" void HandleSignal(int signo) {
  if (g_signal_count.fetch_add(1) >= 1) _exit(130);  // second Ctrl-C: leave now
  g_signal.store(signo);
  char byte = 1;
  ssize_t ignored = write(g_pipe[1], &byte, 1);
  (void)ignored;
}

}  // namespace

void InstallShutdownHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (pipe2(g_pipe, O_CLOEXEC) != 0) return;
    std::thread([] {
      char byte;
      while (read(g_pipe[0], &byte, 1) < 0 && errno == EINTR) {
      }
      Trigger();
    }).detach();
    struct sigaction action = {};
    action.sa_handler = HandleSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);
  });
}

bool ShutdownRequested() { return GetState().requested.HasBeenNotified(); }

bool WaitForShutdown(absl::Duration timeout) {
  return GetState().requested.WaitForNotificationWithTimeout(timeout);
}

void RequestShutdown() { Trigger(); }

void OnShutdown(std::function<void()> callback) {
  State& state = GetState();
  {
    absl::MutexLock lock(&state.mu);
    if (!state.callbacks_ran) {
      state.callbacks.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

int ShutdownSignalNumber() { return g_signal.load(); }

}  // namespace dreamfleet::services
