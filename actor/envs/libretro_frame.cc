// Pixel conversion, max-pool, grayscale and area resize for libretro frames (see the header).
#include "actor/envs/libretro_frame.h"

#include <algorithm>
#include <cstring>

namespace dreamfleet::actor {

int BytesPerPixel(PixelFormat format) { return format == PixelFormat::kXRGB8888 ? 4 : 2; }

namespace {
inline uint8_t Expand5(uint32_t v) { return static_cast<uint8_t>((v << 3) | (v >> 2)); }
inline uint8_t Expand6(uint32_t v) { return static_cast<uint8_t>((v << 2) | (v >> 4)); }
}  // namespace

void ConvertToRgb(const uint8_t* src, int width, int height, size_t pitch, PixelFormat format,
                  uint8_t* rgb) {
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = src + static_cast<size_t>(y) * pitch;
    uint8_t* out = rgb + static_cast<size_t>(y) * width * 3;
    switch (format) {
      case PixelFormat::kXRGB8888:
        for (int x = 0; x < width; ++x) {
          uint32_t p;
          std::memcpy(&p, row + 4 * x, 4);
          out[3 * x] = static_cast<uint8_t>(p >> 16);
          out[3 * x + 1] = static_cast<uint8_t>(p >> 8);
          out[3 * x + 2] = static_cast<uint8_t>(p);
        }
        break;
      case PixelFormat::kRGB565:
        for (int x = 0; x < width; ++x) {
          uint16_t p;
          std::memcpy(&p, row + 2 * x, 2);
          out[3 * x] = Expand5((p >> 11) & 0x1F);
          out[3 * x + 1] = Expand6((p >> 5) & 0x3F);
          out[3 * x + 2] = Expand5(p & 0x1F);
        }
        break;
      case PixelFormat::k0RGB1555:
        for (int x = 0; x < width; ++x) {
          uint16_t p;
          std::memcpy(&p, row + 2 * x, 2);
          out[3 * x] = Expand5((p >> 10) & 0x1F);
          out[3 * x + 1] = Expand5((p >> 5) & 0x1F);
          out[3 * x + 2] = Expand5(p & 0x1F);
        }
        break;
    }
  }
}

void MaxPool(const uint8_t* a, const uint8_t* b, size_t n, uint8_t* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = std::max(a[i], b[i]);
}

void RgbToGray(const uint8_t* rgb, size_t n, uint8_t* gray) {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
    gray[i] = static_cast<uint8_t>((299 * r + 587 * g + 114 * b + 500) / 1000);
  }
}

std::vector<AreaResizer::Footprint> AreaResizer::Footprints(int in_size, int out_size) {
  std::vector<Footprint> result(out_size);
  const double scale = static_cast<double>(in_size) / out_size;
  for (int o = 0; o < out_size; ++o) {
    const double lo = o * scale, hi = (o + 1) * scale;
    Footprint& f = result[o];
    f.begin = static_cast<int>(lo);
    const int end = std::min(in_size, static_cast<int>(hi + 0.999999));
    uint32_t total = 0;
    for (int i = f.begin; i < end; ++i) {
      const double cover = std::min<double>(hi, i + 1) - std::max<double>(lo, i);
      const uint32_t w = static_cast<uint32_t>(cover / scale * (1 << kShift) + 0.5);
      f.weights.push_back(w);
      total += w;
    }
    // Give rounding leftovers to the largest weight so every footprint sums to exactly 1.
    auto largest = std::max_element(f.weights.begin(), f.weights.end());
    *largest += (1u << kShift) - total;
  }
  return result;
}

AreaResizer::AreaResizer(int in_height, int in_width, int out_height, int out_width, int channels)
    : in_height_(in_height),
      in_width_(in_width),
      out_height_(out_height),
      out_width_(out_width),
      channels_(channels),
      rows_(Footprints(in_height, out_height)),
      cols_(Footprints(in_width, out_width)),
      row_buffer_(static_cast<size_t>(out_width) * channels),
      accum_(static_cast<size_t>(out_width) * channels) {}

void AreaResizer::Resize(const uint8_t* src, uint8_t* dst) {
  const int c = channels_;
  const size_t out_row = static_cast<size_t>(out_width_) * c;
  for (int oy = 0; oy < out_height_; ++oy) {
    const Footprint& fy = rows_[oy];
    std::fill(accum_.begin(), accum_.end(), 0u);
    for (size_t k = 0; k < fy.weights.size(); ++k) {
      const uint8_t* in = src + static_cast<size_t>(fy.begin + k) * in_width_ * c;
      // Horizontal pass of one input row: row_buffer_ in 1 << kShift units.
      for (int ox = 0; ox < out_width_; ++ox) {
        const Footprint& fx = cols_[ox];
        for (int ch = 0; ch < c; ++ch) {
          uint32_t sum = 0;
          const uint8_t* p = in + static_cast<size_t>(fx.begin) * c + ch;
          for (size_t j = 0; j < fx.weights.size(); ++j) sum += fx.weights[j] * p[j * c];
          row_buffer_[static_cast<size_t>(ox) * c + ch] = sum;
        }
      }
      const uint32_t wy = fy.weights[k];
      // sum * wy < 255 * 2^12 * 2^12 fits in 32 bits only after a shift; keep 2^20 headroom.
      for (size_t i = 0; i < out_row; ++i) accum_[i] += (row_buffer_[i] >> 4) * wy;
    }
    uint8_t* out = dst + oy * out_row;
    constexpr int kTotalShift = 2 * kShift - 4;
    for (size_t i = 0; i < out_row; ++i) {
      out[i] = static_cast<uint8_t>(
          std::min<uint32_t>(255, (accum_[i] + (1u << (kTotalShift - 1))) >> kTotalShift));
    }
  }
}

}  // namespace dreamfleet::actor
