// GridEncoder: reads the vector as the channel-last grid the envs write (a one-cell shift of the
// input shifts the convolutions' map by one cell), and the Encoder uses it for vector_encoder grid.
#include "dreamer/models/grid_encoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <vector>

#include "dreamer/agent_config.h"
#include "dreamer/models/encoder.h"
#include "dreamer/test_util.h"

namespace dreamfleet::dreamer {
namespace {

constexpr int64_t kSide = 6;
constexpr int64_t kChannels = 3;

// A grid vector [1, side * side * channels] with the given (row, column, channel) entries set.
torch::Tensor GridVector(const std::vector<std::array<int64_t, 3>>& on) {
  auto v = torch::zeros({1, kSide * kSide * kChannels});
  for (const auto& [row, col, ch] : on) v[0][(row * kSide + col) * kChannels + ch] = 1.0f;
  return v;
}

TEST(GridEncoderTest, AShiftOfOneCellShiftsTheMapByOneCell) {
  torch::manual_seed(0);
  GridEncoder enc(GridEncoderOptions(kSide, kChannels).depth(5).units(8).layers(1));
  // Two objects in different channels side by side, then the same pair one column to the right.
  const torch::Tensor a = enc->Map(GridVector({{2, 1, 0}, {2, 2, 2}}));
  const torch::Tensor b = enc->Map(GridVector({{2, 2, 0}, {2, 3, 2}}));
  ASSERT_EQ(a.sizes(), (torch::IntArrayRef{1, 5, kSide, kSide}));
  // Columns 0..4 of `a` are columns 1..5 of `b` (empty cells map to zero as the padding does,
  // the biases starting at zero).
  EXPECT_TRUE(torch::allclose(a.narrow(3, 0, kSide - 1), b.narrow(3, 1, kSide - 1), 1e-5, 1e-6))
      << "the grid's channel-last layout was not read as rows, columns and channels";
  // A row shift (kSide * channels entries further on) moves the map down a row the same way.
  const torch::Tensor c = enc->Map(GridVector({{3, 1, 0}, {3, 2, 2}}));
  EXPECT_TRUE(torch::allclose(a.narrow(2, 0, kSide - 1), c.narrow(2, 1, kSide - 1), 1e-5, 1e-6));
  // The map depends on which channel is on, not only where.
  const torch::Tensor d = enc->Map(GridVector({{2, 1, 1}, {2, 2, 2}}));
  EXPECT_FALSE(torch::allclose(a, d, 1e-3, 1e-4));
}

TEST(GridEncoderTest, EncoderUsesItForGridConfigsAndTrainsTheConvolutions) {
  torch::manual_seed(1);
  AgentConfig c = testing::GridDebugConfig(kSide, kChannels);
  ASSERT_EQ(c.preset, "debug");
  c.vector_encoder = "grid";
  ASSERT_TRUE(c.Validate().ok()) << c.Validate();
  Encoder enc(c);
  EXPECT_EQ(enc->out_size(), c.units);
  bool has_conv = false;
  for (const auto& item : enc->named_parameters()) {
    const std::string& name = item.key();
    if (name.find("vector_grid.convs") != std::string::npos) has_conv = true;
    EXPECT_EQ(name.find("vector."), std::string::npos) << "the MLP encoder was built too: " << name;
  }
  EXPECT_TRUE(has_conv);
  Observation obs;
  obs.vector = torch::cat({GridVector({{0, 0, 0}}), GridVector({{5, 5, 1}})});
  const torch::Tensor out = enc->forward(obs);
  ASSERT_EQ(out.sizes(), (torch::IntArrayRef{2, c.units}));
  EXPECT_FALSE(torch::allclose(out[0], out[1]));
  out.square().sum().backward();
  for (const auto& item : enc->named_parameters()) {
    const std::string& name = item.key();
    const torch::Tensor& p = item.value();
    if (name.find("convs") == std::string::npos || name.find("weight") == std::string::npos) {
      continue;
    }
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(p.grad().abs().sum().item<float>(), 0.0f) << name;
  }

  c.vector_encoder = "mlp";
  Encoder mlp(c);
  for (const auto& item : mlp->named_parameters()) {
    const std::string& name = item.key();
    EXPECT_EQ(name.find("vector_grid"), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace dreamfleet::dreamer
