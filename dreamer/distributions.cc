// Implementation of the DreamerV3 distribution math; see distributions.h.
#include "dreamer/distributions.h"

#include <vector>

namespace dreamfleet::dreamer {
namespace {

// float32 for every floating dtype below float32 (bf16 under autocast), float64
// kept as is: twohot targets and expectations need the precision.
torch::Tensor ToComputeDtype(const torch::Tensor& x) {
  if (x.scalar_type() == torch::kDouble) return x;
  return x.to(torch::kFloat);
}

// LibTorch 1.13's CPU (log_)softmax over a last dimension shorter than one AVX2 vector (8 floats)
// takes a slow path: 4-7x slower than these few vectorised ops on 2,048-8,192 rows of 2-6 (the
// 1m preset's 32 latents of 4 classes and a 6-action policy; bench_learner measured the
// imagination at ~45% of an update). The max is detached: the shift changes neither value nor
// gradient.
constexpr int64_t kFastSoftmaxBelow = 8;

bool UseComposite(const torch::Tensor& x) {
  return x.is_cpu() && x.dim() >= 1 && x.size(-1) > 0 && x.size(-1) < kFastSoftmaxBelow;
}

torch::Tensor LogSoftmaxLastDim(const torch::Tensor& x) {
  if (!UseComposite(x)) return torch::log_softmax(x, -1);
  torch::Tensor shifted = x - x.amax(-1, /*keepdim=*/true).detach();
  return shifted - shifted.exp().sum(-1, /*keepdim=*/true).log();
}

torch::Tensor SoftmaxLastDim(const torch::Tensor& x) {
  if (!UseComposite(x)) return torch::softmax(x, -1);
  torch::Tensor e = (x - x.amax(-1, /*keepdim=*/true).detach()).exp();
  return e / e.sum(-1, /*keepdim=*/true);
}

// Sums (probs * bins) over the last dim from the middle bin outwards, pairing
// bin m-1-i with bin m+1+i, so that symmetric bins with uniform (or any
// mirror-symmetric) probabilities give exactly 0.
torch::Tensor SymmetricExpectation(const torch::Tensor& probs, const torch::Tensor& bins) {
  const int64_t n = bins.size(0);
  const int64_t m = (n - 1) / 2;          // n is odd: bins[m] == 0.
  torch::Tensor weighted = probs * bins;  // [..., n]
  torch::Tensor left = weighted.narrow(-1, 0, m).flip({-1});
  torch::Tensor right = weighted.narrow(-1, m + 1, m);
  return weighted.select(-1, m) + (left + right).sum(-1);
}

}  // namespace

torch::Tensor Symlog(const torch::Tensor& x) {
  return torch::sign(x) * torch::log1p(torch::abs(x));
}

torch::Tensor Symexp(const torch::Tensor& x) {
  return torch::sign(x) * torch::expm1(torch::abs(x));
}

torch::Tensor TwoHotBins(const torch::TensorOptions& options) {
  static_assert(kTwoHotBins % 2 == 1, "symmetric bins need an odd count");
  const torch::TensorOptions opts = options.has_dtype() ? options : options.dtype(torch::kFloat);
  // Built in double, mirrored so that bins[m + i] == -bins[m - i] exactly.
  torch::Tensor half = torch::linspace(kTwoHotLow, 0.0, (kTwoHotBins - 1) / 2 + 1,
                                       torch::TensorOptions().dtype(torch::kDouble));
  torch::Tensor bins = torch::cat({half, -half.narrow(0, 0, half.size(0) - 1).flip({0})});
  return bins.to(opts);
}

torch::Tensor TwoHotRawBins(const torch::TensorOptions& options) {
  const torch::TensorOptions opts = options.has_dtype() ? options : options.dtype(torch::kFloat);
  return Symexp(TwoHotBins(torch::TensorOptions().dtype(torch::kDouble))).to(opts);
}

TwoHotSpace TwoHotSpaceNamed(const std::string& name) {
  TORCH_CHECK(name == "symlog" || name == "raw", "twohot space must be symlog or raw, got ", name);
  return name == "raw" ? TwoHotSpace::kRaw : TwoHotSpace::kSymlog;
}

torch::Tensor TwoHotEncodeSymlog(const torch::Tensor& symlog_values) {
  torch::Tensor x = ToComputeDtype(symlog_values.detach());
  const double step = (kTwoHotHigh - kTwoHotLow) / static_cast<double>(kTwoHotBins - 1);
  // Fractional bin position; at/below the first bin -> 0, at/above the last -> n-1.
  torch::Tensor pos = ((x - kTwoHotLow) / step).clamp(0.0, static_cast<double>(kTwoHotBins - 1));
  // A NaN value gets a valid index and NaN weights (a NaN loss the update skips), not an
  // out-of-range index.
  torch::Tensor below =
      torch::nan_to_num(pos, 0.0).floor().to(torch::kLong).clamp(0, kTwoHotBins - 1);
  torch::Tensor above = (below + 1).clamp_max(kTwoHotBins - 1);
  torch::Tensor weight_above = (pos - below.to(pos.scalar_type())).clamp(0.0, 1.0);
  torch::Tensor weight_below = 1.0 - weight_above;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.push_back(kTwoHotBins);
  torch::Tensor out = torch::zeros(shape, x.options());
  out.scatter_add_(-1, below.unsqueeze(-1), weight_below.unsqueeze(-1));
  out.scatter_add_(-1, above.unsqueeze(-1), weight_above.unsqueeze(-1));
  return out;
}

namespace {

// kRaw encoding: the bracketing bins come from the symlog position (symlog is monotonic, so they
// are the raw bins around the value), the weights from the raw distances.
torch::Tensor TwoHotEncodeRaw(const torch::Tensor& values) {
  torch::Tensor x = values.detach().to(torch::kDouble);
  const double step = (kTwoHotHigh - kTwoHotLow) / static_cast<double>(kTwoHotBins - 1);
  torch::Tensor pos = ((Symlog(x) - kTwoHotLow) / step).clamp(0.0, kTwoHotBins - 1.0);
  // NaN: a valid index, NaN weights (see TwoHotEncodeSymlog).
  torch::Tensor below =
      torch::nan_to_num(pos, 0.0).floor().to(torch::kLong).clamp(0, kTwoHotBins - 2);
  torch::Tensor above = below + 1;
  torch::Tensor bins = TwoHotRawBins(x.options());
  torch::Tensor low = bins.index_select(0, below.flatten()).view_as(x);
  torch::Tensor high = bins.index_select(0, above.flatten()).view_as(x);
  // Beyond the outer bins the weight clamps onto the edge bin.
  torch::Tensor weight_above = ((x - low) / (high - low)).clamp(0.0, 1.0);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.push_back(kTwoHotBins);
  torch::Tensor out = torch::zeros(shape, x.options());
  out.scatter_add_(-1, below.unsqueeze(-1), (1.0 - weight_above).unsqueeze(-1));
  out.scatter_add_(-1, above.unsqueeze(-1), weight_above.unsqueeze(-1));
  return out.to(ToComputeDtype(values).scalar_type());
}

}  // namespace

torch::Tensor TwoHotEncode(const torch::Tensor& values, TwoHotSpace space) {
  if (space == TwoHotSpace::kRaw) return TwoHotEncodeRaw(values);
  return TwoHotEncodeSymlog(Symlog(ToComputeDtype(values.detach())));
}

torch::Tensor TwoHotDecode(const torch::Tensor& probs, TwoHotSpace space) {
  TORCH_CHECK(probs.dim() >= 1 && probs.size(-1) == kTwoHotBins, "TwoHotDecode expects [..., ",
              kTwoHotBins, "], got ", probs.sizes());
  torch::Tensor p = ToComputeDtype(probs);
  if (space == TwoHotSpace::kRaw) return SymmetricExpectation(p, TwoHotRawBins(p.options()));
  return Symexp(SymmetricExpectation(p, TwoHotBins(p.options())));
}

torch::Tensor TwoHotMean(const torch::Tensor& logits, TwoHotSpace space) {
  TORCH_CHECK(logits.dim() >= 1 && logits.size(-1) == kTwoHotBins, "TwoHotMean expects [..., ",
              kTwoHotBins, "], got ", logits.sizes());
  return TwoHotDecode(SoftmaxLastDim(ToComputeDtype(logits)), space);
}

torch::Tensor TwoHotLoss(const torch::Tensor& logits, const torch::Tensor& target,
                         TwoHotSpace space) {
  TORCH_CHECK(logits.dim() >= 1 && logits.size(-1) == kTwoHotBins,
              "TwoHotLoss expects logits [..., ", kTwoHotBins, "], got ", logits.sizes());
  TORCH_CHECK(logits.sizes().slice(0, logits.dim() - 1) == target.sizes(),
              "TwoHotLoss target shape ", target.sizes(), " does not match logits ",
              logits.sizes());
  torch::Tensor log_probs = LogSoftmaxLastDim(ToComputeDtype(logits));
  torch::Tensor encoded = TwoHotEncode(target, space).to(log_probs.scalar_type());
  return -(encoded * log_probs).sum(-1);
}

torch::Tensor UnimixProbs(const torch::Tensor& logits, double unimix) {
  torch::Tensor probs = SoftmaxLastDim(ToComputeDtype(logits));
  if (unimix <= 0.0) return probs;
  const double uniform = unimix / static_cast<double>(logits.size(-1));
  return probs * (1.0 - unimix) + uniform;
}

torch::Tensor UnimixLogits(const torch::Tensor& logits, double unimix) {
  if (unimix <= 0.0) return LogSoftmaxLastDim(ToComputeDtype(logits));
  return torch::log(UnimixProbs(logits, unimix));
}

torch::Tensor SampleOneHotStraightThrough(const torch::Tensor& probs,
                                          std::optional<torch::Generator> generator) {
  TORCH_CHECK(probs.dim() >= 1, "SampleOneHotStraightThrough needs [..., K], got ", probs.sizes());
  const int64_t classes = probs.size(-1);
  torch::Tensor flat = probs.detach().reshape({-1, classes}).to(torch::kFloat);
  c10::optional<at::Generator> gen;
  if (generator.has_value()) gen = *generator;
  // One draw: with or without replacement is the same distribution, and with is ~2x faster.
  torch::Tensor index = torch::multinomial(flat, 1, /*replacement=*/true, gen);  // [N, 1]
  torch::Tensor onehot = torch::zeros_like(flat).scatter_(1, index, 1.0);
  onehot = onehot.reshape(probs.sizes()).to(probs.scalar_type());
  // onehot + (probs - sg(probs)): the bracket is exactly 0 in the forward pass.
  return onehot + (probs - probs.detach());
}

torch::Tensor CategoricalEntropy(const torch::Tensor& logits) {
  torch::Tensor log_probs = LogSoftmaxLastDim(ToComputeDtype(logits));
  return -(log_probs.exp() * log_probs).sum(-1);
}

torch::Tensor CategoricalLogProb(const torch::Tensor& logits, const torch::Tensor& onehot) {
  torch::Tensor log_probs = LogSoftmaxLastDim(ToComputeDtype(logits));
  return (log_probs * onehot.to(log_probs.scalar_type())).sum(-1);
}

torch::Tensor CategoricalKL(const torch::Tensor& lhs_logits, const torch::Tensor& rhs_logits) {
  TORCH_CHECK(lhs_logits.dim() >= 2 && lhs_logits.sizes() == rhs_logits.sizes(),
              "CategoricalKL expects equal shapes [..., V, K], got ", lhs_logits.sizes(), " and ",
              rhs_logits.sizes());
  torch::Tensor lhs = LogSoftmaxLastDim(ToComputeDtype(lhs_logits));
  torch::Tensor rhs = LogSoftmaxLastDim(ToComputeDtype(rhs_logits));
  return (lhs.exp() * (lhs - rhs)).sum({-2, -1});
}

DynRepLoss DynRepLosses(const torch::Tensor& post_logits, const torch::Tensor& prior_logits,
                        double free_nats) {
  DynRepLoss out;
  out.dyn = CategoricalKL(post_logits.detach(), prior_logits).clamp_min(free_nats);
  out.rep = CategoricalKL(post_logits, prior_logits.detach()).clamp_min(free_nats);
  return out;
}

}  // namespace dreamfleet::dreamer
