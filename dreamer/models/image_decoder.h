// ImageDecoder: latent features [N, F] -> image means [N, H, W, C] in [0, 1] (sigmoid output, as
// the official decoder; the world model scores them with MSE summed over pixels against
// image / 255). A Linear maps the features to [depth*mults.back(), minres, minres]; then each
// stage doubles the resolution:
//   "strided" + upsample:  nearest x2 upsample -> Conv2d k3 (no im2col transpose path on CPU)
//   "strided" + transpose: ConvTranspose2d k4 s2 p1 (the paper; on the CPU computed by
//                          SubpixelConvTranspose)
//   "official":            nearest x2 upsample -> Conv2d k5 (current danijar/dreamerv3)
// with channel Norm + SiLU between stages and none after the last.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "dreamer/models/image_encoder.h"
#include "dreamer/models/norm.h"

namespace dreamfleet::dreamer {

struct ImageDecoderOptions {
  TORCH_ARG(int64_t, feat) = 0;
  TORCH_ARG(CnnOptions, cnn);                     // the encoder's CNN, mirrored
  TORCH_ARG(std::string, upsample) = "upsample";  // "upsample" or "transpose"
};

// ConvTranspose2d(k4, s2, p1) with `weight` [in, out, 4, 4] computed as one 3x3 convolution into
// 4*out channels followed by pixel_shuffle(2): the same function and gradients, through oneDNN
// on the CPU instead of LibTorch 1.13's im2col path for transposed convolutions.
torch::Tensor SubpixelConvTranspose(const torch::Tensor& x, const torch::Tensor& weight,
                                    const torch::Tensor& bias);

class ImageDecoderImpl : public torch::nn::Module {
 public:
  explicit ImageDecoderImpl(ImageDecoderOptions options);
  // [N, F] -> [N, H, W, C] in [0, 1]
  torch::Tensor forward(const torch::Tensor& feat);

 private:
  ImageDecoderOptions options_;
  bool transpose_ = false;
  int64_t minh_ = 0, minw_ = 0;
  torch::nn::Linear space_{nullptr};
  Norm space_norm_{nullptr};
  torch::nn::ModuleList convs_{nullptr};
  torch::nn::ModuleList norms_{nullptr};
};
TORCH_MODULE(ImageDecoder);

}  // namespace dreamfleet::dreamer
