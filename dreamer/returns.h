// TD(lambda) returns over imagined trajectories, as danijar/dreamerv3's
// lambda_return. Data flow: imagined rewards, critic values and continue
// probabilities from actor_critic -> targets for the critic and advantages for
// the actor.
//
// Conventions (index t = imagination step, 0 <= t < H):
//   rewards[:, t]   r_t: reward of the transition from state t to state t+1.
//   continues[:, t] c_t: probability (or 0/1 flag) that state t+1 is not
//                   terminal, i.e. the continue head evaluated at state t+1.
//   values[:, t]    v_t: critic value of state t, for t = 0..H (H+1 entries);
//                   values[:, H] is the bootstrap.
//   The discount of step t is gamma * c_t.
// Recursion, from the back:
//   R_H = v_H
//   R_t = r_t + gamma * c_t * ((1 - lambda) * v_{t+1} + lambda * R_{t+1})
// Output: R_0 .. R_{H-1}, shape [B, H]. lambda = 1 gives the Monte-Carlo
// return bootstrapped from v_H; lambda = 0 gives one-step TD targets.
// Mapping to the official code (which stores everything per state with H+1
// entries, rew[:, t] being the reward received on entering state t): our r_t,
// c_t, v_{t+1} are its rew[:, t+1], (1 - term[:, t+1]), boot[:, t+1].
#ifndef DREAMFLEET_LEARNER_RETURNS_H_
#define DREAMFLEET_LEARNER_RETURNS_H_

#include <torch/torch.h>

namespace dreamfleet::dreamer {

// rewards [B, H], values [B, H+1], continues [B, H] -> returns [B, H].
// Differentiable in all inputs (callers normally pass detached tensors).
// Crashes (TORCH_CHECK) on shape mismatch: that is a programming error.
torch::Tensor LambdaReturn(const torch::Tensor& rewards, const torch::Tensor& values,
                           const torch::Tensor& continues, double gamma, double lambda);

}  // namespace dreamfleet::dreamer

#endif  // DREAMFLEET_LEARNER_RETURNS_H_
