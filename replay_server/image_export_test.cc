#include "replay_server/image_export.h"

#include <gif_lib.h>
#include <png.h>

#include <algorithm>
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

// What a GIF reader (giflib's decoder) sees in `bytes`.
struct DecodedGif {
  int width = 0, height = 0;
  std::vector<std::vector<uint8_t>> rgb;  // per frame, [height, width, 3]
  std::vector<int> delays_cs;
  bool loops_forever = false;
};

struct MemoryReader {
  const std::string* bytes;
  size_t position = 0;
};

int ReadFromMemory(GifFileType* gif, GifByteType* out, int length) {
  auto* reader = static_cast<MemoryReader*>(gif->UserData);
  const size_t n = std::min<size_t>(length, reader->bytes->size() - reader->position);
  std::memcpy(out, reader->bytes->data() + reader->position, n);
  reader->position += n;
  return static_cast<int>(n);
}

DecodedGif DecodeGif(const std::string& bytes) {
  DecodedGif decoded;
  MemoryReader reader{&bytes};
  int error = 0;
  GifFileType* gif = DGifOpen(&reader, ReadFromMemory, &error);
  EXPECT_NE(gif, nullptr) << GifErrorString(error);
  if (gif == nullptr) return decoded;
  EXPECT_EQ(DGifSlurp(gif), GIF_OK) << GifErrorString(gif->Error);
  decoded.width = gif->SWidth;
  decoded.height = gif->SHeight;
  // giflib files the extensions before an image with that image (the loop before the first).
  if (gif->ImageCount > 0) {
    const SavedImage& first = gif->SavedImages[0];
    for (int i = 0; i + 1 < first.ExtensionBlockCount; ++i) {
      const ExtensionBlock& block = first.ExtensionBlocks[i];
      if (block.Function == APPLICATION_EXT_FUNC_CODE && block.ByteCount == 11 &&
          std::memcmp(block.Bytes, "NETSCAPE2.0", 11) == 0) {
        const ExtensionBlock& loop = first.ExtensionBlocks[i + 1];
        decoded.loops_forever =
            loop.ByteCount == 3 && loop.Bytes[0] == 1 && loop.Bytes[1] == 0 && loop.Bytes[2] == 0;
      }
    }
  }
  for (int f = 0; f < gif->ImageCount; ++f) {
    const SavedImage& image = gif->SavedImages[f];
    const ColorMapObject* map =
        image.ImageDesc.ColorMap ? image.ImageDesc.ColorMap : gif->SColorMap;
    EXPECT_NE(map, nullptr);
    if (map == nullptr) break;
    std::vector<uint8_t> rgb;
    for (int p = 0; p < image.ImageDesc.Width * image.ImageDesc.Height; ++p) {
      const GifColorType& color = map->Colors[image.RasterBits[p]];
      rgb.insert(rgb.end(), {color.Red, color.Green, color.Blue});
    }
    decoded.rgb.push_back(std::move(rgb));
    GraphicsControlBlock timing;
    decoded.delays_cs.push_back(
        DGifSavedExtensionToGCB(gif, f, &timing) == GIF_OK ? timing.DelayTime : -1);
  }
  DGifCloseFile(gif, &error);
  return decoded;
}

// Each pixel of `frames` as the GIF palette shows it.
std::vector<uint8_t> Quantized(const Frames& frames, int f) {
  const size_t pixels = static_cast<size_t>(frames.height) * frames.width;
  std::vector<uint8_t> rgb;
  for (size_t p = 0; p < pixels; ++p) {
    const uint8_t* px = frames.data.data() + (f * pixels + p) * frames.channels;
    uint8_t color[3];
    PaletteColor(
        frames.channels == 3 ? QuantizeRgb(px[0], px[1], px[2]) : QuantizeRgb(px[0], px[0], px[0]),
        color);
    rgb.insert(rgb.end(), color, color + 3);
  }
  return rgb;
}

TEST(ImageExportTest, GifDecodesToTheQuantizedFramesWithTimingAndLoop) {
  const Frames frames = Gradient(3, 16, 24);
  absl::StatusOr<std::string> gif = EncodeGif(frames, 10);
  ASSERT_TRUE(gif.ok()) << gif.status();
  EXPECT_EQ(gif->substr(0, 6), "GIF89a");
  EXPECT_EQ(gif->back(), ';');
  const DecodedGif decoded = DecodeGif(*gif);
  EXPECT_EQ(decoded.width, 24);
  EXPECT_EQ(decoded.height, 16);
  ASSERT_EQ(decoded.rgb.size(), 3u);
  for (int f = 0; f < 3; ++f) EXPECT_EQ(decoded.rgb[f], Quantized(frames, f)) << "frame " << f;
  EXPECT_THAT(decoded.delays_cs, testing::ElementsAre(10, 10, 10));
  EXPECT_TRUE(decoded.loops_forever);
}

TEST(ImageExportTest, GifOfNoisyGreyFramesRoundTrips) {
  // Large noisy frames fill the LZW code table several times over; a grey frame is shown as grey.
  Frames frames;
  frames.height = 200;
  frames.width = 300;
  frames.channels = 1;
  std::mt19937 rng(5);
  for (int i = 0; i < 2 * 200 * 300; ++i) frames.data.push_back(static_cast<uint8_t>(rng()));
  absl::StatusOr<std::string> gif = EncodeGif(frames);
  ASSERT_TRUE(gif.ok()) << gif.status();
  const DecodedGif decoded = DecodeGif(*gif);
  ASSERT_EQ(decoded.rgb.size(), 2u);
  for (int f = 0; f < 2; ++f) EXPECT_EQ(decoded.rgb[f], Quantized(frames, f)) << "frame " << f;
}

TEST(ImageExportTest, GifRefusesEmptyAndOddFrames) {
  EXPECT_TRUE(absl::IsInvalidArgument(EncodeGif(Frames()).status()));
  Frames two_channels = Gradient(1, 4, 4);
  two_channels.channels = 2;
  EXPECT_TRUE(absl::IsInvalidArgument(EncodeGif(two_channels).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(EncodeGif(Gradient(1, 4, 4), -1).status()));
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
