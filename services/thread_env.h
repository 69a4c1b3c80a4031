// Thread-pool environment for LibTorch binaries. OpenBLAS and OpenMP read their settings when the
// libraries load, before main() runs, so setting them in main is too late: EnsureThreadEnvironment
// re-executes the program once with OPENBLAS_NUM_THREADS=1, OMP_WAIT_POLICY=PASSIVE and
// OPENBLAS_THREAD_TIMEOUT=4 unless the user set them (measured on 2 cores: the two pools spin
// against each other otherwise; a learner then raises OpenBLAS to its own thread count with
// dreamer::SetComputeThreads), and with tcmalloc's large-allocation report (on by default above
// 1 GiB) off.
#pragma once

namespace dreamfleet::services {

// Call first thing in main(). Returns normally when the environment is already right (or when
// re-executing fails, which only costs speed).
void EnsureThreadEnvironment(int argc, char** argv);

}  // namespace dreamfleet::services
