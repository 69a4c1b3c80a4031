#include "dreamer/models/image_decoder.h"

#include "dreamer/models/init.h"

namespace dreamfleet::dreamer {

torch::Tensor SubpixelConvTranspose(const torch::Tensor& x, const torch::Tensor& weight,
                                    const torch::Tensor& bias) {
  // Output row 2q+a of a k4 s2 p1 transposed convolution reads input rows q-1, q (a = 0, taps 3
  // and 1) or q, q+1 (a = 1, taps 2 and 0); the same holds for columns. Each of the four output
  // phases is therefore a 3x3 convolution of the input whose taps are picked from the 4x4 kernel
  // (index 4 of the zero-padded kernel is a zero tap).
  const int64_t in = weight.size(0), out = weight.size(1);
  auto padded = torch::nn::functional::pad(weight.permute({1, 0, 2, 3}),
                                           torch::nn::functional::PadFuncOptions({0, 1, 0, 1}));
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(weight.device());
  const torch::Tensor taps[2] = {torch::tensor({3, 1, 4}, opts), torch::tensor({4, 2, 0}, opts)};
  std::vector<torch::Tensor> phases;
  for (int a = 0; a < 2; ++a) {
    auto rows = padded.index_select(2, taps[a]);
    for (int b = 0; b < 2; ++b) phases.push_back(rows.index_select(3, taps[b]));
  }
  // [out, 4 phases, in, 3, 3] -> [out*4, in, 3, 3]: channel co*4 + a*2 + b, pixel_shuffle's order.
  auto w3 = torch::stack(phases, 1).reshape({out * 4, in, 3, 3});
  auto b3 = bias.defined() ? bias.repeat_interleave(4) : torch::Tensor();
  const bool channels_last = x.is_contiguous(torch::MemoryFormat::ChannelsLast);
  if (channels_last) w3 = w3.contiguous(torch::MemoryFormat::ChannelsLast);
  auto y = torch::pixel_shuffle(torch::conv2d(x, w3, b3, /*stride=*/1, /*padding=*/1), 2);
  // Keep the layout of the input: an elementwise op (and its backward) on a channels-last and a
  // contiguous operand takes the slow strided path, measured at 3x the time.
  return channels_last ? y.contiguous(torch::MemoryFormat::ChannelsLast) : y;
}

ImageDecoderImpl::ImageDecoderImpl(ImageDecoderOptions options) : options_(std::move(options)) {
  const auto& mults = options_.cnn().mults();
  const int64_t n = mults.size();
  minh_ = options_.cnn().height() >> n;
  minw_ = options_.cnn().width() >> n;
  transpose_ = options_.cnn().mode() == "strided" && options_.upsample() == "transpose";
  const int64_t top = options_.cnn().depth() * mults.back();
  space_ = register_module("space", torch::nn::Linear(options_.feat(), top * minh_ * minw_));
  InitLinear(space_);
  space_norm_ = register_module("space_norm", Norm(NormOptions(top, options_.cnn().norm()).dim(1)));
  convs_ = register_module("convs", torch::nn::ModuleList());
  norms_ = register_module("norms", torch::nn::ModuleList());
  const int64_t k = options_.cnn().mode() == "official" ? 5 : 3;
  int64_t in = top;
  // Stages mirror the encoder: depths mults[n-2], ..., mults[0], then the image channels.
  for (int64_t i = n - 2; i >= -1; --i) {
    const bool last = i < 0;
    const int64_t out = last ? options_.cnn().channels() : options_.cnn().depth() * mults[i];
    if (transpose_) {
      auto conv = torch::nn::ConvTranspose2d(
          torch::nn::ConvTranspose2dOptions(in, out, 4).stride(2).padding(1));
      InitConv(conv->weight, conv->bias, in * 16);
      convs_->push_back(conv);
    } else {
      auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).padding(k / 2));
      InitConv(conv->weight, conv->bias, in * k * k);
      convs_->push_back(conv);
    }
    if (!last) norms_->push_back(Norm(NormOptions(out, options_.cnn().norm()).dim(1)));
    in = out;
  }
}

torch::Tensor ImageDecoderImpl::forward(const torch::Tensor& feat) {
  const int64_t top = options_.cnn().depth() * options_.cnn().mults().back();
  auto x = space_->forward(feat).view({feat.size(0), top, minh_, minw_});
  if (options_.cnn().channels_last()) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  x = torch::silu(space_norm_->forward(x));
  for (size_t i = 0; i < convs_->size(); ++i) {
    if (transpose_) {
      auto* conv = convs_[i]->as<torch::nn::ConvTranspose2d>();
      // LibTorch 1.13 runs transposed convolutions on the CPU through im2col, not oneDNN.
      x = x.is_cpu() ? SubpixelConvTranspose(x, conv->weight, conv->bias) : conv->forward(x);
    } else {
      x = torch::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2});
      x = convs_[i]->as<torch::nn::Conv2d>()->forward(x);
    }
    if (i + 1 < convs_->size()) x = torch::silu(norms_[i]->as<Norm>()->forward(x));
  }
  return torch::sigmoid(x).permute({0, 2, 3, 1});  // [N, H, W, C]
}

}  // namespace dreamfleet::dreamer
