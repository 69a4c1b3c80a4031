#include "services/thread_env.h"

#include <stdlib.h>
#include <unistd.h>

namespace dreamfleet::services {

void EnsureThreadEnvironment(int argc, char** argv) {
  (void)argc;
  if (getenv("DREAMFLEET_THREAD_ENV_SET") != nullptr) return;
  setenv("DREAMFLEET_THREAD_ENV_SET", "1", 1);
  if (getenv("OPENBLAS_NUM_THREADS") == nullptr) {
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    // Tells dreamer::SetComputeThreads that the 1 is ours to raise, not the user's choice.
    setenv("DREAMFLEET_OPENBLAS_THREADS_DEFAULTED", "1", 1);
  }
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  // OpenBLAS's idle workers busy-wait in sched_yield for 2^28 cycles after each product before
  // sleeping: a third of a 2-thread learner's CPU time (perf). Sleeping at once (2^4 cycles, the
  // smallest value it takes) measured no slower and leaves that CPU to the other processes.
  setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);
  // tcmalloc prints a stack line for every allocation over 1 GiB; a 25m/50m model's activations
  // on a full batch are that large on every update.
  setenv("TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD", "1099511627776", 0);
  execv("/proc/self/exe", argv);
  // execv only returns on failure: carry on with the inherited environment.
}

}  // namespace dreamfleet::services
