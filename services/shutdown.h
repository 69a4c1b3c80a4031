// Graceful shutdown on SIGINT/SIGTERM. InstallShutdownHandler() (call first thing in main, before
// other threads start) routes both signals to a watcher thread; components poll
// ShutdownRequested() or block in WaitForShutdown(). A second signal exits at once (code 130).
#pragma once

#include <functional>

#include "absl/time/time.h"

namespace dreamfleet::services {

void InstallShutdownHandler();
bool ShutdownRequested();
// Blocks until shutdown is requested or `timeout` passes; true when requested.
bool WaitForShutdown(absl::Duration timeout = absl::InfiniteDuration());
// Requests shutdown from inside the process (as if SIGTERM arrived).
void RequestShutdown();
// Runs `callback` on the watcher thread once shutdown is requested (e.g. server->Shutdown()).
void OnShutdown(std::function<void()> callback);
// The signal that caused the shutdown, 0 when requested in-process or not yet requested.
int ShutdownSignalNumber();

}  // namespace dreamfleet::services
