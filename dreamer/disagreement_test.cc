// Disagreement: the ensemble learns transitions it is shown and then disagrees less about them
// than about transitions it has not seen; episode starts are not transitions; the intrinsic
// reward is zero on average.
#include "dreamer/disagreement.h"

#include <gtest/gtest.h>

#include "dreamer/test_util.h"

namespace dreamfleet::dreamer {
namespace {

using testing::DebugConfig;

AgentConfig EnsembleConfig() {
  auto c = DebugConfig(false, true);
  c.disag_scale = 1.0f;
  c.disag_models = 5;
  return c;
}

// A window whose next stochastic state is a fixed function of the features and the action.
struct Window {
  torch::Tensor feat, action, stoch, is_first;
};

Window MakeWindow(const AgentConfig& c, int64_t b, int64_t t, double offset, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  Window w;
  // Shifted by +-offset per feature (a fixed random pattern): another region of feature space,
  // not just a common offset that the members' normalisation would take out.
  auto pattern = torch::randint(0, 2, {c.feat_size()}, gen).to(torch::kFloat32) * 2 - 1;
  w.feat = torch::randn({b, t, c.feat_size()}, gen) + offset * pattern;
  w.action = torch::randint(0, c.num_actions, {b, t}, gen, torch::TensorOptions(torch::kLong));
  // Class of each stochastic variable: the sign pattern of the features shifted by the action.
  auto cls = ((w.feat.narrow(-1, 0, c.stoch) > 0).to(torch::kLong) + w.action.unsqueeze(-1))
                 .remainder(c.classes);
  w.stoch = torch::one_hot(cls, c.classes).to(torch::kFloat32);  // [B, T, S, C]
  w.is_first = torch::zeros({b, t}, torch::kBool);
  return w;
}

TEST(DisagreementTest, MembersStartApartAndAgreeOnWhatTheyLearned) {
  auto c = EnsembleConfig();
  torch::manual_seed(3);
  Disagreement ensemble(c);
  ASSERT_EQ(ensemble->size(), 5);
  auto seen = MakeWindow(c, 8, 10, 0.0, 1);
  auto unseen = MakeWindow(c, 8, 10, 3.0, 2);  // features far from the training ones
  auto disagree = [&](const Window& w) {
    torch::NoGradGuard no_grad;
    return ensemble->Disagree(w.feat, w.action).mean().item<double>();
  };
  const double seen_before = disagree(seen);
  EXPECT_GT(seen_before, 0.0);  // random initial weights: the members differ

  torch::optim::Adam opt(ensemble->parameters(), torch::optim::AdamOptions(3e-3));
  double first_loss = 0, last_loss = 0;
  for (int i = 0; i < 300; ++i) {
    opt.zero_grad();
    auto loss = ensemble->Fit(seen.feat, seen.action, seen.stoch, seen.is_first).loss;
    loss.backward();
    opt.step();
    (i == 0 ? first_loss : last_loss) = loss.item<double>();
  }
  EXPECT_LT(last_loss, 0.5 * first_loss);
  const double seen_after = disagree(seen);
  const double unseen_after = disagree(unseen);
  EXPECT_LT(seen_after, 0.5 * seen_before);
  EXPECT_GT(unseen_after, 2.0 * seen_after) << "seen " << seen_after << " unseen " << unseen_after;
}

TEST(DisagreementTest, TransitionsIntoAnEpisodesFirstStepAreNotLearned) {
  auto c = EnsembleConfig();
  torch::manual_seed(4);
  Disagreement ensemble(c);
  auto w = MakeWindow(c, 2, 6, 0.0, 5);
  w.is_first.index_put_({1, 3}, true);
  auto before = ensemble->Fit(w.feat, w.action, w.stoch, w.is_first).loss.item<double>();
  // Another target at the first step of the new episode changes nothing...
  auto changed = w.stoch.clone();
  changed.index_put_({1, 3}, 1.0);
  EXPECT_DOUBLE_EQ(ensemble->Fit(w.feat, w.action, changed, w.is_first).loss.item<double>(),
                   before);
  // ...while the same change one step later does.
  auto later = w.stoch.clone();
  later.index_put_({1, 4}, 1.0);
  EXPECT_NE(ensemble->Fit(w.feat, w.action, later, w.is_first).loss.item<double>(), before);
  // The features are read detached: the ensemble never trains what produced them.
  auto feat = w.feat.clone().requires_grad_(true);
  ensemble->Fit(feat, w.action, w.stoch, w.is_first).loss.backward();
  EXPECT_FALSE(feat.grad().defined());
}

// The batched network is K separate MLPs: each member, run as the Mlp it is, gives the same
// predictions (every weight, bias, norm scale and shift random, so a member reading another's
// slice would show); the fit's disagreement and loss are those of these members.
void ExpectMembersAreSeparateMlps(const std::string& norm, int layers) {
  SCOPED_TRACE(norm + " norm, " + std::to_string(layers) + " hidden layers");
  auto c = EnsembleConfig();
  c.enc_layers = layers;
  c.norm = norm;
  torch::manual_seed(8);
  Disagreement ensemble(c);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : ensemble->parameters()) p.copy_(torch::rand_like(p) + 0.5);
  }
  auto w = MakeWindow(c, 2, 5, 0.0, 9);
  w.is_first.index_put_({1, 2}, true);
  torch::NoGradGuard no_grad;
  auto feat = w.feat.narrow(1, 0, 4).reshape({8, -1});
  auto onehot = torch::one_hot(w.action.narrow(1, 0, 4).reshape({8}), c.num_actions);
  auto x = torch::cat({feat, onehot.to(torch::kFloat32)}, -1);
  std::vector<torch::Tensor> member_preds;
  for (int64_t k = 0; k < ensemble->size(); ++k) {
    member_preds.push_back(ensemble->member(k)->forward(x));
  }
  auto preds = torch::stack(member_preds, 0);  // [K, 8, S*C]
  auto spread = (preds - preds.mean(0, true)).pow(2).mean(0).sqrt().mean(-1).view({2, 4});
  auto fit = ensemble->Fit(w.feat, w.action, w.stoch, w.is_first);
  EXPECT_TRUE(torch::allclose(fit.disag, spread, 1e-4, 1e-5)) << fit.disag << spread;
  auto disagree = ensemble->Disagree(w.feat.narrow(1, 0, 4), w.action.narrow(1, 0, 4));
  EXPECT_TRUE(torch::allclose(disagree, spread, 1e-4, 1e-5)) << disagree << spread;
  EXPECT_EQ(fit.keep.index({1, 1}).item<float>(), 0.0f);  // the transition into step 2
  EXPECT_EQ(fit.keep.sum().item<float>(), 7.0f);
  auto target = w.stoch.narrow(1, 1, 4).reshape({8, -1});
  auto keep = fit.keep.reshape({1, 8, 1});
  auto loss = ((preds - target).pow(2) * keep).sum() / (7.0 * target.size(-1) * c.disag_models);
  EXPECT_NEAR(fit.loss.item<double>(), loss.item<double>(), 1e-4 * loss.item<double>());
}

