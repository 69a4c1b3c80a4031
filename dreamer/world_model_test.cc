// WorldModel: loss terms, KL balancing (dyn trains only the prior, rep only the posterior side)
// and free bits.
#include "dreamer/world_model.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "dreamer/test_util.h"

namespace dreamfleet::dreamer {
namespace {

using testing::DebugConfig;

double GradNorm(torch::nn::Module& m) {
  double total = 0;
  for (auto& p : m.parameters()) {
    if (p.grad().defined()) total += p.grad().square().sum().item<double>();
  }
  return total;
}

void ZeroGrads(torch::nn::Module& m) {
  for (auto& p : m.parameters()) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

TEST(WorldModelTest, LossHasAllTermsAndIsFinite) {
  auto c = DebugConfig(/*image=*/true, /*vector=*/true, /*text=*/true);
  torch::manual_seed(0);
  WorldModel wm(c);
  auto out = wm->Loss(RandomBatch(c, 2, 5, 1), std::nullopt);
  for (const char* k : {"image", "vector", "rew", "con", "dyn", "rep"}) {
    ASSERT_TRUE(out.losses.count(k)) << k;
    EXPECT_TRUE(std::isfinite(out.losses[k].item<double>())) << k;
  }
  EXPECT_EQ(out.feat.sizes().vec(), (std::vector<int64_t>{2, 5, c.feat_size()}));
  // Zero-initialised reward head: the first prediction is exactly 0.
  EXPECT_EQ(wm->RewardMean(out.feat).abs().max().item<float>(), 0.0f);
}

TEST(WorldModelTest, TheKlScalesAndTheTwohotSpaceReachTheLoss) {
  auto c = DebugConfig(/*image=*/false, /*vector=*/true);
  c.free_nats = 0.0f;  // the KL terms pass unclipped
  const Batch batch = RandomBatch(c, 2, 5, 1);
  // Same weights (same seed), same batch: the total moves by exactly the scaled KL terms.
  auto loss_with = [&](float dyn, float rep, const std::string& twohot) {
    AgentConfig scaled = c;
    scaled.scale_dyn = dyn;
    scaled.scale_rep = rep;
    scaled.twohot = twohot;
    torch::manual_seed(0);
    WorldModel wm(scaled);
    {
      // The reward head starts at zero (uniform bins, the same loss in both spaces): give it
      // weights so the two spaces' targets score differently.
      torch::NoGradGuard no_grad;
      for (auto& p : wm->named_parameters()) {
        if (p.key().rfind("reward.", 0) == 0) p.value().normal_(0, 0.5);
      }
    }
    return wm->Loss(batch, std::nullopt);
  };
  auto base = loss_with(0.5f, 0.1f, "symlog");
  const double dyn = base.losses["dyn"].item<double>(), rep = base.losses["rep"].item<double>();
  ASSERT_GT(dyn, 0.0);
  ASSERT_GT(rep, 0.0);
  EXPECT_NEAR(loss_with(1.0f, 0.1f, "symlog").loss.item<double>() - base.loss.item<double>(),
              0.5 * dyn, 1e-4 * (1 + dyn));
  EXPECT_NEAR(loss_with(0.5f, 0.6f, "symlog").loss.item<double>() - base.loss.item<double>(),
              0.5 * rep, 1e-4 * (1 + rep));
  // The reward loss is a twohot NLL in the configured space: the same logits score the same
  // rewards differently once the targets are interpolated in raw space.
  auto raw = loss_with(0.5f, 0.1f, "raw");
  EXPECT_NEAR(raw.losses["dyn"].item<double>(), dyn, 1e-6);
  EXPECT_NE(raw.losses["rew"].item<double>(), base.losses["rew"].item<double>());
}

TEST(WorldModelTest, TheBinaryVectorLossIsBernoulliCrossEntropyOnTheDecodersLogits) {
  auto c = DebugConfig(/*image=*/false, /*vector=*/true);
  c.vector_loss = "binary";
  torch::manual_seed(0);
  WorldModel wm(c);
  Batch batch = RandomBatch(c, 2, 5, 1);
  batch.vector = torch::bernoulli(torch::full_like(batch.vector, 0.3));
  auto out = wm->Loss(batch, std::nullopt);
  torch::NoGradGuard no_grad;
  auto logits = wm->DecodeVector(out.feat.reshape({2 * 5, -1})).reshape({2, 5, -1});
  // -log p(x) of a Bernoulli with these logits, summed over entries, averaged over steps.
  auto nll = (torch::nn::functional::softplus(logits) - batch.vector * logits).sum(-1).mean();
  EXPECT_NEAR(out.losses["vector"].item<double>(), nll.item<double>(), 1e-4);
  EXPECT_GT(out.losses["vector"].item<double>(), 0.0);
  // What the model draws is the probability of each entry.
  auto drawn = wm->Predict(out.feat, /*decode_observations=*/true).vector;
  EXPECT_TRUE(torch::allclose(drawn, torch::sigmoid(logits), 1e-5, 1e-6));

  // Entries outside [0, 1] are no 0/1 grid: the batch is refused, naming the setting and the
  // range; the same batch is fine for symlog_mse.
  ASSERT_TRUE(ValidateBatch(batch, c).ok()) << ValidateBatch(batch, c);
  for (float bad : {2.0f, -1.0f}) {
    Batch wrong = batch;
    wrong.vector = batch.vector.clone();
    wrong.vector.index_put_({1, 3, 0}, bad);
    absl::Status status = ValidateBatch(wrong, c);
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
    EXPECT_NE(
        status.message().find(absl::StrCat("1 of ", batch.vector.numel(), " entries outside")),
        std::string::npos)
        << status;
    EXPECT_NE(status.message().find(absl::StrCat(bad)), std::string::npos) << status;
    EXPECT_NE(status.message().find("learner.vector_loss binary"), std::string::npos) << status;
    AgentConfig mse = c;
    mse.vector_loss = "symlog_mse";
    EXPECT_TRUE(ValidateBatch(wrong, mse).ok()) << ValidateBatch(wrong, mse);
  }
}

TEST(WorldModelTest, BalancedWeightsMakeARareChannelWeighAsMuchAsACommonOne) {
  // A 2x2 grid of 3 channels over 2 steps (8 entries per channel): channel 0 occupied at 1 of its
  // 8 entries, channel 1 at 4, channel 2 at none. Flattened channel-last: entry = cell * 3 + c.
  auto target = torch::zeros({2, 12});
  target.index_put_({0, 0 * 3 + 0}, 1.0f);
  for (int cell : {0, 1, 2, 3}) target.index_put_({cell % 2, cell * 3 + 1}, 1.0f);
  auto weight = BalancedPositiveWeight(target.reshape({1, 2, 12}), 3);
  ASSERT_EQ(weight.sizes(), (std::vector<int64_t>{12}));
  for (int cell = 0; cell < 4; ++cell) {
    EXPECT_FLOAT_EQ(weight[cell * 3 + 0].item<float>(), 7.0f);    // (1 - 1/8) / (1/8)
    EXPECT_FLOAT_EQ(weight[cell * 3 + 1].item<float>(), 1.0f);    // half occupied: 1
    EXPECT_FLOAT_EQ(weight[cell * 3 + 2].item<float>(), 100.0f);  // empty: the cap
  }
  // A channel occupied at 1 entry in 1,000 is capped at 100; a mostly occupied one stays at 1.
  auto sparse = torch::zeros({1000, 2});
  sparse.index_put_({0, 0}, 1.0f);
  sparse.index_put_({torch::indexing::Slice(0, 900), 1}, 1.0f);
  auto capped = BalancedPositiveWeight(sparse, 2);
  EXPECT_FLOAT_EQ(capped[0].item<float>(), 100.0f);
  EXPECT_FLOAT_EQ(capped[1].item<float>(), 1.0f);
}

TEST(WorldModelTest, UnbalancedProbabilityUndoesTheWeightsPullOnTheDecoder) {
  // Channel 0 occupied at 1 of 10 cells (weight 9), channel 1 at 5 of 10 (weight 1).
  auto observed = torch::zeros({10, 2});
  observed.index_put_({0, 0}, 1.0f);
  observed.index_put_({torch::indexing::Slice(0, 5), 1}, 1.0f);
  // A cell occupied with chance q: the weighted cross-entropy's optimum is w q / (w q + 1 - q).
  auto q = torch::tensor({0.1f, 0.3f, 0.02f, 0.9f, 0.0f, 1.0f});  // 3 cells x 2 channels
  auto w = torch::tensor({9.0f, 1.0f}).repeat({3});
  auto decoded = w * q / (w * q + 1 - q);
  EXPECT_NEAR(decoded[0].item<float>(), 0.5f, 1e-6);  // channel 0's base rate painted at 0.5
  // The observed grids may hold other steps than the decoded ones (here 10 cells against 3).
  auto channel_weight = BalancedChannelWeight(observed.reshape({1, -1}), /*channels=*/2);
  EXPECT_TRUE(torch::allclose(channel_weight, torch::tensor({9.0f, 1.0f}))) << channel_weight;
  auto back = UnbalancedProbability(decoded.unsqueeze(0), channel_weight);
  EXPECT_TRUE(torch::allclose(back.squeeze(0), q, 1e-5, 1e-6)) << back;
}

TEST(WorldModelTest, TheBalancedBinaryLossWeighsEachChannelsOccupiedCellsByItsRarity) {
  auto c = testing::GridDebugConfig(/*side=*/3, /*channels=*/2);
  c.vector_loss = "binary";
  c.vector_balance = true;
  torch::manual_seed(0);
  WorldModel wm(c);
  Batch batch = RandomBatch(c, 2, 5, 1);
  // Channel 0 (every second entry) occupied at about 1 in 10 cells, channel 1 at about 1 in 2.
  auto rates = torch::tensor({0.1f, 0.5f}).repeat({9});
  batch.vector = torch::bernoulli(rates.expand_as(batch.vector).contiguous());
  auto out = wm->Loss(batch, std::nullopt);
  torch::NoGradGuard no_grad;
  auto logits = wm->DecodeVector(out.feat.reshape({2 * 5, -1})).reshape({2, 5, -1});
  auto x = batch.vector;
  auto share = x.reshape({-1, 9, 2}).mean(std::vector<int64_t>{0, 1});
  auto w = ((1 - share) / share).clamp(1.0, 100.0).repeat({9});
  // -[w x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))], summed over entries, averaged over steps.
  auto nll = (w * x * torch::nn::functional::softplus(-logits) +
              (1 - x) * torch::nn::functional::softplus(logits))
                 .sum(-1)
                 .mean();
  EXPECT_NEAR(out.losses["vector"].item<double>(), nll.item<double>(), 1e-4);
  EXPECT_GT(w[0].item<float>(), 2.0f);  // the rare channel's occupied cells weigh more
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
  // Only for the binary loss on a grid: anything else is refused naming the setting.
  AgentConfig mse = c;
  mse.vector_loss = "symlog_mse";
  EXPECT_NE(
      mse.Validate().message().find("learner.vector_balance needs learner.vector_loss binary"),
      std::string::npos)
      << mse.Validate();
  AgentConfig flat = DebugConfig(/*image=*/false, /*vector=*/true);
  flat.vector_loss = "binary";
  flat.vector_balance = true;
  EXPECT_NE(flat.Validate().message().find("no square grid vector"), std::string::npos)
      << flat.Validate();
}

TEST(WorldModelTest, AWindowStartsFromItsReplayContextUnlessItsFirstStepResets) {
  auto c = DebugConfig(/*image=*/false, /*vector=*/true);
  c.replay_context = 1;
  torch::manual_seed(0);
  WorldModel wm(c);
  wm->eval();
  Batch b = RandomBatch(c, 2, 5, 1);
  b.is_first.fill_(false);
  b.context_deter = torch::randn({2, c.deter});
  b.context_stoch = torch::zeros({2, c.stoch, c.classes});
  b.context_stoch.select(-1, 1).fill_(1.0f);
  b.context_action = torch::tensor({2, 0}, torch::kLong);
  ASSERT_TRUE(ValidateBatch(b, c).ok()) << ValidateBatch(b, c);
  torch::NoGradGuard no_grad;
  auto deter_of = [&](const Batch& batch) {
    torch::Generator gen = at::detail::createCPUGenerator(7);
    return wm->Loss(batch, gen).seq.deter;
  };
  const torch::Tensor with_context = deter_of(b);
  Batch zero = b;
  zero.context_deter = torch::zeros_like(b.context_deter);
  zero.context_stoch = torch::zeros_like(b.context_stoch);
  zero.context_action = torch::zeros_like(b.context_action);
  // The context reaches the first step's deterministic state...
  EXPECT_FALSE(torch::allclose(with_context.select(1, 0), deter_of(zero).select(1, 0)));
  // ...and a window whose first step is_first starts from the initial state instead.
  b.is_first.select(1, 0).fill_(true);
  zero.is_first.select(1, 0).fill_(true);
  EXPECT_TRUE(torch::allclose(deter_of(b), deter_of(zero)));
  // The batch must carry the context exactly when the agent uses it.
  Batch none = RandomBatch(c, 2, 5, 1);
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateBatch(none, c)));
  b.context_action = torch::tensor({2}, torch::kLong);
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateBatch(b, c)));
}

