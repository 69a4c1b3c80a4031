// See cell_renderer.h.
#include "envs/cell_renderer.h"

#include <cstring>

namespace dreamfleet::envs {

CellRenderer::CellRenderer(int rows, int cols, int height, int width, int channels)
    : rows_(rows),
      cols_(cols),
      height_(height),
      width_(width),
      channels_(channels),
      row_of_y_(height),
      col_of_x_(width) {
  // Pixel centre (y + 0.5) * rows / height picks the cell, so cells differ by at most one pixel.
  for (int y = 0; y < height; ++y) {
    row_of_y_[y] = static_cast<int>((2 * y + 1) * rows / (2 * height));
  }
  for (int x = 0; x < width; ++x) {
    col_of_x_[x] = static_cast<int>((2 * x + 1) * cols / (2 * width));
  }
}

void CellRenderer::Render(const Rgb* cells, uint8_t* image) const {
  // Pixel rows inside one cell row are identical: draw the first, copy it to the rest.
  const int64_t row_bytes = static_cast<int64_t>(width_) * channels_;
  for (int y = 0; y < height_; ++y) {
    uint8_t* p = image + y * row_bytes;
    if (y > 0 && row_of_y_[y] == row_of_y_[y - 1]) {
      std::memcpy(p, p - row_bytes, row_bytes);
      continue;
    }
    const Rgb* row = cells + row_of_y_[y] * cols_;
    if (channels_ == 3) {
      for (int x = 0; x < width_; ++x) {
        const Rgb& c = row[col_of_x_[x]];
        p[0] = c.r;
        p[1] = c.g;
        p[2] = c.b;
        p += 3;
      }
    } else {
      for (int x = 0; x < width_; ++x) *p++ = Luma(row[col_of_x_[x]]);
    }
  }
}

void CellRenderer::CellBox(int row, int col, int* y0, int* y1, int* x0, int* x1) const {
  // Inverse of the centre mapping in the constructor.
  *y0 = 0;
  while (*y0 < height_ && row_of_y_[*y0] < row) ++*y0;
  *y1 = *y0;
  while (*y1 < height_ && row_of_y_[*y1] == row) ++*y1;
  *x0 = 0;
  while (*x0 < width_ && col_of_x_[*x0] < col) ++*x0;
  *x1 = *x0;
  while (*x1 < width_ && col_of_x_[*x1] == col) ++*x1;
}

void CellRenderer::SetPixel(int y, int x, Rgb color, uint8_t* image) const {
  uint8_t* p = image + (static_cast<int64_t>(y) * width_ + x) * channels_;
  if (channels_ == 3) {
    p[0] = color.r;
    p[1] = color.g;
    p[2] = color.b;
  } else {
    p[0] = Luma(color);
  }
}

}  // namespace dreamfleet::envs
