// LaProp with adaptive gradient clipping; update rule in laprop.h.
#include "learner/laprop.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace dreamfleet::learner {

LaPropOptions::LaPropOptions(double lr) : lr_(lr) {}

bool operator==(const LaPropOptions& lhs, const LaPropOptions& rhs) {
  return lhs.lr() == rhs.lr() && lhs.beta1() == rhs.beta1() && lhs.beta2() == rhs.beta2() &&
         lhs.eps() == rhs.eps() && lhs.agc() == rhs.agc() && lhs.agc_pmin() == rhs.agc_pmin() &&
         lhs.warmup_steps() == rhs.warmup_steps();
}

void LaPropOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta1);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta2);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(agc);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(agc_pmin);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(warmup_steps);
}

void LaPropOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta1);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta2);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, agc);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, agc_pmin);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, warmup_steps);
}

bool operator==(const LaPropParamState& lhs, const LaPropParamState& rhs) {
  return lhs.step() == rhs.step() && torch::equal(lhs.exp_avg(), rhs.exp_avg()) &&
         torch::equal(lhs.exp_avg_sq(), rhs.exp_avg_sq());
}

void LaPropParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
}

void LaPropParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
}

namespace {

void CheckOptions(const LaPropOptions& o) {
  TORCH_CHECK(o.lr() >= 0, "Invalid LaProp learning rate: ", o.lr());
  TORCH_CHECK(o.beta1() >= 0 && o.beta1() < 1, "Invalid LaProp beta1: ", o.beta1());
  TORCH_CHECK(o.beta2() >= 0 && o.beta2() < 1, "Invalid LaProp beta2: ", o.beta2());
  TORCH_CHECK(o.eps() >= 0, "Invalid LaProp eps: ", o.eps());
  TORCH_CHECK(o.agc() >= 0, "Invalid LaProp agc: ", o.agc());
  TORCH_CHECK(o.agc_pmin() > 0, "Invalid LaProp agc_pmin: ", o.agc_pmin());
  TORCH_CHECK(o.warmup_steps() >= 0, "Invalid LaProp warmup_steps: ", o.warmup_steps());
}

}  // namespace

LaProp::LaProp(std::vector<torch::optim::OptimizerParamGroup> param_groups,
               LaPropOptions defaults)
    : torch::optim::Optimizer(std::move(param_groups),
                              std::make_unique<LaPropOptions>(defaults)) {
  CheckOptions(defaults);
}

LaProp::LaProp(std::vector<torch::Tensor> params, LaPropOptions defaults)
    : LaProp(std::vector<torch::optim::OptimizerParamGroup>{
                 torch::optim::OptimizerParamGroup(std::move(params))},
             defaults) {}

torch::Tensor AgcFactor(const torch::Tensor& param, const torch::Tensor& grad, double clip,
                        double pmin) {
  const torch::ScalarType compute =
      param.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  torch::Tensor grad_norm = grad.detach().to(compute).norm();
  torch::Tensor param_norm = param.detach().to(compute).norm();
  torch::Tensor upper = param_norm.clamp_min(pmin) * clip;
  return 1.0 / (grad_norm / upper).clamp_min(1.0);
}

torch::Tensor LaProp::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const LaPropOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      // State and arithmetic in float32 (float64 for double parameters).
      const torch::ScalarType compute =
          p.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
      torch::Tensor grad = p.grad().detach().to(compute);
      if (options.agc() > 0) {
        grad = grad * AgcFactor(p, grad, options.agc(), options.agc_pmin());
      }
      const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto fresh = std::make_unique<LaPropParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, p.options().dtype(compute)));
        fresh->exp_avg_sq(torch::zeros_like(p, p.options().dtype(compute)));
        it = state_.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<LaPropParamState&>(*it->second);
      const int64_t step = state.step() + 1;
      state.step(step);
      const double beta1 = options.beta1();
      const double beta2 = options.beta2();
      torch::Tensor& nu = state.exp_avg_sq();
      torch::Tensor& mu = state.exp_avg();
      // RMS normalisation first (debiased second moment) ...
      nu.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
      const double nu_correction = 1.0 - std::pow(beta2, static_cast<double>(step));
      torch::Tensor normalised = grad / ((nu / nu_correction).sqrt_().add_(options.eps()));
      // ... then momentum on the normalised gradient (debiased).
      mu.mul_(beta1).add_(normalised, 1.0 - beta1);
      const double mu_correction = 1.0 - std::pow(beta1, static_cast<double>(step));
      double lr = options.lr();
      if (options.warmup_steps() > 0) {
        lr *= std::min(1.0, static_cast<double>(step - 1) /
                                static_cast<double>(options.warmup_steps()));
      }
      if (lr == 0.0) continue;
      p.add_((mu * (-lr / mu_correction)).to(p.scalar_type()));
    }
  }
  return loss;
}

void LaProp::save(torch::serialize::OutputArchive& archive) const { serialize(*this, archive); }

void LaProp::load(torch::serialize::InputArchive& archive) {
  serialize(*this, archive);
  // LibTorch 1.13 restores only the per-parameter state; restore each group's
  // options too (as Python's load_state_dict does) so that a resumed run uses
  // exactly the hyperparameters it was saved with.
  torch::serialize::InputArchive groups_archive;
  archive.read("param_groups", groups_archive);
  std::vector<std::pair<std::vector<std::string>, std::unique_ptr<torch::optim::OptimizerOptions>>>
      saved_groups;
  torch::optim::detail::serialize<LaPropOptions>(groups_archive, saved_groups);
  TORCH_CHECK(saved_groups.size() == param_groups_.size(),
              "loaded LaProp state has a different number of parameter groups");
  for (size_t i = 0; i < saved_groups.size(); ++i) {
    param_groups_[i].set_options(std::move(saved_groups[i].second));
  }
}

}  // namespace dreamfleet::learner
