// Pure pixel functions of the libretro adapter. Data flow per agent step: the core's last two
// native frames (XRGB8888 / RGB565 / 0RGB1555) -> ConvertToRgb -> MaxPool -> AreaResizer to the
// observation size -> optional RgbToGray. Pure functions over caller-owned buffers, so they are
// unit-tested on known pixels without a core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dreamfleet::envs {

// The pixel formats a libretro core may negotiate (values of enum retro_pixel_format).
enum class PixelFormat { k0RGB1555 = 0, kXRGB8888 = 1, kRGB565 = 2 };

int BytesPerPixel(PixelFormat format);

// Converts one frame of `width` x `height` pixels whose rows are `pitch` bytes apart into packed
// RGB [height, width, 3]. 5- and 6-bit channels are expanded by bit replication (31 -> 255).
void ConvertToRgb(const uint8_t* src, int width, int height, size_t pitch, PixelFormat format,
                  uint8_t* rgb);

// dst[i] = max(a[i], b[i]); dst may alias a or b (Atari-style flicker removal).
void MaxPool(const uint8_t* a, const uint8_t* b, size_t n, uint8_t* dst);

// Luma (ITU-R BT.601 weights, rounded) of packed RGB [n, 3] into gray [n].
void RgbToGray(const uint8_t* rgb, size_t n, uint8_t* gray);

// Area-averaging resize of packed uint8 images [H, W, C] (each output pixel is the weighted mean of
// the input pixels its footprint covers; fractional coverage at the edges). Weights are computed
// once for the fixed sizes; Resize itself allocates nothing.
class AreaResizer {
 public:
  AreaResizer(int in_height, int in_width, int out_height, int out_width, int channels);
  void Resize(const uint8_t* src, uint8_t* dst);
  // The same for an XRGB8888 source (packed rows), skipping the full-size RGB conversion; only
  // for channels == 3. Gives exactly Resize(ConvertToRgb(src)).
  void ResizeXrgb8888(const uint8_t* src, uint8_t* dst);

  int in_height() const { return in_height_; }
  int in_width() const { return in_width_; }

 private:
  // Output coordinate o averages inputs [begin[o], begin[o] + count[o]) with weights
  // weights[offset[o] + j] in 1 << kShift units summing to exactly 1 << kShift.
  struct Footprints {
    std::vector<int> begin, count, offset;
    std::vector<uint32_t> weights;
    bool uniform = false;  // integer factor: every footprint is `count` equal weights
  };
  static constexpr int kShift = 12;
  static Footprints Make(int in_size, int out_size);
  // src_channels: 3 for packed RGB, 4 for XRGB8888 (read as R = byte 2, G = 1, B = 0).
  void HorizontalPass(const uint8_t* src, int src_channels);
  void VerticalPass(uint8_t* dst);
  // Fast path for XRGB8888 shrunk by exactly 4 horizontally (NES 256 -> 64): SIMD sums of four
  // pixels kept as BGRX, then a vertical pass that writes RGB.
  void HorizontalPassXrgbBy4(const uint8_t* src);
  void VerticalPassBgrx(uint8_t* dst);

  int in_height_, in_width_, out_height_, out_width_, channels_;
  Footprints rows_, cols_;
  // Horizontal pass of every input row: [in_height, out_width * channels], in 1/16 units
  // (255 << (kShift - 4) fits 16 bits), so the vertical pass is a contiguous weighted sum.
  std::vector<uint16_t> horizontal_;
  std::vector<uint32_t> accum_;            // [out_width * channels]
  std::vector<uint16_t> horizontal_bgrx_;  // fast path: [in_height, out_width * 4]
  std::vector<uint32_t> accum_bgrx_;       // fast path: [out_width * 4]
};

}  // namespace dreamfleet::envs
