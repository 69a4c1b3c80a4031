// Pixel conversion, max-pool, grayscale and area resize for libretro frames (see the header).
#include "envs/libretro_frame.h"

#include <algorithm>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace dreamfleet::envs {

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
  size_t i = 0;
#ifdef __SSE2__
  for (; i + 16 <= n; i += 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_max_epu8(x, y));
  }
#endif
  for (; i < n; ++i) dst[i] = std::max(a[i], b[i]);
}

void RgbToGray(const uint8_t* rgb, size_t n, uint8_t* gray) {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
    gray[i] = static_cast<uint8_t>((299 * r + 587 * g + 114 * b + 500) / 1000);
  }
}

AreaResizer::Footprints AreaResizer::Make(int in_size, int out_size) {
  Footprints f;
  const double scale = static_cast<double>(in_size) / out_size;
  for (int o = 0; o < out_size; ++o) {
    const double lo = o * scale, hi = (o + 1) * scale;
    const int begin = static_cast<int>(lo);
    const int end = std::min(in_size, static_cast<int>(hi + 0.999999));
    const size_t first = f.weights.size();
    uint32_t total = 0;
    for (int i = begin; i < end; ++i) {
      const double cover = std::min<double>(hi, i + 1) - std::max<double>(lo, i);
      const uint32_t w = static_cast<uint32_t>(cover / scale * (1 << kShift) + 0.5);
      f.weights.push_back(w);
      total += w;
    }
    // Give rounding leftovers to the largest weight so every footprint sums to exactly 1.
    auto largest = std::max_element(f.weights.begin() + first, f.weights.end());
    *largest += (1u << kShift) - total;
    f.begin.push_back(begin);
    f.count.push_back(end - begin);
    f.offset.push_back(static_cast<int>(first));
  }
  f.uniform = in_size % out_size == 0 && ((1u << kShift) % (in_size / out_size)) == 0;
  return f;
}

AreaResizer::AreaResizer(int in_height, int in_width, int out_height, int out_width, int channels)
    : in_height_(in_height),
      in_width_(in_width),
      out_height_(out_height),
      out_width_(out_width),
      channels_(channels),
      rows_(Make(in_height, out_height)),
      cols_(Make(in_width, out_width)),
      horizontal_(static_cast<size_t>(in_height) * out_width * channels),
      accum_(static_cast<size_t>(out_width) * channels) {}

void AreaResizer::HorizontalPass(const uint8_t* src, int src_channels) {
  const int c = channels_;
  const int sc = src_channels;
  // Byte offset of output channel ch inside one source pixel.
  int channel_byte[4] = {0, 1, 2, 3};
  if (sc == 4) channel_byte[0] = 2, channel_byte[1] = 1, channel_byte[2] = 0;
  const size_t out_row = static_cast<size_t>(out_width_) * c;
  for (int y = 0; y < in_height_; ++y) {
    const uint8_t* in = src + static_cast<size_t>(y) * in_width_ * sc;
    uint16_t* out = horizontal_.data() + y * out_row;
    if (cols_.uniform && sc == 4 && c == 3) {
      // Integer factor from XRGB8888: sum `factor` pixels per channel, scale once.
      const int factor = in_width_ / out_width_;
      const uint32_t scale = ((1u << kShift) / factor) >> 4;
      for (int ox = 0; ox < out_width_; ++ox) {
        const uint8_t* p = in + static_cast<size_t>(ox) * factor * 4;
        uint32_t r = 0, g = 0, b = 0;
        for (int j = 0; j < factor; ++j, p += 4) {
          b += p[0];
          g += p[1];
          r += p[2];
        }
        out[ox * 3] = static_cast<uint16_t>(r * scale);
        out[ox * 3 + 1] = static_cast<uint16_t>(g * scale);
        out[ox * 3 + 2] = static_cast<uint16_t>(b * scale);
      }
      continue;
    }
    if (cols_.uniform) {
      const int factor = in_width_ / out_width_;
      const uint32_t scale = ((1u << kShift) / factor) >> 4;
      for (int ox = 0; ox < out_width_; ++ox) {
        const uint8_t* p = in + static_cast<size_t>(ox) * factor * sc;
        for (int ch = 0; ch < c; ++ch) {
          uint32_t sum = 0;
          for (int j = 0; j < factor; ++j) sum += p[j * sc + channel_byte[ch]];
          out[ox * c + ch] = static_cast<uint16_t>(sum * scale);
        }
      }
      continue;
    }
    for (int ox = 0; ox < out_width_; ++ox) {
      const uint32_t* w = cols_.weights.data() + cols_.offset[ox];
      const uint8_t* p = in + static_cast<size_t>(cols_.begin[ox]) * sc;
      const int n = cols_.count[ox];
      for (int ch = 0; ch < c; ++ch) {
        uint32_t sum = 0;
        for (int j = 0; j < n; ++j) sum += w[j] * p[j * sc + channel_byte[ch]];
        out[ox * c + ch] = static_cast<uint16_t>(sum >> 4);
      }
    }
  }
}

