// Norm: RMSNorm (official default) or LayerNorm over one dimension (the last for vectors, the
// channel dimension 1 for NCHW images), with a learned scale (and shift for LayerNorm), eps 1e-4.
#pragma once

#include <torch/torch.h>

#include <string>

namespace dreamfleet::dreamer {

struct NormOptions {
  NormOptions(int64_t size, std::string kind = "rms") : size_(size), kind_(std::move(kind)) {}
  TORCH_ARG(int64_t, size);
  TORCH_ARG(std::string, kind);  // "rms" or "layer"
  TORCH_ARG(int64_t, dim) = -1;  // -1: last dim; 1: channels of NCHW
  TORCH_ARG(double, eps) = 1e-4;
};

class NormImpl : public torch::nn::Module {
 public:
  explicit NormImpl(NormOptions options);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  NormOptions options_;
  torch::Tensor scale_;
  torch::Tensor shift_;  // LayerNorm only
};
TORCH_MODULE(Norm);

}  // namespace dreamfleet::dreamer