TEST(WorldModelTest, OpenLoopSeesOnlyTheContextAndFollowsTheWindowsActions) {
  auto c = DebugConfig(/*image=*/true, /*vector=*/true);
  torch::manual_seed(0);
  WorldModel wm(c);
  Batch batch = RandomBatch(c, 2, 6, 1);
  auto predict = [&](const Batch& b) {
    return wm->OpenLoop(b, /*context=*/2, at::detail::createCPUGenerator(7));
  };
  OpenLoopPrediction base = predict(batch);
  EXPECT_EQ(base.image.sizes().vec(), (std::vector<int64_t>{2, 6, 16, 16, 3}));
  EXPECT_EQ(base.image.dtype(), torch::kUInt8);
  EXPECT_EQ(base.vector.sizes().vec(), (std::vector<int64_t>{2, 6, 5}));
  EXPECT_EQ(base.reward.sizes().vec(), (std::vector<int64_t>{2, 6}));

  // Observations after the context never reach the prediction...
  Batch later = batch;
  later.image = batch.image.clone();
  later.image.narrow(1, 2, 4).fill_(255);
  later.vector = batch.vector.clone();
  later.vector.narrow(1, 2, 4).fill_(-3.0f);
  OpenLoopPrediction same = predict(later);
  EXPECT_TRUE(torch::equal(same.image, base.image));
  EXPECT_TRUE(torch::allclose(same.vector, base.vector));
  // ... an observation inside it does, and so does the action taken at its last step, from the
  // first imagined step on (never before it).
  Batch observed = batch;
  observed.vector = batch.vector.clone();
  observed.vector.select(1, 1).fill_(3.0f);
  EXPECT_FALSE(torch::allclose(predict(observed).vector, base.vector));
  Batch acted = batch;
  acted.action = batch.action.clone();
  acted.action.select(1, 1).add_(1).remainder_(c.num_actions);
  OpenLoopPrediction other = predict(acted);
  EXPECT_TRUE(torch::allclose(other.vector.narrow(1, 0, 2), base.vector.narrow(1, 0, 2)));
  EXPECT_FALSE(torch::allclose(other.vector.narrow(1, 2, 4), base.vector.narrow(1, 2, 4)));
}

