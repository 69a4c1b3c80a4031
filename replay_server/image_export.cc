#include "replay_server/image_export.h"

#include <png.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "absl/strings/str_cat.h"

namespace dreamfleet::replay {
namespace {

constexpr int kLevels[3] = {6, 7, 6};

int Level(uint8_t v, int levels) { return (v * (levels - 1) + 127) / 255; }

void PutU16(std::string* out, int v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
}

// Packs variable-width codes LSB first and splits them into sub-blocks of <= 255 bytes.
class BitWriter {
 public:
  void Write(int code, int bits) {
    buffer_ |= static_cast<uint64_t>(code) << count_;
    count_ += bits;
    while (count_ >= 8) {
      bytes_.push_back(static_cast<char>(buffer_ & 0xff));
      buffer_ >>= 8;
      count_ -= 8;
    }
  }
  std::string Finish() {
    if (count_ > 0) bytes_.push_back(static_cast<char>(buffer_ & 0xff));
    std::string out;
    for (size_t i = 0; i < bytes_.size(); i += 255) {
      const size_t n = std::min<size_t>(255, bytes_.size() - i);
      out.push_back(static_cast<char>(n));
      out.append(bytes_, i, n);
    }
    return out;
  }

 private:
  uint64_t buffer_ = 0;
  int count_ = 0;
  std::string bytes_;
};

}  // namespace

uint8_t QuantizeRgb(uint8_t r, uint8_t g, uint8_t b) {
  return static_cast<uint8_t>(Level(r, 6) * 42 + Level(g, 7) * 6 + Level(b, 6));
}

void PaletteColor(int index, uint8_t rgb[3]) {
  const int levels[3] = {index / 42, (index / 6) % 7, index % 6};
  for (int c = 0; c < 3; ++c) rgb[c] = static_cast<uint8_t>(levels[c] * 255 / (kLevels[c] - 1));
}

std::string LzwEncode(const std::vector<uint8_t>& indices) {
  constexpr int kMinCodeSize = 8;
  constexpr int kClear = 1 << kMinCodeSize;
  constexpr int kEnd = kClear + 1;
  BitWriter writer;
  std::unordered_map<uint32_t, int> table;  // (prefix code << 8 | byte) -> code
  int next_code = kEnd + 1;
  int code_size = kMinCodeSize + 1;
  writer.Write(kClear, code_size);
  if (indices.empty()) {
    writer.Write(kEnd, code_size);
    return writer.Finish();
  }
  int prefix = indices[0];
  for (size_t i = 1; i < indices.size(); ++i) {
    const uint8_t byte = indices[i];
    const uint32_t key = (static_cast<uint32_t>(prefix) << 8) | byte;
    auto it = table.find(key);
    if (it != table.end()) {
      prefix = it->second;
      continue;
    }
    writer.Write(prefix, code_size);
    // Like giflib, code 4095 is never assigned: a full table sends a clear code instead.
    if (next_code < 4095) {
      table.emplace(key, next_code);
      // The decoder widens codes one code later than the encoder adds them.
      if (next_code == (1 << code_size) && code_size < 12) ++code_size;
      ++next_code;
    } else {
      writer.Write(kClear, code_size);
      table.clear();
      next_code = kEnd + 1;
      code_size = kMinCodeSize + 1;
    }
    prefix = byte;
  }
  writer.Write(prefix, code_size);
  writer.Write(kEnd, code_size);
  return writer.Finish();
}

absl::StatusOr<std::vector<uint8_t>> LzwDecode(const std::string& sub_blocks) {
  std::string bytes;
  for (size_t i = 0; i < sub_blocks.size();) {
    const size_t n = static_cast<uint8_t>(sub_blocks[i]);
    if (i + 1 + n > sub_blocks.size()) return absl::DataLossError("truncated sub-block");
    bytes.append(sub_blocks, i + 1, n);
    i += 1 + n;
  }
  constexpr int kClear = 256, kEnd = 257;
  std::vector<std::vector<uint8_t>> table;
  auto reset = [&] {
    table.assign(258, {});
    for (int i = 0; i < 256; ++i) table[i] = {static_cast<uint8_t>(i)};
  };
  reset();
  std::vector<uint8_t> out;
  int code_size = 9;
  size_t bit = 0;
  int previous = -1;
  while (bit + code_size <= bytes.size() * 8) {
    int code = 0;
    for (int b = 0; b < code_size; ++b, ++bit) {
      code |= ((static_cast<uint8_t>(bytes[bit / 8]) >> (bit % 8)) & 1) << b;
    }
    if (code == kClear) {
      reset();
      code_size = 9;
      previous = -1;
      continue;
    }
    if (code == kEnd) return out;
    std::vector<uint8_t> entry;
    if (code < static_cast<int>(table.size())) {
      entry = table[code];
    } else if (code == static_cast<int>(table.size()) && previous >= 0) {
      entry = table[previous];
      entry.push_back(table[previous][0]);
    } else {
      return absl::DataLossError(absl::StrCat("bad LZW code ", code));
    }
    out.insert(out.end(), entry.begin(), entry.end());
    if (previous >= 0 && table.size() < 4096) {
      std::vector<uint8_t> added = table[previous];
      added.push_back(entry[0]);
      table.push_back(std::move(added));
      if (static_cast<int>(table.size()) == (1 << code_size) && code_size < 12) ++code_size;
    }
    previous = code;
  }
  return absl::DataLossError("no end code");
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
  std::string out = "GIF89a";
  PutU16(&out, frames.width);
  PutU16(&out, frames.height);
  out.push_back(static_cast<char>(0xF7));  // global colour table, 8 bits, 256 entries
  out.push_back(0);                        // background colour
  out.push_back(0);                        // aspect ratio
  for (int i = 0; i < 256; ++i) {
    uint8_t rgb[3] = {0, 0, 0};
    if (i < 252) PaletteColor(i, rgb);
    out.append(reinterpret_cast<const char*>(rgb), 3);
  }
  // NETSCAPE2.0 application extension: loop forever.
  out += std::string("\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00", 19);
  const size_t pixels = static_cast<size_t>(frames.width) * frames.height;
  std::vector<uint8_t> indices(pixels);
  for (int f = 0; f < frames.count(); ++f) {
    const uint8_t* frame = frames.data.data() + f * pixels * frames.channels;
    for (size_t p = 0; p < pixels; ++p) {
      const uint8_t* px = frame + p * frames.channels;
      indices[p] = frames.channels == 3 ? QuantizeRgb(px[0], px[1], px[2])
                                        : QuantizeRgb(px[0], px[0], px[0]);
    }
    out += std::string("\x21\xF9\x04\x04", 4);  // graphic control: dispose = leave in place
    PutU16(&out, delay_cs);
    out.push_back(0);  // transparent index (unused)
    out.push_back(0);  // terminator
    out.push_back(0x2C);  // image descriptor
    PutU16(&out, 0);
    PutU16(&out, 0);
    PutU16(&out, frames.width);
    PutU16(&out, frames.height);
    out.push_back(0);  // no local colour table, not interlaced
    out.push_back(8);  // LZW minimum code size
    out += LzwEncode(indices);
    out.push_back(0);  // block terminator
  }
  out.push_back(0x3B);  // trailer
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
