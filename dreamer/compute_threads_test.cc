// SetComputeThreads sizes LibTorch's pool and OpenBLAS's together, but keeps an
// OPENBLAS_NUM_THREADS the user chose.
#include "dreamer/compute_threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>

namespace dreamfleet::dreamer {
namespace {

int OpenBlasThreads() {
  using GetThreads = int (*)();
  auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get != nullptr ? get() : -1;
}

TEST(ComputeThreadsTest, RaisesOpenBlasWithLibTorchUnlessTheUserChose) {
  if (OpenBlasThreads() < 0) GTEST_SKIP() << "the BLAS behind libblas.so.3 is not OpenBLAS";
  const int torch_before = at::get_num_threads();

  // As after services::EnsureThreadEnvironment: our default of 1, marked as ours.
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  setenv("DREAMFLEET_OPENBLAS_THREADS_DEFAULTED", "1", 1);
  SetComputeThreads(1);
  EXPECT_EQ(OpenBlasThreads(), 1);
  SetComputeThreads(2);
  EXPECT_EQ(at::get_num_threads(), 2);
  EXPECT_EQ(OpenBlasThreads(), 2);

  // The user's own OPENBLAS_NUM_THREADS: LibTorch still follows, OpenBLAS is left alone.
  unsetenv("DREAMFLEET_OPENBLAS_THREADS_DEFAULTED");
  SetComputeThreads(1);
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(OpenBlasThreads(), 2);

  // threads <= 0 changes nothing.
  SetComputeThreads(0);
  EXPECT_EQ(at::get_num_threads(), 1);
  at::set_num_threads(torch_before);
}

}  // namespace
}  // namespace dreamfleet::dreamer
