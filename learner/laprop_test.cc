// Tests of the LaProp optimiser: a hand-computed two-step update, adaptive
// gradient clipping, warmup, param groups and bit-exact save/load.
#include "learner/laprop.h"

#include <gtest/gtest.h>

#include <sstream>

namespace dreamfleet::learner {
namespace {

torch::TensorOptions Double() { return torch::TensorOptions().dtype(torch::kDouble); }

void SetGrad(torch::Tensor& p, const torch::Tensor& g) { p.mutable_grad() = g.clone(); }

TEST(LaPropTest, TwoParameterUpdateMatchesHandComputation) {
  torch::Tensor a = torch::tensor({1.0}, Double()).requires_grad_(true);
  torch::Tensor b = torch::tensor({-2.0}, Double()).requires_grad_(true);
  LaProp opt({a, b}, LaPropOptions(0.1).agc(0.0));
  // Step 1, g = (0.5, -3): v = 0.001 g^2, debiased v = g^2, so the normalised
  // gradient is sign(g) = (1, -1); m = 0.1 sign(g), debiased m = sign(g);
  // p -= 0.1 sign(g): a = 0.9, b = -1.9.
  SetGrad(a, torch::tensor({0.5}, Double()));
  SetGrad(b, torch::tensor({-3.0}, Double()));
  opt.step();
  EXPECT_NEAR(a.item<double>(), 0.9, 1e-12);
  EXPECT_NEAR(b.item<double>(), -1.9, 1e-12);
  // Step 2, g = (0.5, 1):
  //  a: v = .999 * .00025 + .001 * .25 = .00049975; / (1 - .999^2 = .001999) = .25;
  //     u = .5 / .5 = 1; m = .9 * .1 + .1 * 1 = .19; / (1 - .81) = 1; a = .9 - .1 = .8
  //  b: v = .999 * .009 + .001 * 1 = .009991; / .001999 = 4.99799899...;
  //     u = 1 / sqrt(4.997999) = .44730311; m = -.09 + .044730311 = -.045269689;
  //     / .19 = -.23826152; b = -1.9 + .1 * .23826152 = -1.87617385
  SetGrad(a, torch::tensor({0.5}, Double()));
  SetGrad(b, torch::tensor({1.0}, Double()));
  opt.step();
  EXPECT_NEAR(a.item<double>(), 0.8, 1e-12);
  EXPECT_NEAR(b.item<double>(), -1.87617385, 1e-8);
  const auto& state = static_cast<const LaPropParamState&>(
      *opt.state().at(c10::guts::to_string(b.unsafeGetTensorImpl())));
  EXPECT_EQ(state.step(), 2);
  EXPECT_NEAR(state.exp_avg_sq().item<double>(), 0.009991, 1e-15);
  EXPECT_NEAR(state.exp_avg().item<double>(), -0.045269689, 1e-9);
}

TEST(LaPropTest, DefaultsFollowDreamerV3) {
  LaPropOptions options;
  EXPECT_EQ(options.lr(), 4e-5);
  EXPECT_EQ(options.beta1(), 0.9);
  EXPECT_EQ(options.beta2(), 0.999);
  EXPECT_EQ(options.eps(), 1e-20);
  EXPECT_EQ(options.agc(), 0.3);
  EXPECT_EQ(options.agc_pmin(), 1e-3);
}

TEST(LaPropTest, AgcFactorClipsLargeAndKeepsSmallGradients) {
  torch::Tensor p = torch::tensor({3.0, 4.0}, Double());  // ||p|| = 5, limit 0.3 * 5 = 1.5
  EXPECT_NEAR(AgcFactor(p, torch::tensor({30.0, 40.0}, Double()), 0.3, 1e-3).item<double>(),
              1.5 / 50.0, 1e-15);
  EXPECT_EQ(AgcFactor(p, torch::tensor({0.3, 0.4}, Double()), 0.3, 1e-3).item<double>(), 1.0);
  EXPECT_EQ(AgcFactor(p, torch::tensor({0.9, 1.2}, Double()), 0.3, 1e-3).item<double>(), 1.0);
  // A zero parameter is clipped against pmin: limit 0.3 * 1e-3.
  EXPECT_NEAR(AgcFactor(torch::zeros({2}, Double()), torch::tensor({3.0, 4.0}, Double()), 0.3,
                        1e-3).item<double>(),
              0.3e-3 / 5.0, 1e-15);
}

// Runs two LaProp instances, one with AGC and one without that is fed the
// gradient AGC should produce, and checks they agree.
TEST(LaPropTest, AgcClipsLargeGradientsInsideTheOptimizer) {
  torch::Tensor p1 = torch::tensor({3.0, 4.0}, Double()).requires_grad_(true);
  torch::Tensor p2 = p1.detach().clone().requires_grad_(true);
  LaProp clipped({p1}, LaPropOptions(0.01).agc(0.3));
  LaProp reference({p2}, LaPropOptions(0.01).agc(0.0));
  const std::vector<torch::Tensor> grads = {torch::tensor({0.1, -0.2}, Double()),
                                            torch::tensor({300.0, 400.0}, Double()),
                                            torch::tensor({-0.5, 0.25}, Double())};
  for (const torch::Tensor& g : grads) {
    const double factor = AgcFactor(p1.detach(), g, 0.3, 1e-3).item<double>();
    SetGrad(p1, g);
    SetGrad(p2, g * factor);
    clipped.step();
    reference.step();
    EXPECT_TRUE(torch::allclose(p1, p2, 0, 1e-14)) << p1 << p2;
  }
  // The big gradient really was clipped: without AGC the path differs.
  torch::Tensor p3 = torch::tensor({3.0, 4.0}, Double()).requires_grad_(true);
  LaProp unclipped({p3}, LaPropOptions(0.01).agc(0.0));
  for (const torch::Tensor& g : grads) {
    SetGrad(p3, g);
    unclipped.step();
  }
  EXPECT_FALSE(torch::allclose(p1, p3, 0, 1e-6));
}

TEST(LaPropTest, SmallGradientsAreUntouchedByAgc) {
  torch::manual_seed(0);
  torch::Tensor p1 = torch::randn({4, 5}).requires_grad_(true);
  torch::Tensor p2 = p1.detach().clone().requires_grad_(true);
  LaProp with_agc({p1}, LaPropOptions(1e-2));
  LaProp without_agc({p2}, LaPropOptions(1e-2).agc(0.0));
  for (int i = 0; i < 5; ++i) {
    torch::Tensor g = torch::randn({4, 5}) * 1e-3;
    SetGrad(p1, g);
    SetGrad(p2, g);
    with_agc.step();
    without_agc.step();
  }
  EXPECT_TRUE(torch::equal(p1, p2));
}

TEST(LaPropTest, WarmupRampsTheLearningRateFromZero) {
  torch::Tensor p = torch::tensor({1.0}, Double()).requires_grad_(true);
  LaProp opt({p}, LaPropOptions(0.1).agc(0.0).warmup_steps(2));
  const torch::Tensor g = torch::tensor({1.0}, Double());
  SetGrad(p, g);
  opt.step();  // lr * 0/2: no move.
  EXPECT_EQ(p.item<double>(), 1.0);
  SetGrad(p, g);
  opt.step();  // lr * 1/2 with a constant gradient: update 0.05.
  EXPECT_NEAR(p.item<double>(), 0.95, 1e-12);
  SetGrad(p, g);
  opt.step();  // full lr.
  EXPECT_NEAR(p.item<double>(), 0.85, 1e-12);
}

TEST(LaPropTest, SkipsParametersWithoutGradientsAndHonoursGroups) {
  torch::Tensor fast = torch::tensor({1.0}, Double()).requires_grad_(true);
  torch::Tensor slow = torch::tensor({1.0}, Double()).requires_grad_(true);
  torch::Tensor idle = torch::tensor({1.0}, Double()).requires_grad_(true);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{fast, idle},
                      std::make_unique<LaPropOptions>(LaPropOptions(0.1).agc(0.0)));
  groups.emplace_back(std::vector<torch::Tensor>{slow},
                      std::make_unique<LaPropOptions>(LaPropOptions(0.01).agc(0.0)));
  LaProp opt(std::move(groups));
  SetGrad(fast, torch::tensor({2.0}, Double()));
  SetGrad(slow, torch::tensor({2.0}, Double()));
  opt.step();
  EXPECT_NEAR(fast.item<double>(), 0.9, 1e-12);
  EXPECT_NEAR(slow.item<double>(), 0.99, 1e-12);
  EXPECT_EQ(idle.item<double>(), 1.0);
  EXPECT_EQ(opt.state().size(), 2u);
}

TEST(LaPropTest, SaveLoadResumesBitForBit) {
  torch::manual_seed(1);
  torch::nn::Linear model(4, 3);
  LaProp opt(model->parameters(), LaPropOptions(1e-2).warmup_steps(3));
  auto train_step = [](torch::nn::Linear& m, LaProp& o, const torch::Tensor& x) {
    o.zero_grad();
    m->forward(x).pow(2).sum().backward();
    o.step();
  };
  std::vector<torch::Tensor> inputs;
  for (int i = 0; i < 6; ++i) inputs.push_back(torch::randn({8, 4}));
  for (int i = 0; i < 3; ++i) train_step(model, opt, inputs[i]);

  std::stringstream stream;
  {
    torch::serialize::OutputArchive archive;
    opt.save(archive);
    archive.save_to(stream);
  }
  torch::nn::Linear copy(4, 3);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < copy->parameters().size(); ++i) {
      copy->parameters()[i].copy_(model->parameters()[i]);
    }
  }
  LaProp restored(copy->parameters(), LaPropOptions(123.0).agc(0.0).warmup_steps(0));
  {
    torch::serialize::InputArchive archive;
    archive.load_from(stream);
    restored.load(archive);
  }
  const auto& options = static_cast<const LaPropOptions&>(restored.param_groups()[0].options());
  EXPECT_EQ(options, static_cast<const LaPropOptions&>(opt.param_groups()[0].options()));
  for (int i = 3; i < 6; ++i) {
    train_step(model, opt, inputs[i]);
    train_step(copy, restored, inputs[i]);
  }
  for (size_t i = 0; i < model->parameters().size(); ++i) {
    EXPECT_TRUE(torch::equal(model->parameters()[i], copy->parameters()[i])) << i;
  }
}

TEST(LaPropTest, ConvergesOnAQuadratic) {
  torch::Tensor x = torch::tensor({5.0f, -3.0f}).requires_grad_(true);
  LaProp opt({x}, LaPropOptions(0.05));
  for (int i = 0; i < 400; ++i) {
    opt.zero_grad();
    (x - torch::tensor({1.0f, 2.0f})).pow(2).sum().backward();
    opt.step();
  }
  EXPECT_TRUE(torch::allclose(x, torch::tensor({1.0f, 2.0f}), 0, 0.1)) << x;
}

}  // namespace
}  // namespace dreamfleet::learner
