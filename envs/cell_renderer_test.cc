#include "envs/cell_renderer.h"

#include <vector>

#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

TEST(CellRendererTest, ScalesCellsToEvenBlocksCoveringTheImage) {
  CellRenderer r(2, 2, 64, 64, 3);
  const Rgb cells[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {1, 2, 3}};
  std::vector<uint8_t> image(64 * 64 * 3);
  r.Render(cells, image.data());
  auto pixel = [&](int y, int x) {
    const uint8_t* p = &image[(y * 64 + x) * 3];
    return Rgb{p[0], p[1], p[2]};
  };
  EXPECT_EQ(pixel(0, 0), cells[0]);
  EXPECT_EQ(pixel(31, 31), cells[0]);
  EXPECT_EQ(pixel(0, 32), cells[1]);
  EXPECT_EQ(pixel(32, 0), cells[2]);
  EXPECT_EQ(pixel(63, 63), cells[3]);
  int y0, y1, x0, x1;
  r.CellBox(1, 0, &y0, &y1, &x0, &x1);
  EXPECT_EQ(y0, 32);
  EXPECT_EQ(y1, 64);
  EXPECT_EQ(x0, 0);
  EXPECT_EQ(x1, 32);
}

TEST(CellRendererTest, UnevenScalingGivesEveryCellSixOrSevenPixels) {
  CellRenderer r(10, 10, 64, 64, 1);
  for (int c = 0; c < 10; ++c) {
    int y0, y1, x0, x1;
    r.CellBox(c, c, &y0, &y1, &x0, &x1);
    EXPECT_GE(y1 - y0, 6);
    EXPECT_LE(y1 - y0, 7);
    EXPECT_EQ(y1 - y0, x1 - x0);
  }
}

TEST(CellRendererTest, GrayscaleUsesLuma) {
  CellRenderer r(1, 1, 8, 8, 1);
  const Rgb white{255, 255, 255}, green{0, 255, 0};
  std::vector<uint8_t> image(64);
  r.Render(&white, image.data());
  EXPECT_EQ(image[63], 255);
  r.Render(&green, image.data());
  EXPECT_EQ(image[0], 150);  // 0.587 * 255
}

}  // namespace
}  // namespace dreamfleet::envs