// Posterior + ImagineActions + Predict, as the foresight report uses them: from every step t of
// a sequence, the posterior at t, then steps imagined with the sequence's own actions. An
// observation reaches only the rows from its step on, an action only the columns that imagine
// past it, and a reset cuts everything before it.
TEST(WorldModelTest, ImaginesFromEveryPosteriorStepWithTheSequencesActions) {
  auto c = DebugConfig(/*image=*/false, /*vector=*/true);
  torch::manual_seed(0);
  WorldModel wm(c);
  Batch batch = RandomBatch(c, 2, 6, 1);
  batch.is_first.fill_(false);
  constexpr int64_t kHorizon = 3;
  auto predict = [&](const Batch& b, bool decode = true) {
    torch::Generator gen = at::detail::createCPUGenerator(7);
    RssmSequence seq = wm->Posterior(b, 6, gen);
    EXPECT_EQ(seq.deter.size(1), 6);
    // Row b * 6 + t imagines with the actions at steps t, t + 1, ... (the last one past the end).
    const torch::Tensor t = torch::arange(6).view({1, 6, 1});
    const torch::Tensor at = (t + torch::arange(kHorizon).view({1, 1, kHorizon})).clamp_max(5);
    const torch::Tensor actions =
        b.action.unsqueeze(2).expand({2, 6, kHorizon}).gather(1, at.expand({2, 6, kHorizon}));
    Imagination imagined =
        wm->ImagineActions({seq.deter.reshape({12, -1}), seq.stoch.reshape({12, c.stoch, -1})},
                           actions.reshape({12, kHorizon}), gen);
    EXPECT_TRUE(torch::equal(imagined.deter.select(1, 0), seq.deter.reshape({12, -1})));
    return wm->Predict(RssmImpl::Feat(imagined.deter, imagined.stoch), decode);
  };
  OpenLoopPrediction base = predict(batch);
  EXPECT_EQ(base.vector.sizes().vec(), (std::vector<int64_t>{12, 4, 5}));
  EXPECT_EQ(base.reward.sizes().vec(), (std::vector<int64_t>{12, 4}));
  EXPECT_EQ(base.cont.sizes().vec(), (std::vector<int64_t>{12, 4}));
  EXPECT_FALSE(base.image.defined());
  EXPECT_FALSE(predict(batch, /*decode=*/false).vector.defined());

  // Observed in two parts, the second resuming from the state the first left, the posterior is
  // the one observed at once.
  {
    torch::Generator once_gen = at::detail::createCPUGenerator(3);
    RssmSequence once = wm->Posterior(batch, 6, once_gen);
    torch::Generator parts_gen = at::detail::createCPUGenerator(3);
    RssmSequence head = wm->Posterior(batch, 2, parts_gen);
    Batch tail = batch;
    tail.vector = batch.vector.narrow(1, 2, 4);
    tail.action = batch.action.narrow(1, 2, 4);
    tail.is_first = batch.is_first.narrow(1, 2, 4);
    RssmSequence rest = wm->Posterior(tail, 4, parts_gen, head.last, batch.action.select(1, 1));
    EXPECT_TRUE(torch::allclose(torch::cat({head.deter, rest.deter}, 1), once.deter));
    EXPECT_TRUE(torch::equal(torch::cat({head.stoch, rest.stoch}, 1), once.stoch));
    // Without the action taken before, it is refused.
    EXPECT_THROW(wm->Posterior(tail, 4, parts_gen, head.last), c10::Error);
  }
  auto rows = [](const OpenLoopPrediction& p, int64_t first, int64_t count) {
    return p.vector.narrow(0, first, count);
  };

  // Observations from step 2 of the first sequence on reach its rows 2-5, not rows 0-1.
  Batch observed = batch;
  observed.vector = batch.vector.clone();
  observed.vector.select(0, 0).narrow(0, 2, 4).mul_(-3.0f);
  OpenLoopPrediction seen = predict(observed);
  EXPECT_TRUE(torch::allclose(rows(seen, 0, 2), rows(base, 0, 2)));
  EXPECT_FALSE(torch::allclose(rows(seen, 2, 4), rows(base, 2, 4)));
  EXPECT_TRUE(torch::allclose(rows(seen, 6, 6), rows(base, 6, 6)));  // the other sequence

  // The action taken at step 2: row 2 imagines past it from column 1, row 1 from column 2, row 0
  // from column 3; the posteriors before step 3 never see it.
  Batch acted = batch;
  acted.action = batch.action.clone();
  acted.action.select(1, 2).add_(1).remainder_(c.num_actions);
  OpenLoopPrediction other = predict(acted);
  for (int64_t t = 0; t <= 2; ++t) {
    const int64_t first_changed = 2 - t + 1;
    EXPECT_TRUE(torch::allclose(other.vector[t].narrow(0, 0, first_changed),
                                base.vector[t].narrow(0, 0, first_changed)))
        << "row " << t;
    EXPECT_FALSE(torch::allclose(other.vector[t].narrow(0, first_changed, 4 - first_changed),
                                 base.vector[t].narrow(0, first_changed, 4 - first_changed)))
        << "row " << t;
  }
  EXPECT_FALSE(torch::allclose(other.vector[3][0], base.vector[3][0]));

  // A reset at step 3: rows 3-5 do not depend on what came before it.
  Batch reset = batch;
  reset.is_first = batch.is_first.clone();
  reset.is_first.select(1, 3).fill_(true);
  Batch reset_other = reset;
  reset_other.vector = reset.vector.clone();
  reset_other.vector.narrow(1, 0, 3).fill_(-2.0f);
  reset_other.action = reset.action.clone();
  reset_other.action.narrow(1, 0, 3).add_(1).remainder_(c.num_actions);
  EXPECT_TRUE(torch::allclose(rows(predict(reset_other), 3, 3), rows(predict(reset), 3, 3)));
  EXPECT_FALSE(torch::allclose(rows(predict(reset_other), 0, 3), rows(predict(reset), 0, 3)));
}

