#include "actor/chunk_builder.h"

#include "gtest/gtest.h"

namespace dreamfleet::actor {
namespace {

TEST(ChunkBuilderTest, BuildsSequencedChunksWithPerStepShapes) {
  envs::EnvSpec spec;
  spec.image_height = 2;
  spec.image_width = 2;
  spec.image_channels = 3;
  spec.num_actions = 3;
  ChunkBuilder builder("actor-0/env-1", spec, 2);
  std::vector<uint8_t> image(12);
  for (int step = 0; step < 2; ++step) {
    std::fill(image.begin(), image.end(), static_cast<uint8_t>(10 + step));
    builder.Append(
        {image.data(), nullptr, nullptr, step + 1, 0.5f * step, step == 0, false, false});
  }
  ASSERT_TRUE(builder.full());
  replay::StepChunk chunk = builder.Take(/*weights_version=*/7);
  EXPECT_EQ(chunk.actor_id, "actor-0/env-1");
  EXPECT_EQ(chunk.sequence, 0u);
  EXPECT_EQ(chunk.num_steps, 2u);
  EXPECT_EQ(chunk.weights_version, 7);
  ASSERT_EQ(chunk.fields.size(), 6u);  // image action reward is_first is_last is_terminal
  EXPECT_EQ(chunk.fields[0].name, "image");
  EXPECT_EQ(chunk.fields[0].shape, (std::vector<int64_t>{2, 2, 2, 3}));
  ASSERT_EQ(chunk.fields[0].data.size(), 24u);
  EXPECT_EQ(chunk.fields[0].data[0], 10);
  EXPECT_EQ(chunk.fields[0].data[12], 11);
  EXPECT_EQ(chunk.fields[1].name, "action");
  EXPECT_EQ(chunk.fields[1].dtype, v1::DTYPE_INT32);
  const int32_t* actions = reinterpret_cast<const int32_t*>(chunk.fields[1].data.data());
  EXPECT_EQ(actions[0], 1);
  EXPECT_EQ(actions[1], 2);
  EXPECT_EQ(chunk.fields[3].name, "is_first");
  EXPECT_EQ(chunk.fields[3].data, std::string("\x01\x00", 2));
  EXPECT_EQ(builder.size(), 0);
  builder.Append({image.data(), nullptr, nullptr, 0, 0, false, true, true});
  replay::StepChunk partial = builder.Take(8);
  EXPECT_EQ(partial.sequence, 1u);
  EXPECT_EQ(partial.num_steps, 1u);
}

TEST(ChunkBuilderTest, EnvWithoutImageSendsNoImageField) {
  envs::EnvSpec spec;
  spec.image_height = spec.image_width = spec.image_channels = 0;
  spec.vector_size = 3;
  spec.num_actions = 3;
  ChunkBuilder builder("actor-0/env-0", spec, 2);
  const float v0[3] = {1, 0, 0}, v1[3] = {0, 1, 0};
  builder.Append({nullptr, v0, nullptr, 0, 0.0f, true, false, false});
  builder.Append({nullptr, v1, nullptr, 2, 0.5f, false, false, false});
  replay::StepChunk chunk = builder.Take(0);
  ASSERT_EQ(chunk.fields.size(), 6u);  // vector action reward is_first is_last is_terminal
  for (const auto& field : chunk.fields) EXPECT_NE(field.name, "image");
  EXPECT_EQ(chunk.fields[0].name, "vector");
  EXPECT_EQ(chunk.fields[0].shape, (std::vector<int64_t>{2, 3}));
  const float* vector = reinterpret_cast<const float*>(chunk.fields[0].data.data());
  EXPECT_EQ(vector[1], 0.0f);
  EXPECT_EQ(vector[4], 1.0f);
}

}  // namespace
}  // namespace dreamfleet::actor