void AreaResizer::VerticalPass(uint8_t* dst) {
  const size_t out_row = static_cast<size_t>(out_width_) * channels_;
  constexpr int kTotalShift = 2 * kShift - 4;
  for (int oy = 0; oy < out_height_; ++oy) {
    uint32_t* accum = accum_.data();
    std::fill(accum, accum + out_row, 0u);
    const uint32_t* w = rows_.weights.data() + rows_.offset[oy];
    for (int k = 0; k < rows_.count[oy]; ++k) {
      const uint16_t* h = horizontal_.data() + (rows_.begin[oy] + k) * out_row;
      const uint32_t wy = w[k];
      for (size_t i = 0; i < out_row; ++i) accum[i] += h[i] * wy;
    }
    uint8_t* out = dst + oy * out_row;
    for (size_t i = 0; i < out_row; ++i) {
      out[i] = static_cast<uint8_t>(
          std::min<uint32_t>(255, (accum[i] + (1u << (kTotalShift - 1))) >> kTotalShift));
    }
  }
}

void AreaResizer::Resize(const uint8_t* src, uint8_t* dst) {
  HorizontalPass(src, channels_);
  VerticalPass(dst);
}

void AreaResizer::HorizontalPassXrgbBy4(const uint8_t* src) {
  const size_t row4 = static_cast<size_t>(out_width_) * 4;
  horizontal_bgrx_.resize(static_cast<size_t>(in_height_) * row4);
  // Each output value is the sum of 4 bytes times 2^kShift / 4, in 1/16 units: sum << 6.
  static_assert(((1 << kShift) / 4) >> 4 == 64, "scale of the by-4 fast path");
  for (int y = 0; y < in_height_; ++y) {
    const uint8_t* in = src + static_cast<size_t>(y) * in_width_ * 4;
    uint16_t* out = horizontal_bgrx_.data() + y * row4;
    int ox = 0;
#ifdef __SSE2__
    const __m128i zero = _mm_setzero_si128();
    for (; ox + 2 <= out_width_; ox += 2) {
      // Two output pixels = eight source pixels = 32 bytes.
      __m128i sums[2];
      for (int k = 0; k < 2; ++k) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + (ox + k) * 16));
        __m128i s = _mm_add_epi16(_mm_unpacklo_epi8(v, zero), _mm_unpackhi_epi8(v, zero));
        sums[k] = _mm_add_epi16(s, _mm_srli_si128(s, 8));  // low 4 lanes: B, G, R, X sums
      }
      const __m128i both = _mm_slli_epi16(_mm_unpacklo_epi64(sums[0], sums[1]), 6);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + ox * 4), both);
    }
#endif
    for (; ox < out_width_; ++ox) {
      const uint8_t* p = in + ox * 16;
      for (int ch = 0; ch < 4; ++ch) {
        out[ox * 4 + ch] = static_cast<uint16_t>((p[ch] + p[4 + ch] + p[8 + ch] + p[12 + ch]) << 6);
      }
    }
  }
}

void AreaResizer::VerticalPassBgrx(uint8_t* dst) {
  const size_t row4 = static_cast<size_t>(out_width_) * 4;
  accum_bgrx_.resize(row4);
  constexpr int kTotalShift = 2 * kShift - 4;
  for (int oy = 0; oy < out_height_; ++oy) {
    uint32_t* accum = accum_bgrx_.data();
    std::fill(accum, accum + row4, 0u);
    const uint32_t* w = rows_.weights.data() + rows_.offset[oy];
    for (int k = 0; k < rows_.count[oy]; ++k) {
      const uint16_t* h = horizontal_bgrx_.data() + (rows_.begin[oy] + k) * row4;
      const uint32_t wy = w[k];
      for (size_t i = 0; i < row4; ++i) accum[i] += h[i] * wy;
    }
    uint8_t* out = dst + static_cast<size_t>(oy) * out_width_ * 3;
    for (int ox = 0; ox < out_width_; ++ox) {
      for (int ch = 0; ch < 3; ++ch) {
        const uint32_t v = accum[ox * 4 + 2 - ch];  // RGB from BGRX
        out[ox * 3 + ch] = static_cast<uint8_t>(
            std::min<uint32_t>(255, (v + (1u << (kTotalShift - 1))) >> kTotalShift));
      }
    }
  }
}

void AreaResizer::ResizeXrgb8888(const uint8_t* src, uint8_t* dst) {
  if (channels_ == 3 && in_width_ == 4 * out_width_) {
    HorizontalPassXrgbBy4(src);
    VerticalPassBgrx(dst);
    return;
  }
  HorizontalPass(src, 4);
  VerticalPass(dst);
}

}  // namespace dreamfleet::envs
