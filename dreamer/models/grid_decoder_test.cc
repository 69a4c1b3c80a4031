// GridDecoder: writes the channel-last grid the envs write (a one-cell shift of the map shifts the
// decoded cells by one cell), and the world model uses it for vector_decoder grid and trains it.
#include "dreamer/models/grid_decoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "dreamer/agent_config.h"
#include "dreamer/batch.h"
#include "dreamer/test_util.h"
#include "dreamer/world_model.h"

namespace dreamfleet::dreamer {
namespace {

constexpr int64_t kSide = 6;
constexpr int64_t kChannels = 3;
constexpr int64_t kDepth = 5;

// A map [1, depth, side, side] with a feature vector at (row, col) and zeros elsewhere.
torch::Tensor MapWith(int64_t row, int64_t col) {
  auto map = torch::zeros({1, kDepth, kSide, kSide});
  map.select(2, row).select(2, col).copy_(torch::arange(1, kDepth + 1).to(torch::kFloat32));
  return map;
}

TEST(GridDecoderTest, AShiftOfOneCellInTheMapShiftsTheDecodedCells) {
  torch::manual_seed(0);
  GridDecoder dec(GridDecoderOptions(/*feat=*/7, kSide, kChannels).depth(kDepth).units(8));
  const torch::Tensor a = dec->Render(MapWith(2, 2)).view({kSide, kSide, kChannels});
  const torch::Tensor b = dec->Render(MapWith(2, 3)).view({kSide, kSide, kChannels});
  // Columns 0..4 of `a` are columns 1..5 of `b`; rows likewise for a row shift.
  EXPECT_TRUE(torch::allclose(a.narrow(1, 0, kSide - 1), b.narrow(1, 1, kSide - 1), 1e-5, 1e-6))
      << "the cells were not written in the grid's channel-last layout";
  const torch::Tensor c = dec->Render(MapWith(3, 2)).view({kSide, kSide, kChannels});
  EXPECT_TRUE(torch::allclose(a.narrow(0, 0, kSide - 1), c.narrow(0, 1, kSide - 1), 1e-5, 1e-6));
  // The feature reaches its cell and its neighbours only (two 3x3 convolutions: 2 cells away).
  EXPECT_GT(a[2][2].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(a[5][5].abs().sum().item<float>(), 0.0f);
  // forward: features -> the whole grid.
  EXPECT_EQ(dec->forward(torch::randn({4, 7})).sizes(),
            (torch::IntArrayRef{4, kSide * kSide * kChannels}));
}

TEST(GridDecoderTest, WorldModelDecodesWithItForGridConfigsAndTrainsIt) {
  torch::manual_seed(1);
  AgentConfig c = testing::GridDebugConfig(kSide, kChannels);
  ASSERT_EQ(c.preset, "debug");
  c.vector_decoder = "grid";
  ASSERT_TRUE(c.Validate().ok()) << c.Validate();
  WorldModel wm(c);
  bool has_conv = false;
  for (const auto& item : wm->named_parameters()) {
    const std::string& name = item.key();
    if (name.find("vector_grid_decoder.convs") != std::string::npos) has_conv = true;
    EXPECT_EQ(name.rfind("vector_decoder.", 0), std::string::npos)
        << "the MLP decoder was built too: " << name;
  }
  EXPECT_TRUE(has_conv);
  // Every convolution gets a gradient, and a few updates on one batch lower the reconstruction
  // loss (which shrinking the outputs alone would also do: the layout is the test above's).
  Batch batch = RandomBatch(c, 2, 5, 3);
  batch.vector = (batch.vector > 1.0).to(torch::kFloat32);  // a sparse 0/1 grid
  torch::optim::Adam opt(wm->parameters(), torch::optim::AdamOptions(3e-3));
  float first = 0, last = 0;
  for (int i = 0; i < 30; ++i) {
    opt.zero_grad();
    WorldModelOutput out = wm->Loss(batch, at::detail::createCPUGenerator(i));
    out.loss.backward();
    if (i == 0) {
      for (const auto& item : wm->named_parameters()) {
        if (item.key().find("vector_grid_decoder.convs") == std::string::npos) continue;
        ASSERT_TRUE(item.value().grad().defined()) << item.key();
        EXPECT_GT(item.value().grad().abs().sum().item<float>(), 0.0f) << item.key();
      }
    }
    opt.step();
    (i == 0 ? first : last) = out.losses["vector"].item<float>();
  }
  EXPECT_LT(last, 0.5f * first);
  // A grid decoder needs a grid.
  c.vector_grid_channels = 0;
  EXPECT_NE(c.Validate().message().find("vector_decoder grid needs a square grid"),
            std::string::npos)
      << c.Validate();
  c.vector_grid_channels = kChannels;
  c.vector_decoder = "conv";
  EXPECT_NE(c.Validate().message().find("vector_decoder must be mlp or grid"), std::string::npos)
      << c.Validate();
}

}  // namespace
}  // namespace dreamfleet::dreamer
