// The input framing every dreamfleet fuzz target shares: a fuzzer input is a run of messages,
// each [u8 tag][u16 little-endian length][length bytes] (a length past the end takes the rest).
// The tag lets the fuzzer choose what happens to a message (which file it goes to, whether the
// stream is reset first); the bytes are usually a serialized protobuf. Seeds are written in the
// same form (AppendMessage) by each target's seed mode (FUZZ_WRITE_SEEDS, see "Fuzzing" in
// README.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "google/protobuf/stubs/logging.h"
#include "services/logging.h"

namespace dreamfleet::fuzz {

struct Message {
  uint8_t tag = 0;
  std::string_view bytes;
};

// At most `max_messages` messages (the rest of the input is ignored).
inline std::vector<Message> SplitMessages(const uint8_t* data, size_t size,
                                          size_t max_messages = 64) {
  std::vector<Message> out;
  size_t at = 0;
  while (at < size && out.size() < max_messages) {
    Message m;
    m.tag = data[at++];
    size_t length = 0;
    if (at + 2 <= size) {
      length = data[at] | (size_t{data[at + 1]} << 8);
      at += 2;
    } else {
      at = size;
    }
    if (length > size - at) length = size - at;
    m.bytes = std::string_view(reinterpret_cast<const char*>(data) + at, length);
    at += length;
    out.push_back(m);
  }
  return out;
}

inline void AppendMessage(uint8_t tag, std::string_view bytes, std::string* out) {
  if (bytes.size() > 0xffff) {
    std::fprintf(stderr, "fuzz seed message of %zu bytes is over the 65535-byte frame\n",
                 bytes.size());
    std::abort();
  }
  out->push_back(static_cast<char>(tag));
  out->push_back(static_cast<char>(bytes.size() & 0xff));
  out->push_back(static_cast<char>(bytes.size() >> 8));
  out->append(bytes);
}

// The seed mode: when FUZZ_WRITE_SEEDS names a directory, `write` fills it and the process exits
// before fuzzing (InitializeFuzzer calls it).
template <typename WriteSeeds>
void MaybeWriteSeeds(WriteSeeds write) {
  const char* dir = std::getenv("FUZZ_WRITE_SEEDS");
  if (dir == nullptr || *dir == '\0') return;
  std::vector<std::string> seeds = write();
  for (size_t i = 0; i < seeds.size(); ++i) {
    const std::string path = std::string(dir) + "/seed-" + std::to_string(i);
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(seeds[i].data(), static_cast<std::streamsize>(seeds[i].size()));
    if (!file) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      std::exit(1);
    }
  }
  std::fprintf(stderr, "wrote %zu seeds to %s\n", seeds.size(), dir);
  std::exit(0);
}

// What every target's LLVMFuzzerInitialize does: only fatal log lines (every input is bad on
// purpose), no protobuf parse errors on stderr (invalid UTF-8 in a string field is a failed parse
// like any other), then the seed mode.
template <typename WriteSeeds>
void InitializeFuzzer(WriteSeeds write) {
  services::SetLogLevel(services::LogSeverity::kFatal);
  google::protobuf::SetLogHandler(nullptr);
  MaybeWriteSeeds(write);
}

// A failed property: prints it and aborts, so libFuzzer keeps the input as a crash.
#define FUZZ_CHECK(condition, what)                                                \
  do {                                                                             \
    if (!(condition)) {                                                            \
      std::fprintf(stderr, "fuzz property failed: %s (%s) at %s:%d\n", #condition, \
                   std::string(what).c_str(), __FILE__, __LINE__);                 \
      std::abort();                                                                \
    }                                                                              \
  } while (0)

}  // namespace dreamfleet::fuzz
