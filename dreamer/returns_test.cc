// Tests of the TD(lambda) return against hand-computed examples and its
// lambda = 0 / lambda = 1 limits.
#include "dreamer/returns.h"

#include <gtest/gtest.h>

namespace dreamfleet::dreamer {
namespace {

torch::TensorOptions Double() { return torch::TensorOptions().dtype(torch::kDouble); }

TEST(LambdaReturnTest, ThreeStepsWithTerminalByHand) {
  // r = [1, 2, 3], v = [10, 20, 30, 40], c = [1, 1, 0], gamma = 0.5, lambda = 0.5.
  //   R_3 = v_3 = 40
  //   R_2 = 3 + 0.5 * 0 * (...)                       = 3
  //   R_1 = 2 + 0.5 * 1 * (0.5 * 30 + 0.5 * 3)        = 2 + 0.5 * 16.5   = 10.25
  //   R_0 = 1 + 0.5 * 1 * (0.5 * 20 + 0.5 * 10.25)    = 1 + 0.5 * 15.125 = 8.5625
  torch::Tensor r = torch::tensor({{1.0, 2.0, 3.0}}, Double());
  torch::Tensor v = torch::tensor({{10.0, 20.0, 30.0, 40.0}}, Double());
  torch::Tensor c = torch::tensor({{1.0, 1.0, 0.0}}, Double());
  torch::Tensor ret = LambdaReturn(r, v, c, 0.5, 0.5);
  ASSERT_EQ(ret.sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_DOUBLE_EQ(ret[0][0].item<double>(), 8.5625);
  EXPECT_DOUBLE_EQ(ret[0][1].item<double>(), 10.25);
  EXPECT_DOUBLE_EQ(ret[0][2].item<double>(), 3.0);
}

TEST(LambdaReturnTest, ThreeStepsBootstrappedByHand) {
  // r = [0, 0, 1], v = [0, 0, 0, 5], c = [1, 1, 1], gamma = 0.9, lambda = 0.95.
  //   R_3 = 5
  //   R_2 = 1 + 0.9 * (0.05 * 5 + 0.95 * 5)           = 1 + 4.5        = 5.5
  //   R_1 = 0 + 0.9 * (0.05 * 0 + 0.95 * 5.5)         = 0.9 * 5.225    = 4.7025
  //   R_0 = 0 + 0.9 * (0.05 * 0 + 0.95 * 4.7025)      = 0.9 * 4.467375 = 4.0206375
  // A second batch row with continuous 0.5 probabilities checks row independence:
  // r = [1, 1, 1], v = [0, 2, 2, 2], c = [.5, .5, .5]:
  //   R_2 = 1 + 0.45 * 2 = 1.9
  //   R_1 = 1 + 0.45 * (0.1 + 1.805) = 1 + 0.45 * 1.905 = 1.85725
  //   R_0 = 1 + 0.45 * (0.1 + 0.95 * 1.85725) = 1 + 0.45 * 1.8643875 = 1.838974375
  torch::Tensor r = torch::tensor({{0.0, 0.0, 1.0}, {1.0, 1.0, 1.0}}, Double());
  torch::Tensor v = torch::tensor({{0.0, 0.0, 0.0, 5.0}, {0.0, 2.0, 2.0, 2.0}}, Double());
  torch::Tensor c = torch::tensor({{1.0, 1.0, 1.0}, {0.5, 0.5, 0.5}}, Double());
  torch::Tensor ret = LambdaReturn(r, v, c, 0.9, 0.95);
  torch::Tensor expected =
      torch::tensor({{4.0206375, 4.7025, 5.5}, {1.838974375, 1.85725, 1.9}}, Double());
  EXPECT_TRUE(torch::allclose(ret, expected, 0, 1e-12)) << ret;
}

TEST(LambdaReturnTest, LambdaOneIsDiscountedSumAndLambdaZeroIsOneStepTd) {
  torch::manual_seed(0);
  const int64_t B = 4, H = 6;
  const double gamma = 0.97;
  torch::Tensor r = torch::randn({B, H}, Double());
  torch::Tensor v = torch::randn({B, H + 1}, Double());
  torch::Tensor c = torch::rand({B, H}, Double());
  torch::Tensor td = LambdaReturn(r, v, c, gamma, 0.0);
  EXPECT_TRUE(torch::allclose(td, r + gamma * c * v.narrow(1, 1, H), 0, 1e-12));
  torch::Tensor mc = LambdaReturn(r, v, c, gamma, 1.0);
  // sum_k (prod_{j<k} gamma c_j) r_k + (prod_j gamma c_j) v_H, from each start t.
  for (int64_t t = 0; t < H; ++t) {
    torch::Tensor acc = torch::zeros({B}, Double());
    torch::Tensor disc = torch::ones({B}, Double());
    for (int64_t k = t; k < H; ++k) {
      acc += disc * r.select(1, k);
      disc = disc * gamma * c.select(1, k);
    }
    acc += disc * v.select(1, H);
    EXPECT_TRUE(torch::allclose(mc.select(1, t), acc, 0, 1e-12)) << "t=" << t;
  }
}

TEST(LambdaReturnTest, RejectsMismatchedShapes) {
  torch::Tensor r = torch::zeros({2, 3});
  EXPECT_THROW(LambdaReturn(r, torch::zeros({2, 3}), r, 0.9, 0.95), c10::Error);
  EXPECT_THROW(LambdaReturn(r, torch::zeros({2, 4}), torch::zeros({2, 2}), 0.9, 0.95), c10::Error);
  EXPECT_EQ(LambdaReturn(r, torch::zeros({2, 4}), r, 0.9, 0.95).sizes(),
            (std::vector<int64_t>{2, 3}));
}

}  // namespace
}  // namespace dreamfleet::dreamer
