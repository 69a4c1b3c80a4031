#include "dreamer/compute_threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <stdlib.h>

namespace dreamfleet::dreamer {

void SetComputeThreads(int threads) {
  if (threads <= 0) return;
  at::set_num_threads(threads);
  // An OPENBLAS_NUM_THREADS the user set is kept; ours (services::EnsureThreadEnvironment) or none
  // at all is replaced.
  if (getenv("OPENBLAS_NUM_THREADS") != nullptr &&
      getenv("DREAMFLEET_OPENBLAS_THREADS_DEFAULTED") == nullptr) {
    return;
  }
  // Looked up at run time: the BLAS behind Debian's libblas.so.3 is chosen by update-alternatives,
  // and only OpenBLAS has this entry point.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(threads);
  }
}

}  // namespace dreamfleet::dreamer
