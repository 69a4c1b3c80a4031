#include "actor/chunk_builder.h"

#include "gtest/gtest.h"
#include "services/tensor_codec.h"

namespace dreamfleet::actor {
namespace {

TEST(ChunkBuilderTest, BuildsSequencedChunksWithPerStepShapes) {
  EnvSpec spec;
  spec.image_height = 2;
  spec.image_width = 2;
  spec.image_channels = 3;
  spec.num_actions = 3;
  ChunkBuilder builder("actor-0/env-1", spec, 2);
  std::vector<uint8_t> image(12);
  for (int step = 0; step < 2; ++step) {
    std::fill(image.begin(), image.end(), static_cast<uint8_t>(10 + step));
    builder.Append(image.data(), nullptr, nullptr, step + 1, 0.5f * step, step == 0, false, false);
  }
  ASSERT_TRUE(builder.full());
  v1::Chunk chunk = builder.Take(/*weights_version=*/7);
  EXPECT_EQ(chunk.actor_id(), "actor-0/env-1");
  EXPECT_EQ(chunk.sequence(), 0u);
  EXPECT_EQ(chunk.num_steps(), 2u);
  EXPECT_EQ(chunk.weights_version(), 7);
  ASSERT_EQ(chunk.data_size(), 6);  // image action reward is_first is_last is_terminal
  std::vector<uint8_t> images;
  ASSERT_TRUE(services::DecodeTensorTo<uint8_t>(chunk.data(0).tensor(), "image", {2, 2, 2, 3},
                                                &images).ok());
  EXPECT_EQ(images[0], 10);
  EXPECT_EQ(images[12], 11);
  std::vector<int32_t> actions;
  ASSERT_TRUE(services::DecodeTensorTo<int32_t>(chunk.data(1).tensor(), "action", {2}, &actions).ok());
  EXPECT_EQ(actions, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(chunk.data(3).name(), "is_first");
  EXPECT_EQ(chunk.data(3).tensor().data(), std::string("\x01\x00", 2));
  EXPECT_EQ(builder.size(), 0);
  builder.Append(image.data(), nullptr, nullptr, 0, 0, false, true, true);
  v1::Chunk partial = builder.Take(8);
  EXPECT_EQ(partial.sequence(), 1u);
  EXPECT_EQ(partial.num_steps(), 1u);
}

}  // namespace
}  // namespace dreamfleet::actor
