// Draws a grid of coloured cells (a gridworld, a MinAtar board) into an image of any size by
// nearest-neighbour scaling. Data flow: the env fills one Rgb per cell, Render() writes the
// [H, W, C] uint8 observation (C = 3 for RGB, 1 for grayscale). The pixel-to-cell maps are
// computed once, so rendering a 64x64 frame is one table lookup per pixel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dreamfleet::envs {

struct Rgb {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
};

inline bool operator==(const Rgb& a, const Rgb& b) {
  return a.r == b.r && a.g == b.g && a.b == b.b;
}

// ITU-R BT.601 luma, the usual RGB-to-gray conversion for Atari-like observations.
inline uint8_t Luma(const Rgb& c) {
  return static_cast<uint8_t>((299 * c.r + 587 * c.g + 114 * c.b + 500) / 1000);
}

// An [H, W, channels] image (channels 3 = RGB, 1 = gray) as [H, W, 3] RGB into *rgb, for
// pictures people look at (episode GIFs).
inline void ImageToRgb(const uint8_t* image, int height, int width, int channels,
                       std::vector<uint8_t>* rgb) {
  const size_t pixels = static_cast<size_t>(height) * width;
  rgb->resize(pixels * 3);
  for (size_t p = 0; p < pixels; ++p) {
    for (int k = 0; k < 3; ++k) (*rgb)[p * 3 + k] = image[p * channels + (channels == 3 ? k : 0)];
  }
}

class CellRenderer {
 public:
  // `rows` x `cols` cells drawn into an `height` x `width` image with `channels` (3 or 1).
  CellRenderer(int rows, int cols, int height, int width, int channels);

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  int height() const { return height_; }
  int width() const { return width_; }
  int channels() const { return channels_; }

  // cells: [rows, cols] row-major; image: [height, width, channels].
  void Render(const Rgb* cells, uint8_t* image) const;

  // Pixel rectangle [y0, y1) x [x0, x1) covered by cell (row, col).
  void CellBox(int row, int col, int* y0, int* y1, int* x0, int* x1) const;

  // Sets one pixel (used for shapes drawn inside a cell, e.g. the gridworld agent).
  void SetPixel(int y, int x, Rgb color, uint8_t* image) const;

 private:
  int rows_, cols_, height_, width_, channels_;
  std::vector<int> row_of_y_;  // [height]
  std::vector<int> col_of_x_;  // [width]
};

}  // namespace dreamfleet::envs
