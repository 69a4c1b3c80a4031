#include "dreamer/models/norm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace dreamfleet::dreamer {
namespace {

// RMSNorm over the rows of a contiguous float [M, C] tensor, forward and backward each in one
// pass per row. The composite version (square, mean, rsqrt, two multiplies and their backward)
// made ten full passes over every activation and was the largest elementwise cost of an update.
struct RmsNormRows : public torch::autograd::Function<RmsNormRows> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& scale, double eps) {
    const int64_t m = x.size(0), c = x.size(1);
    auto y = torch::empty_like(x);
    auto r = torch::empty({m}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* sp = scale.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    float* rp = r.data_ptr<float>();
    const float inv_c = 1.0f / static_cast<float>(c), e = static_cast<float>(eps);
    at::parallel_for(0, m, std::max<int64_t>(1, 32768 / c), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const float* xi = xp + i * c;
        float* yi = yp + i * c;
        float ss = 0;
        for (int64_t j = 0; j < c; ++j) ss += xi[j] * xi[j];
        const float ri = 1.0f / std::sqrt(ss * inv_c + e);
        rp[i] = ri;
        for (int64_t j = 0; j < c; ++j) yi[j] = xi[j] * ri * sp[j];
      }
    });
    ctx->save_for_backward({x, scale, r});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& scale = saved[1];
    const torch::Tensor& r = saved[2];
    const auto g = grads[0].contiguous();
    const int64_t m = x.size(0), c = x.size(1);
    auto dx = torch::empty_like(x);
    auto dscale = torch::zeros({c}, scale.options());
    const float* xp = x.data_ptr<float>();
    const float* sp = scale.data_ptr<float>();
    const float* rp = r.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    float* dsp = dscale.data_ptr<float>();
    const float inv_c = 1.0f / static_cast<float>(c);
    // The scale gradient sums over all rows: each block of rows writes its own partial sum and the
    // partials are added in block order, so the result is the same bit for bit at any thread count
    // (checkpoint resume must reproduce an update exactly).
    const int64_t rows_per_block = std::max<int64_t>(1, 16384 / c);
    const int64_t blocks = (m + rows_per_block - 1) / rows_per_block;
    std::vector<float> partial(blocks * c, 0.0f);
    at::parallel_for(0, blocks, 1, [&](int64_t block_begin, int64_t block_end) {
      for (int64_t block = block_begin; block < block_end; ++block) {
        float* ds = partial.data() + block * c;
        const int64_t end = std::min(m, (block + 1) * rows_per_block);
        for (int64_t i = block * rows_per_block; i < end; ++i) {
          const float* xi = xp + i * c;
          const float* gi = gp + i * c;
          float* dxi = dxp + i * c;
          const float ri = rp[i];
          // y_j = s_j x_j r with r = (mean(x^2) + eps)^-1/2, so
          // dx_j = r g_j s_j - x_j r^3 / C * sum_k g_k s_k x_k  and  ds_j += g_j x_j r.
          float dot = 0;
          for (int64_t j = 0; j < c; ++j) dot += gi[j] * sp[j] * xi[j];
          const float k = ri * ri * ri * dot * inv_c;
          for (int64_t j = 0; j < c; ++j) {
            dxi[j] = ri * gi[j] * sp[j] - xi[j] * k;
            ds[j] += gi[j] * xi[j] * ri;
          }
        }
      }
    });
    for (int64_t block = 0; block < blocks; ++block) {
      for (int64_t j = 0; j < c; ++j) dsp[j] += partial[block * c + j];
    }
    return {dx, dscale, torch::Tensor()};
  }
};

// True where RmsNormRows can run: float32 on the CPU, not under autocast to another type.
bool FusedRmsApplies(const torch::Tensor& x, const torch::Tensor& scale) {
  return x.is_cpu() && x.scalar_type() == torch::kFloat && scale.scalar_type() == torch::kFloat &&
         x.numel() > 0;
}

}  // namespace

NormImpl::NormImpl(NormOptions options) : options_(std::move(options)) {
  scale_ = register_parameter("scale", torch::ones({options_.size()}));
  if (options_.kind() == "layer") {
    shift_ = register_parameter("shift", torch::zeros({options_.size()}));
  }
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  const int64_t dim = options_.dim() < 0 ? x.dim() + options_.dim() : options_.dim();
  const int64_t c = options_.size();
  // Move the normalised dimension last (a free view for channels-last images), normalise rows of
  // C, and move it back: the result keeps the channels-last layout.
  const bool last = dim == x.dim() - 1;
  std::vector<int64_t> to_last, from_last;
  if (!last) {
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (d != dim) to_last.push_back(d);
    }
    to_last.push_back(dim);
    from_last.assign(x.dim(), 0);
    for (int64_t d = 0; d < x.dim(); ++d) from_last[to_last[d]] = d;
  }
  const auto moved = last ? x : x.permute(to_last);
  torch::Tensor y;
  if (options_.kind() == "layer") {
    y = torch::layer_norm(moved, {c}, scale_, shift_, options_.eps());
  } else if (FusedRmsApplies(x, scale_)) {
    const auto sizes = moved.sizes().vec();
    y = RmsNormRows::apply(moved.contiguous().view({-1, c}), scale_, options_.eps()).view(sizes);
  } else {
    y = moved * torch::rsqrt(moved.square().mean({-1}, true) + options_.eps()) * scale_;
  }
  return last ? y : y.permute(from_last);
}

}  // namespace dreamfleet::dreamer
