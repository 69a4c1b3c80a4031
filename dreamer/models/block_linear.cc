#include "dreamer/models/block_linear.h"

#include "dreamer/models/init.h"

namespace dreamfleet::dreamer {

BlockLinearImpl::BlockLinearImpl(BlockLinearOptions options) : options_(options) {
  TORCH_CHECK(options_.in() % options_.blocks() == 0 && options_.out() % options_.blocks() == 0,
              "BlockLinear: in ", options_.in(), " and out ", options_.out(),
              " must be divisible by blocks ", options_.blocks());
  const int64_t g = options_.blocks();
  weight_ = register_parameter("weight", torch::empty({g, options_.in() / g, options_.out() / g}));
  bias_ = register_parameter("bias", torch::zeros({options_.out()}));
  // Official fans for a [g, i, o] kernel: fan_in = g * i.
  TruncNormalInit(weight_, options_.in());
}

torch::Tensor BlockLinearImpl::forward(const torch::Tensor& x) {
  const int64_t g = options_.blocks();
  const int64_t n = x.size(0);
  auto xg = x.reshape({n, g, options_.in() / g}).transpose(0, 1);  // [g, N, i]
  auto y = torch::bmm(xg, weight_).transpose(0, 1);                // [N, g, o]
  return y.reshape({n, options_.out()}) + bias_;
}

}  // namespace dreamfleet::dreamer