TEST(DisagreementTest, MembersAreSeparateMlps) {
  ExpectMembersAreSeparateMlps("rms", 2);
  ExpectMembersAreSeparateMlps("layer", 2);
  ExpectMembersAreSeparateMlps("rms", 0);
}

// Each member keeps parameter tensors of its own (so the optimiser's clipping, per tensor, treats
// the members as separate networks) and gradients reach each member's own.
TEST(DisagreementTest, EachMemberOwnsItsParameters) {
  auto c = EnsembleConfig();
  torch::manual_seed(10);
  Disagreement ensemble(c);
  const size_t per_member = ensemble->member(0)->parameters().size();
  EXPECT_EQ(ensemble->parameters().size(), per_member * ensemble->size());
  auto w = MakeWindow(c, 2, 5, 0.0, 11);
  ensemble->Fit(w.feat, w.action, w.stoch, w.is_first).loss.backward();
  for (int64_t k = 0; k < ensemble->size(); ++k) {
    for (const auto& p : ensemble->member(k)->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << "member " << k << " " << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0)
          << "member " << k << " " << p.key();
    }
  }
}

TEST(DisagreementTest, IntrinsicRewardIsZeroOnAverageAndScaled) {
  auto d = torch::tensor({0.1, 0.2, 0.3, 0.6});
  auto r = IntrinsicReward(d, d.mean(), 0.5);
  EXPECT_NEAR(r.mean().item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(r[3].item<double>(), 0.5 * (0.6 - 0.3) / 0.3, 1e-6);
  EXPECT_LT(r[0].item<double>(), 0.0);
  // A zero mean (an ensemble that agrees everywhere) stays finite.
  auto z = IntrinsicReward(torch::zeros({3}), torch::zeros({}), 1.0);
  EXPECT_TRUE(torch::isfinite(z).all().item<bool>());
}

TEST(DisagreementTest, ConfigRefusesAnEnsembleTooSmallToDisagree) {
  auto c = EnsembleConfig();
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
  c.disag_models = 1;
  EXPECT_EQ(c.Validate().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.Validate().message().find("2 to 64"), std::string::npos) << c.Validate();
  c.disag_scale = 0;  // off: the size does not matter
  EXPECT_TRUE(c.Validate().ok());
  c.disag_scale = -1;
  EXPECT_EQ(c.Validate().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dreamfleet::dreamer