// A world that never changes: a few updates teach the model to imagine it, so its open-loop
// error falls below an untrained model's.
TEST(WorldModelTest, AFewUpdatesOnAStaticWorldImproveTheOpenLoopPrediction) {
  auto c = DebugConfig(/*image=*/true, /*vector=*/false);
  torch::manual_seed(0);
  WorldModel wm(c);
  Batch batch = RandomBatch(c, 3, 6, 2);
  auto pattern = torch::arange(16 * 16 * 3, torch::kInt64).remainder(7).mul(36).to(torch::kUInt8);
  batch.image = pattern.reshape({1, 1, 16, 16, 3}).expand({3, 6, 16, 16, 3}).clone();
  batch.reward.zero_();
  auto open_loop_error = [&] {
    OpenLoopPrediction p = wm->OpenLoop(batch, 2, at::detail::createCPUGenerator(3));
    return (p.image.narrow(1, 2, 4).to(torch::kFloat32) -
            batch.image.narrow(1, 2, 4).to(torch::kFloat32))
        .div(255.0)
        .square()
        .mean()
        .item<double>();
  };
  const double untrained = open_loop_error();
  torch::optim::Adam optimizer(wm->parameters(), torch::optim::AdamOptions(3e-3));
  for (int update = 0; update < 40; ++update) {
    optimizer.zero_grad();
    wm->Loss(batch, std::nullopt).loss.backward();
    optimizer.step();
  }
  const double trained = open_loop_error();
  EXPECT_LT(trained, 0.5 * untrained) << "untrained " << untrained << ", trained " << trained;
}

