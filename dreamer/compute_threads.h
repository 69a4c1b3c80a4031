// One call to size both CPU thread pools a LibTorch process computes with.
#pragma once

namespace dreamfleet::dreamer {

// Sets LibTorch's intra-op threads and, when the BLAS LibTorch calls is OpenBLAS, its thread count
// too (matrix products run in OpenBLAS, outside LibTorch's pool), unless the user set
// OPENBLAS_NUM_THREADS. The process starts with OpenBLAS on one thread
// (services::EnsureThreadEnvironment) so that processes which never raise it do not run a second,
// spinning pool. threads <= 0 leaves both as they are.
void SetComputeThreads(int threads);

}  // namespace dreamfleet::dreamer
