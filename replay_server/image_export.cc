#include "replay_server/image_export.h"

#include <gif_lib.h>
#include <png.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace dreamfleet::replay {
namespace {

constexpr int kLevels[3] = {6, 7, 6};

int Level(uint8_t v, int levels) { return (v * (levels - 1) + 127) / 255; }

// giflib's output callback: appends to the std::string in UserData.
// No exception may cross giflib's C frames: a failed append reports a short write instead.
int AppendToString(GifFileType* gif, const GifByteType* bytes, int length) {
  try {
    static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(bytes), length);
  } catch (...) {
    return 0;
  }
  return length;
}

absl::Status GifError(const char* step, int code) {
  const char* text = GifErrorString(code);
  return absl::InternalError(absl::StrCat("giflib ", step, ": ", text ? text : "unknown error"));
}

}  // namespace

uint8_t QuantizeRgb(uint8_t r, uint8_t g, uint8_t b) {
  return static_cast<uint8_t>(Level(r, 6) * 42 + Level(g, 7) * 6 + Level(b, 6));
}

void PaletteColor(int index, uint8_t rgb[3]) {
  const int levels[3] = {index / 42, (index / 6) % 7, index % 6};
  for (int c = 0; c < 3; ++c) rgb[c] = static_cast<uint8_t>(levels[c] * 255 / (kLevels[c] - 1));
}

absl::StatusOr<std::string> EncodeGif(const Frames& frames, int delay_cs) {
  if (frames.count() == 0 || frames.width <= 0 || frames.height <= 0 ||
      frames.width > 65535 || frames.height > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write a GIF of ", frames.count(),
                                                   " frames of ", frames.height, "x",
                                                   frames.width));
  }
  if (frames.channels != 1 && frames.channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("frames have ", frames.channels, " channels, expected 1 or 3"));
  }
  if (delay_cs < 0 || delay_cs > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("GIF frame delay ", delay_cs, " cs is outside 0..65535"));
  }
  std::vector<GifColorType> colors(256, GifColorType{0, 0, 0});
  for (int i = 0; i < 252; ++i) {
    uint8_t rgb[3];
    PaletteColor(i, rgb);
    colors[i] = GifColorType{rgb[0], rgb[1], rgb[2]};
  }
  std::unique_ptr<ColorMapObject, void (*)(ColorMapObject*)> palette(
      GifMakeMapObject(256, colors.data()), GifFreeMapObject);
  if (palette == nullptr) return absl::ResourceExhaustedError("giflib: no memory for the palette");

  // Everything that may throw happens before giflib holds resources.
  const size_t pixels = static_cast<size_t>(frames.width) * frames.height;
  std::vector<GifPixelType> indices(pixels);
  std::string out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, AppendToString, &error);
  if (gif == nullptr) return GifError("open", error);
  // EGifCloseFile writes the trailer and frees `gif` on every path.
  auto close = [&gif, &error]() {
    const bool closed = EGifCloseFile(gif, &error) == GIF_OK;
    gif = nullptr;
    return closed;
  };
  auto fail = [&](const char* step) {
    const int code = gif->Error;
    close();
    return GifError(step, code);
  };
  EGifSetGifVersion(gif, true);
  if (EGifPutScreenDesc(gif, frames.width, frames.height, 8, 0, palette.get()) != GIF_OK) {
    return fail("screen descriptor");
  }
  // NETSCAPE2.0 application extension: loop forever.
  static const GifByteType kNetscape[] = {'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0'};
  static const GifByteType kLoopForever[] = {1, 0, 0};
  if (EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) != GIF_OK ||
      EGifPutExtensionBlock(gif, sizeof(kNetscape), kNetscape) != GIF_OK ||
      EGifPutExtensionBlock(gif, sizeof(kLoopForever), kLoopForever) != GIF_OK ||
      EGifPutExtensionTrailer(gif) != GIF_OK) {
    return fail("loop extension");
  }
  GraphicsControlBlock timing;
  timing.DisposalMode = DISPOSE_DO_NOT;
  timing.UserInputFlag = false;
  timing.DelayTime = delay_cs;
  timing.TransparentColor = NO_TRANSPARENT_COLOR;
  GifByteType timing_bytes[4];
  const size_t timing_size = EGifGCBToExtension(&timing, timing_bytes);

  for (int f = 0; f < frames.count(); ++f) {
    const uint8_t* frame = frames.data.data() + f * pixels * frames.channels;
    for (size_t p = 0; p < pixels; ++p) {
      const uint8_t* px = frame + p * frames.channels;
      indices[p] = frames.channels == 3 ? QuantizeRgb(px[0], px[1], px[2])
                                        : QuantizeRgb(px[0], px[0], px[0]);
    }
    if (EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(timing_size),
                         timing_bytes) != GIF_OK) {
      return fail("frame timing");
    }
    if (EGifPutImageDesc(gif, 0, 0, frames.width, frames.height, false, nullptr) != GIF_OK) {
      return fail("image descriptor");
    }
    for (int y = 0; y < frames.height; ++y) {
      if (EGifPutLine(gif, indices.data() + static_cast<size_t>(y) * frames.width, frames.width) !=
          GIF_OK) {
        return fail("pixels");
      }
    }
  }
  if (!close()) return GifError("close", error);
  return out;
}

absl::StatusOr<std::string> EncodePngGrid(const Frames& frames, int per_row) {
  const int count = frames.count();
  if (count == 0 || (frames.channels != 1 && frames.channels != 3)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write a PNG of ", count, " frames with ",
                                                   frames.channels, " channels"));
  }
  per_row = std::max(1, std::min(per_row, count));
  const int rows = (count + per_row - 1) / per_row;
  const int width = per_row * frames.width;
  const int height = rows * frames.height;
  std::vector<uint8_t> image(static_cast<size_t>(width) * height * 3, 0);
  for (int f = 0; f < count; ++f) {
    const int x0 = (f % per_row) * frames.width;
    const int y0 = (f / per_row) * frames.height;
    for (int y = 0; y < frames.height; ++y) {
      for (int x = 0; x < frames.width; ++x) {
        const uint8_t* px =
            frames.data.data() +
            ((static_cast<size_t>(f) * frames.height + y) * frames.width + x) * frames.channels;
        uint8_t* dst = image.data() + ((static_cast<size_t>(y0 + y) * width) + x0 + x) * 3;
        for (int c = 0; c < 3; ++c) dst[c] = px[frames.channels == 3 ? c : 0];
      }
    }
  }
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = width;
  png.height = height;
  png.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, image.data(), 0, nullptr)) {
    return absl::InternalError(absl::StrCat("libpng: ", png.message));
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&png, out.data(), &size, 0, image.data(), 0, nullptr)) {
    return absl::InternalError(absl::StrCat("libpng: ", png.message));
  }
  out.resize(size);
  return out;
}

}  // namespace dreamfleet::replay