TEST(WorldModelTest, DynTrainsPriorAndRepTrainsPosterior) {
  auto c = DebugConfig(true, false);
  c.free_nats = 0.0f;  // no free bits: both terms have gradients
  torch::manual_seed(0);
  WorldModel wm(c);
  auto rssm = wm->rssm();
  auto* prior = rssm->named_children()["prior_logit"].get();
  auto* post = rssm->named_children()["obs_logit"].get();

  // One step per sequence: later priors also see earlier posterior samples through the GRU
  // (straight-through), which is intended; within a step the stop-gradients are exact.
  auto out = wm->Loss(RandomBatch(c, 4, 1, 1), std::nullopt);
  out.losses["dyn"].backward({}, /*retain_graph=*/true);
  EXPECT_GT(GradNorm(*prior), 0.0);
  EXPECT_EQ(GradNorm(*post), 0.0);
  ZeroGrads(*wm);
  out.losses["rep"].backward();
  EXPECT_EQ(GradNorm(*prior), 0.0);
  EXPECT_GT(GradNorm(*post), 0.0);
}

TEST(WorldModelTest, FreeBitsClipLossAndGradient) {
  auto c = DebugConfig(true, false);
  c.free_nats = 1000.0f;  // far above any KL of a fresh model
  torch::manual_seed(0);
  WorldModel wm(c);
  auto out = wm->Loss(RandomBatch(c, 2, 5, 1), std::nullopt);
  EXPECT_FLOAT_EQ(out.losses["dyn"].item<float>(), 1000.0f);
  EXPECT_FLOAT_EQ(out.losses["rep"].item<float>(), 1000.0f);
  (out.losses["dyn"] + out.losses["rep"]).backward();
  EXPECT_EQ(GradNorm(*wm->rssm()), 0.0);
}

}  // namespace
}  // namespace dreamfleet::dreamer
