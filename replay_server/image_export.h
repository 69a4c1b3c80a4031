// Episode frames to image files for `dreamfleet replay export`, `dreamfleet play` and the open-loop
// report: an animated, looping GIF (giflib; RGB quantised to a fixed 6x7x6 colour cube, so the
// same pixel has the same colour in every frame) or a PNG grid of frames (libpng). Frames are
// [H, W, 3] uint8 RGB (a single channel is shown as grey).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dreamfleet::replay {

struct Frames {
  int height = 0;
  int width = 0;
  int channels = 3;           // 3 (RGB) or 1 (grey)
  std::vector<uint8_t> data;  // [count, height, width, channels]
  int count() const {
    const size_t frame = static_cast<size_t>(height) * width * channels;
    return frame == 0 ? 0 : static_cast<int>(data.size() / frame);
  }
};

// Index of the nearest colour of the 6x7x6 cube (r*42 + g*6 + b); the palette has 252 entries.
uint8_t QuantizeRgb(uint8_t r, uint8_t g, uint8_t b);
// The cube's colour `index` as RGB.
void PaletteColor(int index, uint8_t rgb[3]);

// GIF89a bytes: every frame, `delay_cs` hundredths of a second each, looping forever.
absl::StatusOr<std::string> EncodeGif(const Frames& frames, int delay_cs = 7);

// A PNG of the frames laid out left to right, `per_row` per row.
absl::StatusOr<std::string> EncodePngGrid(const Frames& frames, int per_row = 16);

}  // namespace dreamfleet::replay
