// The CPU fast paths of the networks (fused RMSNorm, sub-pixel transposed convolution) must
// compute exactly what the plain LibTorch formulation computes, values and gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dreamer/models/image_decoder.h"
#include "dreamer/models/norm.h"

namespace dreamfleet::dreamer {
namespace {

struct Grads {
  torch::Tensor y, dx, dw, db;
};

template <typename Fn>
Grads RunWithGrads(Fn fn, const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& b0,
                   const torch::Tensor& upstream) {
  auto x = x0.clone().requires_grad_(true);
  auto w = w0.clone().requires_grad_(true);
  auto b = b0.clone().requires_grad_(true);
  auto y = fn(x, w, b);
  (y * upstream).sum().backward();
  return {y.detach(), x.grad(), w.grad(), b.grad()};
}

void ExpectClose(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_TRUE(torch::allclose(a, b, /*rtol=*/1e-4, /*atol=*/1e-4))
      << what << ": max abs difference " << (a - b).abs().max().item<float>();
}

TEST(SubpixelConvTransposeTest, MatchesConvTranspose2dValuesAndGradients) {
  torch::manual_seed(3);
  for (bool channels_last : {false, true}) {
    for (auto [h, w] : {std::pair<int64_t, int64_t>{4, 4}, {5, 7}}) {
      auto x = torch::randn({3, 6, h, w});
      if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      auto weight = torch::randn({6, 5, 4, 4});
      auto bias = torch::randn({5});
      auto upstream = torch::randn({3, 5, 2 * h, 2 * w});
      auto reference = RunWithGrads(
          [](auto x, auto w, auto b) {
            return torch::conv_transpose2d(x, w, b, /*stride=*/2, /*padding=*/1);
          },
          x, weight, bias, upstream);
      auto subpixel =
          RunWithGrads([](auto x, auto w, auto b) { return SubpixelConvTranspose(x, w, b); }, x,
                       weight, bias, upstream);
      SCOPED_TRACE(::testing::Message()
                   << "channels_last=" << channels_last << " " << h << "x" << w);
      ExpectClose(subpixel.y, reference.y, "output");
      ExpectClose(subpixel.dx, reference.dx, "input gradient");
      ExpectClose(subpixel.dw, reference.dw, "weight gradient");
      ExpectClose(subpixel.db, reference.db, "bias gradient");
    }
  }
}

TEST(SubpixelConvTransposeTest, DecoderOutputIsTheSameAsWithConvTranspose2d) {
  // The decoder's transposed stages on the CPU go through SubpixelConvTranspose; recompute the
  // image with the modules' own ConvTranspose2d forward and compare.
  torch::manual_seed(5);
  ImageDecoder dec(ImageDecoderOptions()
                       .feat(12)
                       .cnn(CnnOptions().depth(4).mults({1, 2}).height(16).width(16))
                       .upsample("transpose"));
  auto feat = torch::randn({2, 12});
  auto image = dec->forward(feat);
  ASSERT_EQ(image.sizes(), (std::vector<int64_t>{2, 16, 16, 3}));
  torch::Tensor x;
  {
    auto children = dec->named_children();
    auto space = children["space"]->as<torch::nn::Linear>();
    auto space_norm = children["space_norm"]->as<Norm>();
    auto convs = children["convs"]->as<torch::nn::ModuleList>();
    auto norms = children["norms"]->as<torch::nn::ModuleList>();
    x = space->forward(feat).view({2, 8, 4, 4});
    x = torch::silu(space_norm->forward(x));
    for (size_t i = 0; i < convs->size(); ++i) {
      x = (*convs)[i]->as<torch::nn::ConvTranspose2d>()->forward(x);
      if (i + 1 < convs->size()) x = torch::silu((*norms)[i]->as<Norm>()->forward(x));
    }
  }
  ExpectClose(image, torch::sigmoid(x).permute({0, 2, 3, 1}), "decoded image");
}

// The textbook formula, as the composite LibTorch ops the fused kernel replaced.
torch::Tensor ReferenceNorm(const torch::Tensor& x, const torch::Tensor& scale,
                            const torch::Tensor& shift, int64_t dim, const std::string& kind) {
  std::vector<int64_t> shape(x.dim(), 1);
  shape[dim] = scale.size(0);
  if (kind == "layer") {
    auto mean = x.mean({dim}, true);
    auto var = (x - mean).square().mean({dim}, true);
    return (x - mean) * torch::rsqrt(var + 1e-4) * scale.view(shape) + shift.view(shape);
  }
  return x * torch::rsqrt(x.square().mean({dim}, true) + 1e-4) * scale.view(shape);
}

TEST(NormTest, MatchesTheFormulaOverChannelsAndLastDimensionWithGradients) {
  torch::manual_seed(7);
  struct Case {
    std::vector<int64_t> shape;
    int64_t dim;
    bool channels_last;
  };
  for (const std::string kind : {"rms", "layer"}) {
    for (const Case& k : {Case{{4, 6, 5, 3}, 1, false}, Case{{4, 6, 5, 3}, 1, true},
                          Case{{7, 3, 10}, -1, false}, Case{{2, 1}, -1, false}}) {
      SCOPED_TRACE(::testing::Message() << kind << " dim=" << k.dim << " channels_last="
                                        << k.channels_last << " rank=" << k.shape.size());
      const int64_t dim = k.dim < 0 ? k.shape.size() - 1 : k.dim;
      const int64_t c = k.shape[dim];
      Norm norm(NormOptions(c, kind).dim(k.dim));
      {
        torch::NoGradGuard no_grad;
        for (auto& p : norm->parameters()) p.copy_(torch::randn_like(p));
      }
      auto x0 = 3 * torch::randn(k.shape) + 0.5;
      if (k.channels_last) x0 = x0.contiguous(torch::MemoryFormat::ChannelsLast);
      auto upstream = torch::randn(k.shape);

      auto x = x0.clone().requires_grad_(true);
      auto y = norm->forward(x);
      (y * upstream).sum().backward();

      auto params = norm->named_parameters();
      auto scale = params["scale"].detach().clone().requires_grad_(true);
      auto shift =
          kind == "layer" ? params["shift"].detach().clone().requires_grad_(true) : torch::Tensor();
      auto xr = x0.clone().requires_grad_(true);
      auto yr = ReferenceNorm(xr, scale, shift, dim, kind);
      (yr * upstream).sum().backward();

      ExpectClose(y, yr, "output");
      ExpectClose(x.grad(), xr.grad(), "input gradient");
      ExpectClose(params["scale"].grad(), scale.grad(), "scale gradient");
      if (kind == "layer") ExpectClose(params["shift"].grad(), shift.grad(), "shift gradient");
      if (k.channels_last) {
        EXPECT_TRUE(y.is_contiguous(torch::MemoryFormat::ChannelsLast)) << "layout kept";
      }
    }
  }
}

TEST(NormTest, GradientsAreBitIdenticalAtAnyThreadCount) {
  // Checkpoint resume reproduces an update bit for bit, also with learner.threads > 1.
  torch::manual_seed(11);
  auto x0 = torch::randn({40000, 8});
  auto upstream = torch::randn({40000, 8});
  const int before = at::get_num_threads();
  std::vector<torch::Tensor> dx, dscale;
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    Norm norm(NormOptions(8, "rms"));
    auto x = x0.clone().requires_grad_(true);
    (norm->forward(x) * upstream).sum().backward();
    dx.push_back(x.grad());
    dscale.push_back(norm->named_parameters()["scale"].grad());
  }
  at::set_num_threads(before);
  for (size_t i = 1; i < dx.size(); ++i) {
    EXPECT_TRUE(torch::equal(dx[i], dx[0])) << "input gradient, run " << i;
    EXPECT_TRUE(torch::equal(dscale[i], dscale[0])) << "scale gradient, run " << i;
  }
}

}  // namespace
}  // namespace dreamfleet::dreamer
