// Rssm: shapes of observe/imagine and the is_first reset.
#include "dreamer/models/rssm.h"

#include <gtest/gtest.h>

#include "dreamer/models/block_linear.h"

namespace dreamfleet::dreamer {
namespace {

RssmOptions Options() {
  return RssmOptions().embed(7).num_actions(3).deter(16).hidden(8).stoch(4).classes(5).blocks(4);
}

TEST(RssmTest, ObserveAndImagineHaveDocumentedShapes) {
  torch::manual_seed(0);
  Rssm rssm(Options());
  const int64_t b = 2, t = 5;
  auto seq = rssm->Observe(torch::randn({b, t, 7}), torch::randint(0, 3, {b, t}),
                           torch::zeros({b, t}, torch::kBool), rssm->Initial(b, torch::kCPU),
                           std::nullopt);
  EXPECT_EQ(seq.deter.sizes().vec(), (std::vector<int64_t>{b, t, 16}));
  EXPECT_EQ(seq.stoch.sizes().vec(), (std::vector<int64_t>{b, t, 4, 5}));
  EXPECT_EQ(seq.post_logit.sizes().vec(), (std::vector<int64_t>{b, t, 4, 5}));
  EXPECT_EQ(seq.prior_logit.sizes().vec(), (std::vector<int64_t>{b, t, 4, 5}));
  // Samples are one-hot per categorical.
  EXPECT_TRUE(torch::allclose(seq.stoch.sum(-1), torch::ones({b, t, 4})));
  // Unimix: every class keeps at least 1% / classes of probability.
  EXPECT_GE(seq.post_logit.exp().min().item<float>(), 0.01f / 5 - 1e-6f);

  auto img = rssm->Imagine(
      seq.last, [](const torch::Tensor& f) { return torch::zeros({f.size(0)}, torch::kLong); }, 3,
      std::nullopt);
  EXPECT_EQ(img.deter.sizes().vec(), (std::vector<int64_t>{b, 4, 16}));
  EXPECT_EQ(img.stoch.sizes().vec(), (std::vector<int64_t>{b, 4, 4, 5}));
  EXPECT_EQ(img.action.sizes().vec(), (std::vector<int64_t>{b, 4}));
}

TEST(RssmTest, IsFirstResetsStateAndAction) {
  torch::manual_seed(1);
  Rssm rssm(Options());
  torch::NoGradGuard no_grad;
  const int64_t n = 3;
  auto embed = torch::randn({n, 7});
  RssmState dirty{torch::randn({n, 16}),
                  torch::one_hot(torch::randint(0, 5, {n, 4}), 5).to(torch::kFloat32)};
  auto fresh = rssm->Initial(n, torch::kCPU);
  auto first = torch::ones({n}, torch::kBool);
  auto gen_a = at::detail::createCPUGenerator(7);
  auto gen_b = at::detail::createCPUGenerator(7);
  torch::Tensor logit_a, logit_b;
  auto a = rssm->ObsStep(dirty, torch::full({n}, 2, torch::kLong), embed, first, gen_a, &logit_a);
  auto b = rssm->ObsStep(fresh, torch::zeros({n}, torch::kLong), embed, first, gen_b, &logit_b);
  EXPECT_TRUE(torch::equal(a.deter, b.deter));
  EXPECT_TRUE(torch::equal(logit_a, logit_b));
  EXPECT_TRUE(torch::equal(a.stoch, b.stoch));
  // Without is_first the previous state matters.
  auto c = rssm->ObsStep(dirty, torch::full({n}, 2, torch::kLong), embed,
                         torch::zeros({n}, torch::kBool), std::nullopt);
  EXPECT_FALSE(torch::allclose(c.deter, b.deter));

  // In a sequence, a reset in the middle makes the rest independent of what came before.
  auto emb_seq = torch::randn({1, 4, 7});
  auto act = torch::randint(0, 3, {1, 4});
  auto reset = torch::tensor({{true, false, true, false}});
  auto other = emb_seq.clone();
  other.narrow(1, 0, 2).normal_();
  auto g1 = at::detail::createCPUGenerator(3);
  auto g2 = at::detail::createCPUGenerator(3);
  auto s1 = rssm->Observe(emb_seq, act, reset, rssm->Initial(1, torch::kCPU), g1);
  auto s2 = rssm->Observe(other, act, reset, rssm->Initial(1, torch::kCPU), g2);
  EXPECT_TRUE(torch::equal(s1.deter.narrow(1, 2, 2), s2.deter.narrow(1, 2, 2)));
  EXPECT_FALSE(torch::equal(s1.deter.narrow(1, 0, 2), s2.deter.narrow(1, 0, 2)));
}

TEST(BlockLinearTest, EachBlockMapsItsOwnColumnsWithAndWithoutAutograd) {
  torch::manual_seed(2);
  const int64_t n = 5, g = 4, in = 12, out = 8;
  BlockLinear layer(BlockLinearOptions(in, out, g));
  auto params = layer->named_parameters();
  {
    torch::NoGradGuard no_grad;
    params["bias"].normal_();
  }
  const auto& w = params["weight"];  // [g, in/g, out/g]
  auto x = torch::randn({n, in});
  // Reference: block k of the output is block k of the input times weight k, plus its bias.
  std::vector<torch::Tensor> blocks;
  for (int64_t k = 0; k < g; ++k) {
    blocks.push_back(torch::mm(x.narrow(1, k * 3, 3), w[k].detach()) +
                     params["bias"].detach().narrow(0, k * 2, 2));
  }
  auto expected = torch::cat(blocks, 1);
  auto with_grad = layer->forward(x);
  EXPECT_TRUE(with_grad.requires_grad());
  EXPECT_TRUE(torch::allclose(with_grad.detach(), expected, 1e-5, 1e-6));
  torch::NoGradGuard no_grad;
  auto without = layer->forward(x);
  EXPECT_TRUE(torch::allclose(without, expected, 1e-5, 1e-6));
  // A strided input (a column slice of a wider tensor) reads the same numbers.
  auto wide = torch::randn({n, in + 4});
  wide.narrow(1, 2, in).copy_(x);
  EXPECT_TRUE(torch::allclose(layer->forward(wide.narrow(1, 2, in)), expected, 1e-5, 1e-6));
}

TEST(RssmTest, ImaginationStepMatchesTheTrainingStep) {
  // The no-autograd path (imagination) and the autograd path (training) compute one step alike.
  torch::manual_seed(4);
  Rssm rssm(Options());
  RssmState state{torch::randn({6, 16}),
                  torch::one_hot(torch::randint(0, 5, {6, 4}), 5).to(torch::kFloat32)};
  auto action = torch::one_hot(torch::randint(0, 3, {6}), 3).to(torch::kFloat32);
  auto trained = rssm->Core(state.deter, state.stoch, action);
  EXPECT_TRUE(trained.requires_grad());
  torch::NoGradGuard no_grad;
  auto imagined = rssm->Core(state.deter, state.stoch, action);
  EXPECT_TRUE(torch::allclose(trained.detach(), imagined, 1e-5, 1e-6));
}

}  // namespace
}  // namespace dreamfleet::dreamer
