// Pixel conversion, max-pool, grayscale and area resize on known pixels.
#include "envs/libretro_frame.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

using ::testing::ElementsAre;

TEST(ConvertToRgbTest, Xrgb8888TakesRedGreenBlueBytes) {
  const uint32_t pixels[2] = {0xFF102030u, 0x00FFFF00u};
  uint8_t rgb[6];
  ConvertToRgb(reinterpret_cast<const uint8_t*>(pixels), 2, 1, 8, PixelFormat::kXRGB8888, rgb);
  EXPECT_THAT(rgb, ElementsAre(0x10, 0x20, 0x30, 0xFF, 0xFF, 0x00));
}

TEST(ConvertToRgbTest, Rgb565ExpandsFullScaleToWhiteAndHalfwayByReplication) {
  // white, pure red, pure green, pure blue, (16, 32, 16) mid grey
  const uint16_t pixels[5] = {0xFFFF, 0xF800, 0x07E0, 0x001F,
                              static_cast<uint16_t>((16 << 11) | (32 << 5) | 16)};
  uint8_t rgb[15];
  ConvertToRgb(reinterpret_cast<const uint8_t*>(pixels), 5, 1, 10, PixelFormat::kRGB565, rgb);
  EXPECT_THAT(rgb, ElementsAre(255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 132, 130, 132));
}

TEST(ConvertToRgbTest, Rgb1555IgnoresTopBit) {
  const uint16_t pixels[2] = {0x7C00, static_cast<uint16_t>(0x8000 | 0x03E0)};
  uint8_t rgb[6];
  ConvertToRgb(reinterpret_cast<const uint8_t*>(pixels), 2, 1, 4, PixelFormat::k0RGB1555, rgb);
  EXPECT_THAT(rgb, ElementsAre(255, 0, 0, 0, 255, 0));
}

TEST(ConvertToRgbTest, HonoursRowPitch) {
  // 1x2 image with 8 bytes per row (4 bytes of padding).
  const uint32_t pixels[4] = {0x00010203u, 0xDEADBEEFu, 0x00040506u, 0xDEADBEEFu};
  uint8_t rgb[6];
  ConvertToRgb(reinterpret_cast<const uint8_t*>(pixels), 1, 2, 8, PixelFormat::kXRGB8888, rgb);
  EXPECT_THAT(rgb, ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST(MaxPoolTest, TakesElementwiseMaximumInPlace) {
  uint8_t a[4] = {0, 10, 200, 7};
  const uint8_t b[4] = {5, 3, 255, 7};
  MaxPool(a, b, 4, a);
  EXPECT_THAT(a, ElementsAre(5, 10, 255, 7));
}

TEST(RgbToGrayTest, UsesBt601Weights) {
  const uint8_t rgb[9] = {255, 255, 255, 255, 0, 0, 0, 0, 255};
  uint8_t gray[3];
  RgbToGray(rgb, 3, gray);
  EXPECT_THAT(gray, ElementsAre(255, 76, 29));
}

TEST(AreaResizerTest, IntegerFactorAveragesBlocks) {
  // 4x4 single-channel -> 2x2: each output is the mean of a 2x2 block.
  const uint8_t src[16] = {0, 2, 100, 100, 4, 6, 100, 100, 255, 255, 0, 0, 255, 255, 0, 40};
  uint8_t dst[4];
  AreaResizer resizer(4, 4, 2, 2, 1);
  resizer.Resize(src, dst);
  EXPECT_THAT(dst, ElementsAre(3, 100, 255, 10));
}

TEST(AreaResizerTest, FractionalFactorWeighsPartialCoverage) {
  // 3 pixels -> 2: output 0 covers pixel 0 fully and half of pixel 1.
  const uint8_t src[3] = {0, 90, 180};
  uint8_t dst[2];
  AreaResizer resizer(1, 3, 1, 2, 1);
  resizer.Resize(src, dst);
  EXPECT_THAT(dst, ElementsAre(30, 150));
}

TEST(AreaResizerTest, ConstantImageStaysConstantAtNesSize) {
  std::vector<uint8_t> src(240 * 256 * 3);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i % 3 == 0 ? 17 : 230);
  std::vector<uint8_t> dst(64 * 64 * 3);
  AreaResizer resizer(240, 256, 64, 64, 3);
  resizer.Resize(src.data(), dst.data());
  for (size_t i = 0; i < dst.size(); ++i) {
    ASSERT_EQ(dst[i], i % 3 == 0 ? 17 : 230) << "at " << i;
  }
}

TEST(AreaResizerTest, XrgbPathEqualsConvertThenResize) {
  for (const auto& [h, w] : {std::pair{240, 256}, std::pair{144, 160}, std::pair{7, 9}}) {
    std::vector<uint8_t> xrgb(static_cast<size_t>(h) * w * 4);
    for (size_t i = 0; i < xrgb.size(); ++i) xrgb[i] = static_cast<uint8_t>(i * 37 + i / 7);
    std::vector<uint8_t> rgb(static_cast<size_t>(h) * w * 3);
    ConvertToRgb(xrgb.data(), w, h, static_cast<size_t>(w) * 4, PixelFormat::kXRGB8888, rgb.data());
    std::vector<uint8_t> expected(64 * 64 * 3), got(64 * 64 * 3);
    AreaResizer resizer(h, w, 64, 64, 3);
    resizer.Resize(rgb.data(), expected.data());
    resizer.ResizeXrgb8888(xrgb.data(), got.data());
    EXPECT_EQ(got, expected) << h << "x" << w;
  }
}

TEST(AreaResizerTest, SameSizeIsIdentity) {
  const uint8_t src[6] = {1, 2, 3, 250, 251, 252};
  uint8_t dst[6];
  AreaResizer resizer(1, 2, 1, 2, 3);
  resizer.Resize(src, dst);
  EXPECT_THAT(dst, ElementsAre(1, 2, 3, 250, 251, 252));
}

}  // namespace
}  // namespace dreamfleet::envs
