#include "replay_server/image_export.h"

#include <png.h>

#include <cstring>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::replay {
namespace {

Frames Gradient(int count, int h, int w) {
  Frames frames;
  frames.height = h;
  frames.width = w;
  for (int f = 0; f < count; ++f) {
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        frames.data.push_back(static_cast<uint8_t>(x * 255 / (w - 1)));
        frames.data.push_back(static_cast<uint8_t>(y * 255 / (h - 1)));
        frames.data.push_back(static_cast<uint8_t>(f * 40));
      }
    }
  }
  return frames;
}

TEST(ImageExportTest, QuantizerMapsCubeCornersExactly) {
  uint8_t rgb[3];
  for (int index : {0, 251, int{QuantizeRgb(255, 0, 0)}, int{QuantizeRgb(0, 255, 255)}}) {
    PaletteColor(index, rgb);
    EXPECT_EQ(QuantizeRgb(rgb[0], rgb[1], rgb[2]), index);
  }
  EXPECT_EQ(QuantizeRgb(255, 255, 255), 251);
}

TEST(ImageExportTest, LzwRoundTripsIncludingTableResets) {
  std::vector<uint8_t> indices;
  std::mt19937 rng(5);
  for (int i = 0; i < 200000; ++i) indices.push_back(rng() % 7 == 0 ? rng() % 252 : i / 300 % 252);
  absl::StatusOr<std::vector<uint8_t>> decoded = LzwDecode(LzwEncode(indices));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, indices);
  decoded = LzwDecode(LzwEncode({}));
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->empty());
}

TEST(ImageExportTest, GifHasHeaderFramesAndTrailer) {
  absl::StatusOr<std::string> gif = EncodeGif(Gradient(3, 16, 24), 10);
  ASSERT_TRUE(gif.ok()) << gif.status();
  EXPECT_EQ(gif->substr(0, 6), "GIF89a");
  EXPECT_EQ(static_cast<uint8_t>((*gif)[6]), 24);  // width
  EXPECT_EQ(static_cast<uint8_t>((*gif)[8]), 16);  // height
  EXPECT_EQ(gif->back(), ';');
  size_t frames = 0;
  for (size_t pos = 0; (pos = gif->find(std::string("\x21\xF9\x04", 3), pos)) != std::string::npos; ++pos) {
    ++frames;
  }
  EXPECT_EQ(frames, 3u);
  EXPECT_TRUE(absl::IsInvalidArgument(EncodeGif(Frames()).status()));
}

TEST(ImageExportTest, PngGridDecodesToTheFrames) {
  const Frames frames = Gradient(5, 8, 8);
  absl::StatusOr<std::string> png = EncodePngGrid(frames, 2);
  ASSERT_TRUE(png.ok()) << png.status();
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_memory(&image, png->data(), png->size()));
  image.format = PNG_FORMAT_RGB;
  EXPECT_EQ(image.width, 16u);   // 2 per row
  EXPECT_EQ(image.height, 24u);  // 3 rows
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  ASSERT_TRUE(png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr));
  // Frame 3 sits at row 1, column 1; its pixel (2, 5) is frames.data of frame 3.
  const size_t src = ((3 * 8 + 2) * 8 + 5) * 3;
  const size_t dst = ((8 + 2) * 16 + 8 + 5) * 3;
  for (int c = 0; c < 3; ++c) EXPECT_EQ(pixels[dst + c], frames.data[src + c]);
}

}  // namespace
}  // namespace dreamfleet::replay
