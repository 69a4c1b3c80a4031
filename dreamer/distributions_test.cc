// Tests of the DreamerV3 distribution math: symlog, twohot, unimix
// categoricals, straight-through samples, KL and the free-bits dyn/rep losses.
#include "dreamer/distributions.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace dreamfleet::dreamer {
namespace {

torch::TensorOptions Double() { return torch::TensorOptions().dtype(torch::kDouble); }

TEST(SymlogTest, MatchesDefinitionAndRoundTrips) {
  torch::Tensor x = torch::tensor({-1e6, -100.0, -1.0, -0.5, 0.0, 0.5, 1.0, 100.0, 1e6}, Double());
  torch::Tensor y = Symlog(x);
  EXPECT_DOUBLE_EQ(y[4].item<double>(), 0.0);
  EXPECT_NEAR(y[6].item<double>(), std::log(2.0), 1e-15);
  EXPECT_NEAR(y[0].item<double>(), -std::log1p(1e6), 1e-12);
  EXPECT_TRUE(torch::allclose(Symexp(y), x, /*rtol=*/1e-12, /*atol=*/1e-12));
  EXPECT_TRUE(torch::allclose(Symlog(Symexp(y)), y, 1e-12, 1e-12));
}

TEST(TwoHotTest, BinsAreUniformInSymlogSpaceAndSymmetric) {
  torch::Tensor bins = TwoHotBins(Double());
  ASSERT_EQ(bins.size(0), 255);
  EXPECT_DOUBLE_EQ(bins[0].item<double>(), -20.0);
  EXPECT_DOUBLE_EQ(bins[254].item<double>(), 20.0);
  EXPECT_DOUBLE_EQ(bins[127].item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(bins, -bins.flip({0})));
  torch::Tensor diffs = bins.narrow(0, 1, 254) - bins.narrow(0, 0, 254);
  EXPECT_TRUE(torch::allclose(diffs, torch::full({254}, 40.0 / 254.0, Double()), 0, 1e-12));
  EXPECT_EQ(TwoHotBins().scalar_type(), torch::kFloat);
}

TEST(TwoHotTest, ValueOnABinIsOneHot) {
  torch::Tensor bins = TwoHotBins(Double());
  torch::Tensor enc = TwoHotEncodeSymlog(bins.index({torch::indexing::Slice(100, 103)}));
  ASSERT_EQ(enc.sizes(), (std::vector<int64_t>{3, 255}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(enc[i][100 + i].item<double>(), 1.0, 1e-9);
    EXPECT_NEAR(enc[i].sum().item<double>(), 1.0, 1e-12);
  }
}

TEST(TwoHotTest, ValueBetweenBinsSplitsLinearly) {
  torch::Tensor bins = TwoHotBins(Double());
  const double step = 40.0 / 254.0;
  const double x = bins[130].item<double>() + 0.25 * step;
  torch::Tensor enc = TwoHotEncodeSymlog(torch::tensor({x}, Double()))[0];
  EXPECT_NEAR(enc[130].item<double>(), 0.75, 1e-9);
  EXPECT_NEAR(enc[131].item<double>(), 0.25, 1e-9);
  EXPECT_NEAR(enc.sum().item<double>(), 1.0, 1e-12);
  EXPECT_EQ((enc > 0).sum().item<int64_t>(), 2);
  EXPECT_NEAR((enc * bins).sum().item<double>(), x, 1e-9);
}

TEST(TwoHotTest, ValuesAtAndBeyondTheEdgesClampToEdgeBins) {
  const double inf = std::numeric_limits<double>::infinity();
  torch::Tensor x = torch::tensor({20.0, 25.0, 1e9, inf, -20.0, -21.0, -1e9, -inf}, Double());
  torch::Tensor enc = TwoHotEncodeSymlog(x);
  for (int i = 0; i < 4; ++i) {
    EXPECT_DOUBLE_EQ(enc[i][254].item<double>(), 1.0) << "row " << i;
    EXPECT_DOUBLE_EQ(enc[i].sum().item<double>(), 1.0) << "row " << i;
  }
  for (int i = 4; i < 8; ++i) {
    EXPECT_DOUBLE_EQ(enc[i][0].item<double>(), 1.0) << "row " << i;
    EXPECT_DOUBLE_EQ(enc[i].sum().item<double>(), 1.0) << "row " << i;
  }
  // Raw values beyond symexp(20) ~ 4.85e8 clamp too, and decode to the edge.
  torch::Tensor raw = torch::tensor({1e10, -1e10}, Double());
  torch::Tensor raw_enc = TwoHotEncode(raw);
  EXPECT_DOUBLE_EQ(raw_enc[0][254].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(raw_enc[1][0].item<double>(), 1.0);
  EXPECT_NEAR(TwoHotDecode(raw_enc)[0].item<double>(), std::expm1(20.0), 1e-3);
}

TEST(TwoHotTest, EncodeThenDecodeRecoversTheValue) {
  torch::Tensor v = torch::tensor(
      {-1e5, -3333.3, -17.0, -1.0, -0.3, 0.0, 1e-4, 0.3, 1.0, 2.5, 42.0, 999.0, 1e5}, Double());
  torch::Tensor decoded = TwoHotDecode(TwoHotEncode(v));
  EXPECT_TRUE(torch::allclose(decoded, v, /*rtol=*/1e-9, /*atol=*/1e-12)) << decoded << "\nvs\n"
                                                                          << v;
  // float32 keeps ~1e-5 relative precision through the round trip.
  torch::Tensor vf = v.to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(TwoHotDecode(TwoHotEncode(vf)), vf, 1e-4, 1e-5));
  // Keeps leading dims.
  EXPECT_EQ(TwoHotEncode(torch::zeros({2, 3, 4})).sizes(), (std::vector<int64_t>{2, 3, 4, 255}));
}

TEST(TwoHotTest, MeanOfLogitsDecodesSoftmaxAndIsExactlyZeroWhenUniform) {
  EXPECT_EQ(TwoHotMean(torch::zeros({4, 255})).abs().max().item<float>(), 0.0f);
  torch::Tensor v = torch::tensor({-250.0, -1.0, 0.5, 7.0, 12345.0}, Double());
  torch::Tensor logits = torch::log(TwoHotEncode(v));  // -inf off the two bins.
  EXPECT_TRUE(torch::allclose(TwoHotMean(logits), v, 1e-9, 1e-12));
  // Shift invariance of softmax.
  EXPECT_TRUE(torch::allclose(TwoHotMean(logits.clamp_min(-1e4) + 3.0), v, 1e-9, 1e-12));
}

TEST(TwoHotTest, LossIsMinimalAtTheTarget) {
  torch::manual_seed(0);
  const std::vector<double> targets = {-40.0, -1.0, 0.0, 0.7, 3.0, 500.0};
  for (double target : targets) {
    torch::Tensor t = torch::tensor({target}, Double());
    torch::Tensor enc = TwoHotEncode(t);
    torch::Tensor best_logits = torch::log(enc.clamp_min(1e-300));
    const double best = TwoHotLoss(best_logits, t).item<double>();
    // The minimum of a cross entropy is the target's own entropy.
    const double entropy = -(enc * torch::log(enc.clamp_min(1e-300))).sum().item<double>();
    EXPECT_NEAR(best, entropy, 1e-9) << target;
    for (int trial = 0; trial < 20; ++trial) {
      torch::Tensor other = best_logits.clamp_min(-5.0) + torch::randn({1, 255}, Double());
      EXPECT_GT(TwoHotLoss(other, t).item<double>(), best) << target;
    }
  }
}

TEST(TwoHotTest, MinimisingTheLossMovesTheMeanToTheTarget) {
  for (double target : {-25.0, 0.0, 0.4, 7.0, 3000.0}) {
    torch::Tensor logits = torch::zeros({1, 255}, torch::requires_grad());
    torch::optim::Adam adam({logits}, torch::optim::AdamOptions(0.3));
    torch::Tensor t = torch::tensor({static_cast<float>(target)});
    for (int i = 0; i < 300; ++i) {
      adam.zero_grad();
      TwoHotLoss(logits, t).sum().backward();
      adam.step();
    }
    EXPECT_NEAR(TwoHotMean(logits.detach())[0].item<float>(), target,
                0.02 * std::abs(target) + 0.02)
        << target;
  }
}

TEST(TwoHotRawTest, EncodeDecodeRoundTripsAndClampsBeyondTheEdgeBins) {
  const double edge = std::expm1(20.0);
  torch::Tensor v = torch::tensor(
      {-1e10, -edge, -1234.5, -10.0, -0.9, -1e-6, 0.0, 1e-6, 0.5, 1.0, 10.0, 3e6, edge, 1e10},
      Double());
  torch::Tensor enc = TwoHotEncode(v, TwoHotSpace::kRaw);
  ASSERT_EQ(enc.sizes(), (std::vector<int64_t>{14, 255}));
  EXPECT_TRUE(torch::allclose(enc.sum(-1), torch::ones({14}, Double()), 0, 1e-12));
  EXPECT_GE(enc.min().item<double>(), 0.0);
  torch::Tensor decoded = TwoHotDecode(enc, TwoHotSpace::kRaw);
  EXPECT_TRUE(torch::allclose(decoded, v.clamp(-edge, edge), 1e-9, 1e-9)) << decoded;
  // All weight on the edge bins at and beyond them.
  EXPECT_DOUBLE_EQ(enc[0][0].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(enc[13][254].item<double>(), 1.0);
  EXPECT_NEAR(enc[12][254].item<double>(), 1.0, 1e-12);
  // float32 in, float32 out, and still round-trips.
  torch::Tensor vf = torch::tensor({-3.0f, 0.25f, 0.9f, 42.0f});
  torch::Tensor encf = TwoHotEncode(vf, TwoHotSpace::kRaw);
  EXPECT_EQ(encf.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(TwoHotDecode(encf, TwoHotSpace::kRaw), vf, 1e-4, 1e-5));
}

TEST(TwoHotRawTest, ANanTargetGivesANanLossNotACrash) {
  for (TwoHotSpace space : {TwoHotSpace::kRaw, TwoHotSpace::kSymlog}) {
    torch::Tensor t = torch::tensor({1.0f, std::numeric_limits<float>::quiet_NaN()});
    torch::Tensor loss = TwoHotLoss(torch::zeros({2, 255}), t, space);
    EXPECT_TRUE(std::isfinite(loss[0].item<float>()));
    EXPECT_TRUE(std::isnan(loss[1].item<float>()));
  }
}

TEST(TwoHotRawTest, WeightsAreLinearInRawSpaceBetweenTheTwoBins) {
  torch::Tensor bins = TwoHotRawBins(Double());
  EXPECT_TRUE(torch::allclose(bins, Symexp(TwoHotBins(Double())), 0, 0));
  const double low = bins[140].item<double>(), high = bins[141].item<double>();
  const double x = low + 0.25 * (high - low);
  torch::Tensor enc = TwoHotEncode(torch::tensor({x}, Double()), TwoHotSpace::kRaw)[0];
  EXPECT_NEAR(enc[140].item<double>(), 0.75, 1e-9);
  EXPECT_NEAR(enc[141].item<double>(), 0.25, 1e-9);
  EXPECT_NEAR(enc.sum().item<double>(), 1.0, 1e-12);
  // The symlog encoding splits the same value differently (linear in symlog space).
  torch::Tensor symlog_enc = TwoHotEncode(torch::tensor({x}, Double()))[0];
  EXPECT_GT(std::abs(symlog_enc[141].item<double>() - 0.25), 0.01);
}

TEST(TwoHotRawTest, AnUncertainRareRewardDecodesToItsExpectation) {
  // A reward of 0.9 predicted with probability p (else 0): the raw mean is the expectation 0.9 p,
  // the symlog mean symexp(p * symlog(0.9)) ~ 0.64 p under-weights it; +10 goes to ~2.4 p.
  const double p = 0.01;
  for (double reward : {0.9, 10.0}) {
    for (TwoHotSpace space : {TwoHotSpace::kRaw, TwoHotSpace::kSymlog}) {
      torch::Tensor probs =
          p * TwoHotEncode(torch::tensor({reward}, Double()), space) +
          (1 - p) * TwoHotEncode(torch::tensor({0.0}, Double()), space);
      const double mean = TwoHotDecode(probs, space)[0].item<double>();
      if (space == TwoHotSpace::kRaw) {
        EXPECT_NEAR(mean, p * reward, 1e-9) << reward;
      } else {
        EXPECT_NEAR(mean, std::expm1(p * std::log1p(reward)), 1e-9) << reward;
        EXPECT_LT(mean, (reward < 1 ? 0.66 : 2.5) * p) << reward;
      }
    }
  }
  EXPECT_EQ(TwoHotMean(torch::zeros({3, 255}), TwoHotSpace::kRaw).abs().max().item<float>(), 0.0f);
}

TEST(TwoHotRawTest, MinimisingTheRawLossMovesTheRawMeanToTheTarget) {
  for (double target : {-25.0, 0.0, 0.4, 7.0, 3000.0}) {
    torch::Tensor logits = torch::zeros({1, 255}, torch::requires_grad());
    torch::optim::Adam adam({logits}, torch::optim::AdamOptions(0.3));
    torch::Tensor t = torch::tensor({static_cast<float>(target)});
    for (int i = 0; i < 300; ++i) {
      adam.zero_grad();
      TwoHotLoss(logits, t, TwoHotSpace::kRaw).sum().backward();
      adam.step();
    }
    EXPECT_NEAR(TwoHotMean(logits.detach(), TwoHotSpace::kRaw)[0].item<float>(), target,
                0.02 * std::abs(target) + 0.02)
        << target;
  }
}

TEST(TwoHotTest, LossGradientIsSoftmaxMinusTargetAndStopsAtTarget) {
  torch::manual_seed(1);
  torch::Tensor logits = torch::randn({3, 255}, Double()).requires_grad_(true);
  torch::Tensor target = torch::tensor({-2.0, 0.1, 30.0}, Double()).requires_grad_(true);
  torch::Tensor loss = TwoHotLoss(logits, target);
  ASSERT_EQ(loss.sizes(), (std::vector<int64_t>{3}));
  loss.sum().backward();
  torch::Tensor expected = torch::softmax(logits.detach(), -1) - TwoHotEncode(target.detach());
  EXPECT_TRUE(torch::allclose(logits.grad(), expected, 1e-12, 1e-12));
  EXPECT_FALSE(target.grad().defined());
}

TEST(TwoHotTest, LowPrecisionInputsAreComputedInFloat32AndShapesAreChecked) {
  torch::Tensor logits = torch::randn({2, 3, 255}).to(torch::kBFloat16);
  torch::Tensor target = torch::tensor({{1.0f, -2.0f, 300.0f}, {0.0f, 5.0f, -7.0f}});
  EXPECT_EQ(TwoHotMean(logits).scalar_type(), torch::kFloat);
  EXPECT_EQ(TwoHotLoss(logits, target).scalar_type(), torch::kFloat);
  EXPECT_EQ(TwoHotLoss(logits, target).sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(TwoHotEncode(target.to(torch::kBFloat16)).scalar_type(), torch::kFloat);
  EXPECT_THROW(TwoHotLoss(logits, target.narrow(1, 0, 2)), c10::Error);
  EXPECT_THROW(TwoHotMean(torch::zeros({2, 254})), c10::Error);
}

TEST(UnimixTest, MixesExactlyOnePercentUniform) {
  // softmax of these logits is exactly one-hot in double.
  torch::Tensor logits =
      torch::tensor({{0.0, -1e4, -1e4, -1e4}, {-1e4, -1e4, -1e4, 0.0}}, Double());
  torch::Tensor probs = UnimixProbs(logits, 0.01);
  EXPECT_NEAR(probs[0][0].item<double>(), 0.99 + 0.0025, 1e-15);
  EXPECT_NEAR(probs[0][1].item<double>(), 0.0025, 1e-15);
  EXPECT_NEAR(probs[1][3].item<double>(), 0.99 + 0.0025, 1e-15);
  torch::manual_seed(2);
  torch::Tensor random = torch::randn({5, 32, 16}) * 10;
  torch::Tensor mixed = UnimixProbs(random);
  EXPECT_TRUE(torch::allclose(mixed.sum(-1), torch::ones({5, 32}), 0, 1e-6));
  EXPECT_TRUE(torch::allclose(mixed, 0.99 * torch::softmax(random, -1) + 0.01 / 16, 0, 1e-7));
  EXPECT_GE(mixed.min().item<float>(), 0.01f / 16 - 1e-9f);
  // Logits of the mixture are its normalised log-probabilities.
  torch::Tensor mixed_logits = UnimixLogits(random);
  EXPECT_TRUE(torch::allclose(mixed_logits.exp(), mixed, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(torch::log_softmax(mixed_logits, -1), mixed_logits, 0, 1e-5));
  // unimix = 0 is the plain softmax.
  EXPECT_TRUE(torch::allclose(UnimixProbs(random, 0.0), torch::softmax(random, -1)));
  EXPECT_TRUE(torch::isfinite(UnimixLogits(logits.to(torch::kFloat) * 10, 0.0)).all().item<bool>());
}

TEST(CategoricalTest, FewClassesMatchLibTorchsSoftmaxInValueAndGradient) {
  // Below 8 classes the CPU path computes the (log-)softmax from its own ops, not LibTorch's
  // kernel; both sides of that switch must agree with it, also for logits far from zero.
  torch::manual_seed(3);
  for (int64_t k : {2, 4, 6, 7, 8, 16}) {
    SCOPED_TRACE(k);
    auto base = torch::randn({5, 3, k}) * 4.0;
    base.select(0, 0).add_(1e4);  // exp would overflow without the shift
    auto ours = base.clone().requires_grad_(true);
    auto ref = base.clone().requires_grad_(true);
    auto log_probs = UnimixLogits(ours, 0.0);
    auto expected = torch::log_softmax(ref, -1);
    EXPECT_TRUE(torch::allclose(log_probs, expected, 1e-5, 1e-5));
    auto weights = torch::randn({5, 3, k});
    (log_probs * weights).sum().backward();
    (expected * weights).sum().backward();
    EXPECT_TRUE(torch::allclose(ours.grad(), ref.grad(), 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(UnimixProbs(base, 0.0), torch::softmax(base, -1), 1e-6, 1e-7));
    auto other = torch::randn({5, 3, k});
    auto lhs = torch::log_softmax(base, -1), rhs = torch::log_softmax(other, -1);
    EXPECT_TRUE(torch::allclose(CategoricalKL(base, other), (lhs.exp() * (lhs - rhs)).sum({-2, -1}),
                                1e-4, 1e-5));
    EXPECT_TRUE(torch::allclose(CategoricalEntropy(base),
                                -(torch::softmax(base, -1) * torch::log_softmax(base, -1)).sum(-1),
                                1e-5, 1e-5));
  }
  // A masked class (-inf logit) gets -inf log-probability and zero probability, as in LibTorch.
  auto masked = torch::tensor({{0.5f, -std::numeric_limits<float>::infinity(), 1.0f, 2.0f}});
  auto log_probs = UnimixLogits(masked, 0.0);
  EXPECT_TRUE(torch::equal(torch::isinf(log_probs), torch::isinf(torch::log_softmax(masked, -1))));
  EXPECT_EQ(UnimixProbs(masked, 0.0)[0][1].item<float>(), 0.0f);
}

TEST(StraightThroughTest, ForwardIsOneHotBackwardIsProbsGradient) {
  torch::manual_seed(3);
  torch::Tensor logits = torch::randn({6, 4, 5}).requires_grad_(true);
  torch::Tensor probs = UnimixProbs(logits);
  torch::Tensor sample = SampleOneHotStraightThrough(probs);
  ASSERT_EQ(sample.sizes(), probs.sizes());
  // Exactly one 1 per row, every other entry exactly 0.
  EXPECT_TRUE(torch::equal(sample.detach().sum(-1), torch::ones({6, 4})));
  EXPECT_TRUE(((sample.detach() == 0) | (sample.detach() == 1)).all().item<bool>());
  // d(sum(sample * w))/d probs == w.
  torch::Tensor w = torch::randn({6, 4, 5});
  torch::Tensor probs_leaf = probs.detach().requires_grad_(true);
  torch::Tensor sample2 = SampleOneHotStraightThrough(probs_leaf);
  (sample2 * w).sum().backward();
  EXPECT_TRUE(torch::allclose(probs_leaf.grad(), w));
  // And the gradient reaches the logits through probs.
  (SampleOneHotStraightThrough(probs) * w).sum().backward();
  ASSERT_TRUE(logits.grad().defined());
  EXPECT_GT(logits.grad().abs().sum().item<float>(), 0.0f);
}

TEST(StraightThroughTest, SamplesFollowProbsAndGeneratorIsReproducible) {
  torch::Tensor probs = torch::tensor({0.1f, 0.2f, 0.7f, 0.0f}).expand({20000, 4}).contiguous();
  torch::Generator gen1 = at::detail::createCPUGenerator(123);
  torch::Tensor samples = SampleOneHotStraightThrough(probs, gen1);
  torch::Tensor freq = samples.mean(0);
  EXPECT_NEAR(freq[0].item<float>(), 0.1f, 0.015f);
  EXPECT_NEAR(freq[1].item<float>(), 0.2f, 0.015f);
  EXPECT_NEAR(freq[2].item<float>(), 0.7f, 0.015f);
  EXPECT_EQ(freq[3].item<float>(), 0.0f);
  torch::Generator gen2 = at::detail::createCPUGenerator(123);
  EXPECT_TRUE(torch::equal(SampleOneHotStraightThrough(probs, gen2), samples));
}

TEST(CategoricalTest, EntropyAndLogProb) {
  torch::Tensor uniform = torch::zeros({3, 8});
  EXPECT_TRUE(torch::allclose(CategoricalEntropy(uniform), torch::full({3}, std::log(8.0f))));
  torch::Tensor peaked = torch::tensor({{50.0f, 0.0f, 0.0f}});
  EXPECT_NEAR(CategoricalEntropy(peaked)[0].item<float>(), 0.0f, 1e-6f);
  torch::Tensor logits = torch::log(torch::tensor({{0.2, 0.3, 0.5}}, Double()));
  torch::Tensor onehot = torch::tensor({{0.0, 0.0, 1.0}}, Double());
  EXPECT_NEAR(CategoricalLogProb(logits, onehot)[0].item<double>(), std::log(0.5), 1e-12);
  EXPECT_NEAR(CategoricalEntropy(logits)[0].item<double>(),
              -(0.2 * std::log(0.2) + 0.3 * std::log(0.3) + 0.5 * std::log(0.5)), 1e-12);
}

TEST(CategoricalTest, KlIsSummedOverVariables) {
  // One variable: KL([.5,.5] || [.25,.75]) = .5 ln 2 + .5 ln(2/3).
  const double kl_one = 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0);
  torch::Tensor p = torch::log(torch::tensor({0.5, 0.5}, Double())).expand({2, 3, 2});
  torch::Tensor q = torch::log(torch::tensor({0.25, 0.75}, Double())).expand({2, 3, 2});
  torch::Tensor kl = CategoricalKL(p, q);
  ASSERT_EQ(kl.sizes(), (std::vector<int64_t>{2}));
  EXPECT_NEAR(kl[0].item<double>(), 3 * kl_one, 1e-12);
  EXPECT_NEAR(CategoricalKL(p, p)[1].item<double>(), 0.0, 1e-15);
  // Unnormalised logits give the same KL.
  EXPECT_NEAR(CategoricalKL(p + 5.0, q - 2.0)[0].item<double>(), 3 * kl_one, 1e-12);
}

TEST(DynRepLossTest, BelowFreeBitsLossIsExactlyFreeWithZeroGradient) {
  torch::manual_seed(4);
  torch::Tensor base = torch::randn({4, 32, 32});
  torch::Tensor post = (base + 0.01 * torch::randn({4, 32, 32})).requires_grad_(true);
  torch::Tensor prior = base.clone().requires_grad_(true);
  DynRepLoss loss = DynRepLosses(post, prior, 1.0);
  ASSERT_LT(CategoricalKL(post, prior).max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(loss.dyn, torch::ones({4})));
  EXPECT_TRUE(torch::equal(loss.rep, torch::ones({4})));
  (loss.dyn.sum() + loss.rep.sum()).backward();
  EXPECT_EQ(post.grad().abs().max().item<float>(), 0.0f);
  EXPECT_EQ(prior.grad().abs().max().item<float>(), 0.0f);
}

TEST(DynRepLossTest, DynTrainsOnlyThePriorAndRepOnlyThePosterior) {
  torch::manual_seed(5);
  torch::Tensor post = (3 * torch::randn({2, 32, 32})).requires_grad_(true);
  torch::Tensor prior = (3 * torch::randn({2, 32, 32})).requires_grad_(true);
  DynRepLoss loss = DynRepLosses(post, prior, 1.0);
  torch::Tensor kl = CategoricalKL(post, prior).detach();
  ASSERT_GT(kl.min().item<float>(), 1.0f);
  EXPECT_TRUE(torch::allclose(loss.dyn.detach(), kl));
  EXPECT_TRUE(torch::allclose(loss.rep.detach(), kl));

  loss.dyn.sum().backward(/*gradient=*/{}, /*retain_graph=*/true);
  EXPECT_FALSE(post.grad().defined() && post.grad().abs().max().item<float>() > 0);
  ASSERT_TRUE(prior.grad().defined());
  EXPECT_GT(prior.grad().abs().max().item<float>(), 0.0f);

  prior.mutable_grad() = torch::Tensor();
  loss.rep.sum().backward();
  ASSERT_TRUE(post.grad().defined());
  EXPECT_GT(post.grad().abs().max().item<float>(), 0.0f);
  EXPECT_FALSE(prior.grad().defined() && prior.grad().abs().max().item<float>() > 0);
}

}  // namespace
}  // namespace dreamfleet::dreamer
