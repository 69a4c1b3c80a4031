// LaProp optimiser with adaptive gradient clipping, as DreamerV3 trains all of
// its networks (danijar/dreamerv3 embodied/jax/opt.py: clip_by_agc ->
// scale_by_rms -> scale_by_momentum -> learning rate with linear warmup).
// Data flow: the trainer calls loss.backward(), then step(); for every
// parameter p with gradient g, step t (1-based, per parameter):
//   g  <- g / max(1, ||g|| / (agc * max(agc_pmin, ||p||)))   (AGC, whole tensor)
//   v  <- beta2 * v + (1 - beta2) * g^2
//   u  <- g / (sqrt(v / (1 - beta2^t)) + eps)                 (normalise first)
//   m  <- beta1 * m + (1 - beta1) * u                          (then momentum)
//   p  <- p - lr_t * m / (1 - beta1^t)
//   lr_t = lr * min(1, (t - 1) / warmup_steps) when warmup_steps > 0, else lr
//          (optax.linear_schedule(0, lr, warmup) evaluated at count t - 1,
//          so the very first update is zero when warmup is on).
// The norms are the L2 norm of the whole parameter tensor, exactly like the
// official clip_by_agc (not the per-row "unit-wise" variant of the AGC paper).
// v and m are kept in float32 whatever the parameter dtype (float64 for
// double parameters).
//
// Design choice: a torch::optim::Optimizer subclass (1.13 API) so that the
// trainer can treat it like Adam: param groups with their own options,
// zero_grad(), and save()/load() through torch::serialize archives. The
// per-parameter state (step, exp_avg_sq, exp_avg) and every group's options
// round-trip through save()/load() exactly (load() replaces the options the
// optimizer was constructed with, like Python's load_state_dict), so a resumed
// run continues bit-for-bit.
#ifndef DREAMFLEET_LEARNER_LAPROP_H_
#define DREAMFLEET_LEARNER_LAPROP_H_

#include <torch/torch.h>

#include <memory>
#include <vector>

namespace dreamfleet::learner {

struct LaPropOptions : public torch::optim::OptimizerCloneableOptions<LaPropOptions> {
  LaPropOptions(double lr = 4e-5);  // NOLINT(runtime/explicit): mirrors AdamOptions.
  TORCH_ARG(double, lr) = 4e-5;
  TORCH_ARG(double, beta1) = 0.9;     // Momentum decay.
  TORCH_ARG(double, beta2) = 0.999;   // Squared-gradient (RMS) decay.
  TORCH_ARG(double, eps) = 1e-20;
  TORCH_ARG(double, agc) = 0.3;       // 0 disables clipping.
  TORCH_ARG(double, agc_pmin) = 1e-3;
  TORCH_ARG(int64_t, warmup_steps) = 0;  // Official default 1000; 0 = constant lr.

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const LaPropOptions& lhs, const LaPropOptions& rhs);
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

struct LaPropParamState
    : public torch::optim::OptimizerCloneableParamState<LaPropParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg);     // m, float32 (float64 for double params).
  TORCH_ARG(torch::Tensor, exp_avg_sq);  // v, same dtype as m.

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const LaPropParamState& lhs, const LaPropParamState& rhs);
};

class LaProp : public torch::optim::Optimizer {
 public:
  explicit LaProp(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                  LaPropOptions defaults = {});
  explicit LaProp(std::vector<torch::Tensor> params, LaPropOptions defaults = {});

  // One update of every parameter that has a gradient. Returns the closure's
  // loss if a closure is given, else an undefined tensor.
  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  template <typename Self, typename Archive>
  static void serialize(Self& self, Archive& archive) {
    _TORCH_OPTIM_SERIALIZE_WITH_TEMPLATE_ARG(LaProp);
  }
};

// The AGC factor applied to one gradient: 1 / max(1, ||grad|| / (clip *
// max(pmin, ||param||))). Exposed for tests and metrics; 0-dim float32
// (float64 for double parameters).
torch::Tensor AgcFactor(const torch::Tensor& param, const torch::Tensor& grad, double clip,
                        double pmin);

}  // namespace dreamfleet::learner

#endif  // DREAMFLEET_LEARNER_LAPROP_H_
