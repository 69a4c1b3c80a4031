// LibTorch processes link tcmalloc (see dreamer/CMakeLists.txt): glibc malloc returned every large
// freed activation to the kernel and re-faulted it on the next update. This checks that tensor
// memory really goes through tcmalloc and that a freed large block is kept for the next update
// instead of being unmapped.
#include <gperftools/malloc_extension_c.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace {

size_t Property(const char* name) {
  size_t value = 0;
  EXPECT_EQ(MallocExtension_GetNumericProperty(name, &value), 1) << name;
  return value;
}

TEST(AllocatorTest, TensorMemoryComesFromTcmalloc) {
  const size_t before = Property("generic.current_allocated_bytes");
  {
    torch::Tensor big = torch::ones({64, 1024, 1024});  // 256 MiB of float
    const size_t during = Property("generic.current_allocated_bytes");
    EXPECT_GE(during, before + (size_t{256} << 20) - (size_t{1} << 20));
    EXPECT_FLOAT_EQ(big.sum().item<float>(), 64.0f * 1024 * 1024);
  }
  // Freed, the block stays in tcmalloc's page heap (unmapped only gradually), ready for reuse.
  EXPECT_LT(Property("generic.current_allocated_bytes"), before + (size_t{1} << 20));
  EXPECT_GE(Property("tcmalloc.pageheap_free_bytes"), size_t{256} << 20);
}

}  // namespace
