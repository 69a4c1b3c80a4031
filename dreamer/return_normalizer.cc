// Percentile return normaliser; see return_normalizer.h.
//
// Matches danijar/dreamerv3's Normalize(impl='perc') with the retnorm config
// {rate: 0.01, limit: 1.0, perclo: 5, perchi: 95, debias: False}: the EMAs
// start at 0 and move by rate = 1 - decay towards each batch's percentiles
// (numpy 'linear' interpolation); scale = max(limit, hi - lo). With debias the
// EMAs are divided by max(rate, corr), corr being the EMA of the constant 1,
// exactly as the official code does for its debiased normalisers.
#include "dreamer/return_normalizer.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace dreamfleet::dreamer {
namespace {

// Percentile q in [0, 100] of a sorted 1-D tensor, numpy 'linear' method.
torch::Tensor SortedPercentile(const torch::Tensor& sorted, double q) {
  const int64_t n = sorted.size(0);
  const double position = q / 100.0 * static_cast<double>(n - 1);
  const int64_t lo = static_cast<int64_t>(std::floor(position));
  const int64_t hi = std::min<int64_t>(lo + 1, n - 1);
  const double frac = position - static_cast<double>(lo);
  torch::Tensor a = sorted.select(0, lo);
  torch::Tensor b = sorted.select(0, hi);
  return a + (b - a) * frac;
}

}  // namespace

ReturnNormalizer::ReturnNormalizer(ReturnNormalizerOptions options, torch::Device device)
    : options_(options), device_(device) {
  TORCH_CHECK(options_.decay >= 0.0 && options_.decay < 1.0, "decay must be in [0, 1), got ",
              options_.decay);
  TORCH_CHECK(options_.low_percentile >= 0.0 &&
                  options_.low_percentile < options_.high_percentile &&
                  options_.high_percentile <= 100.0,
              "percentiles must satisfy 0 <= low < high <= 100, got ", options_.low_percentile,
              " and ", options_.high_percentile);
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device_);
  low_ = torch::zeros({}, opts);
  high_ = torch::zeros({}, opts);
  corr_ = torch::zeros({}, opts);
}

void ReturnNormalizer::Update(const torch::Tensor& returns) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(returns.numel() > 0, "ReturnNormalizer::Update needs at least one return");
  torch::Tensor sorted = std::get<0>(returns.detach().to(device_, torch::kFloat).flatten().sort());
  const double rate = 1.0 - options_.decay;
  low_ = low_ * options_.decay + SortedPercentile(sorted, options_.low_percentile) * rate;
  high_ = high_ * options_.decay + SortedPercentile(sorted, options_.high_percentile) * rate;
  corr_ = corr_ * options_.decay + rate;
  ++updates_;
}

torch::Tensor ReturnNormalizer::Correction() const {
  if (!options_.debias) return torch::ones({}, low_.options());
  return 1.0 / corr_.clamp_min(1.0 - options_.decay);
}

torch::Tensor ReturnNormalizer::Offset() const { return low_ * Correction(); }

torch::Tensor ReturnNormalizer::Scale() const {
  torch::Tensor corr = Correction();
  return (high_ * corr - low_ * corr).clamp_min(options_.min_scale);
}

torch::Tensor ReturnNormalizer::Normalize(const torch::Tensor& x) const {
  torch::Tensor offset = Offset().to(x.device());
  torch::Tensor scale = Scale().to(x.device());
  return ((x - offset) / scale).to(x.scalar_type());
}

std::map<std::string, torch::Tensor> ReturnNormalizer::Save() const {
  return {{"low", low_.cpu().clone()},
          {"high", high_.cpu().clone()},
          {"corr", corr_.cpu().clone()},
          {"updates", torch::tensor(updates_, torch::kLong)}};
}

absl::Status ReturnNormalizer::Load(const std::map<std::string, torch::Tensor>& state) {
  torch::Tensor loaded[3];
  const char* keys[3] = {"low", "high", "corr"};
  for (int i = 0; i < 3; ++i) {
    auto it = state.find(keys[i]);
    if (it == state.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("return normaliser state is missing \"", keys[i], "\""));
    }
    if (!it->second.defined() || it->second.numel() != 1 ||
        it->second.scalar_type() != torch::kFloat) {
      return absl::InvalidArgumentError(
          absl::StrCat("return normaliser state \"", keys[i], "\" must be one float32 value"));
    }
    loaded[i] = it->second.reshape({}).to(device_).clone();
  }
  auto it = state.find("updates");
  if (it == state.end() || !it->second.defined() || it->second.numel() != 1 ||
      it->second.scalar_type() != torch::kLong) {
    return absl::InvalidArgumentError(
        "return normaliser state \"updates\" is missing or not one int64 value");
  }
  low_ = loaded[0];
  high_ = loaded[1];
  corr_ = loaded[2];
  updates_ = it->second.item<int64_t>();
  return absl::OkStatus();
}

}  // namespace dreamfleet::dreamer
