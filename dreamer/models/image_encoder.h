// ImageEncoder: uint8 images [N, H, W, C] -> flat features [N, out_size()]. Pixels map to
// [-0.5, 0.5] (x / 255 - 0.5, as the official encoder); then one stage per cnn_mults entry with
// depth * mult channels, each halving the resolution, followed by channel Norm and SiLU:
//   "strided":  Conv2d k4 s2 p1 (the paper)
//   "official": Conv2d k5 s1 p2 + 2x2 max-pool (current danijar/dreamerv3)
// until the minimum resolution (64 / 2^4 = 4).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace dreamfleet::dreamer {

// The CNN shape shared by the image encoder and decoder (CnnOptionsFor in module_options.h
// maps an AgentConfig onto it).
struct CnnOptions {
  TORCH_ARG(int64_t, height) = 64;
  TORCH_ARG(int64_t, width) = 64;
  TORCH_ARG(int64_t, channels) = 3;
  TORCH_ARG(int64_t, depth) = 16;
  TORCH_ARG(std::vector<int>, mults) = std::vector<int>{2, 3, 4, 4};
  TORCH_ARG(std::string, norm) = "rms";
  TORCH_ARG(std::string, mode) = "strided";
  TORCH_ARG(bool, channels_last) = true;
};

class ImageEncoderImpl : public torch::nn::Module {
 public:
  explicit ImageEncoderImpl(CnnOptions options);
  // uint8 [N, H, W, C] -> float [N, out_size()]
  torch::Tensor forward(const torch::Tensor& image);
  int64_t out_size() const;

 private:
  CnnOptions options_;
  torch::nn::ModuleList convs_{nullptr};
  torch::nn::ModuleList norms_{nullptr};
};
TORCH_MODULE(ImageEncoder);

}  // namespace dreamfleet::dreamer
