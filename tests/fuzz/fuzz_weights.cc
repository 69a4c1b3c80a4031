// Fuzz target: the actors' weights assembler, which turns the learner's ParameterUpdate stream
// back into policy weights. Each message of the input (fuzz_input.h) is a serialized
// v1::ParameterUpdate added to one assembler (tag & 1: the stream breaks first, Reset). Properties
// beyond "no crash, no sanitizer report": every version the assembler completes passes
// ValidateWeights, and splitting it again (at the smallest message size, so tensors are cut)
// assembles back to the same weights, byte for byte.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broadcast/weights.h"
#include "broadcast/weights_test_util.h"
#include "dreamfleet/v1/parameter.pb.h"
#include "tests/fuzz/fuzz_input.h"

namespace dreamfleet::broadcast {
namespace {

std::vector<std::string> Seeds() {
  std::vector<std::string> seeds;
  auto add_version = [](const WeightsVersion& weights, size_t message_bytes, std::string* seed) {
    for (const v1::ParameterUpdate& update : SplitIntoUpdates(weights, message_bytes)) {
      fuzz::AppendMessage(0, update.SerializeAsString(), seed);
    }
  };
  {  // small tensors packed into one message, then a version whose tensor is cut in pieces
    std::string seed;
    add_version(*MakePatternWeights(1, {{"encoder/w", {3, 4}}, {"encoder/b", {4}}}),
                kDefaultUpdateMessageBytes, &seed);
    add_version(*MakePatternWeights(2, {{"policy/w", {40, 40}}, {"policy/b", {40}}}),
                kMinUpdateMessageBytes, &seed);
    seeds.push_back(seed);
  }
  {  // a version broken off after its first part, then a whole one after a reset
    std::string seed;
    std::vector<v1::ParameterUpdate> parts =
        SplitIntoUpdates(*MakePatternWeights(3, {{"w", {30, 30}}}), kMinUpdateMessageBytes);
    fuzz::AppendMessage(0, parts[0].SerializeAsString(), &seed);
    for (size_t i = 0; i < parts.size(); ++i) {
      fuzz::AppendMessage(i == 0 ? 1 : 0, parts[i].SerializeAsString(), &seed);
    }
    seeds.push_back(seed);
  }
  {  // an empty version (no tensors)
    std::string seed;
    add_version(*MakePatternWeights(4, {}), kDefaultUpdateMessageBytes, &seed);
    seeds.push_back(seed);
  }
  return seeds;
}

}  // namespace
}  // namespace dreamfleet::broadcast

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dreamfleet::fuzz::InitializeFuzzer(dreamfleet::broadcast::Seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dreamfleet;
  using namespace dreamfleet::broadcast;
  WeightsAssembler assembler;
  for (const fuzz::Message& message : fuzz::SplitMessages(data, size, 64)) {
    if (message.tag & 1) assembler.Reset();
    v1::ParameterUpdate update;
    if (!update.ParseFromArray(message.bytes.data(), static_cast<int>(message.bytes.size()))) {
      continue;
    }
    absl::StatusOr<std::shared_ptr<const WeightsVersion>> added = assembler.Add(&update);
    if (!added.ok() || *added == nullptr) continue;
    const WeightsVersion& weights = **added;
    absl::Status valid = ValidateWeights(weights);
    FUZZ_CHECK(valid.ok(), absl::StrCat("assembled version ", weights.version,
                                        " does not validate: ", valid.ToString()));
    WeightsAssembler again;
    std::shared_ptr<const WeightsVersion> rebuilt;
    for (v1::ParameterUpdate& part : SplitIntoUpdates(weights, kMinUpdateMessageBytes)) {
      absl::StatusOr<std::shared_ptr<const WeightsVersion>> got = again.Add(&part);
      FUZZ_CHECK(got.ok(), got.status().ToString());
      if (*got != nullptr) rebuilt = *got;
    }
    FUZZ_CHECK(rebuilt != nullptr && SameWeights(*rebuilt, weights),
               absl::StrCat("version ", weights.version, " does not survive a second split"));
  }
  return 0;
}
