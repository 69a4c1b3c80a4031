// Policy weights as plain named tensors (services::NamedTensor, no LibTorch), and their wire form.
// Learner: torch tensors -> WeightsVersion -> SplitIntoUpdates -> ParameterUpdate parts 0..n-1.
// Actor:   ParameterUpdate parts -> WeightsAssembler -> WeightsVersion -> torch tensors.
// A tensor larger than one message is cut along its flat byte range; small tensors are packed
// several to a message. Pieces travel in tensor order and, within a tensor, in byte order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dreamfleet/v1/parameter.pb.h"
#include "services/named_tensor.h"

namespace dreamfleet::broadcast {

// One published version of the policy weights. Published and shared as
// std::shared_ptr<const WeightsVersion>; never modified once published.
struct WeightsVersion {
  int64_t version = 0;
  std::string model_config;  // the model options as YAML
  std::vector<services::NamedTensor> tensors;

  size_t total_bytes() const;
};

// A version to publish, from the policy's tensors (dreamer::ToNamedTensors converts LibTorch's).
std::shared_ptr<const WeightsVersion> NewWeightsVersion(int64_t version, std::string model_config,
                                                        std::vector<services::NamedTensor> tensors);

// Checks names (non-empty, unique), dtypes, shapes and byte counts, and version > 0. Messages
// name the tensor and the value seen.
absl::Status ValidateWeights(const WeightsVersion& weights);

// The default size of one ParameterUpdate: well below gRPC's 64 MiB limit, small enough that
// many subscribers interleave on a connection and a receiver never holds much twice.
constexpr size_t kDefaultUpdateMessageBytes = 4 << 20;
// Limits below this are raised to it (the per-piece overhead must fit with room for data).
constexpr size_t kMinUpdateMessageBytes = 4096;

// One piece of the wire form: bytes [offset, offset + length) of weights.tensors[tensor].
struct PiecePlan {
  size_t tensor = 0;
  size_t offset = 0;
  size_t length = 0;
};

// How SplitIntoUpdates cuts `weights`: the pieces of each message, in order. Exposed so a server
// can encode the same messages without copying tensor bytes (broadcast/parameter_service.cc).
std::vector<std::vector<PiecePlan>> PlanUpdates(const WeightsVersion& weights,
                                                size_t max_message_bytes);

// Splits `weights` into the messages of one version, each at most `max_message_bytes` when
// serialized (names up to ~1 KiB). `weights` should pass ValidateWeights. A version with no tensors
// is one message with no pieces. model_config rides on part 0.
std::vector<v1::ParameterUpdate> SplitIntoUpdates(const WeightsVersion& weights,
                                                  size_t max_message_bytes);

// Reassembles versions from ParameterUpdate messages in stream order. Not thread-safe (one
// per stream). Any inconsistency (a part out of order or missing, a version or num_parts that
// changes mid-version, a piece that overlaps, leaves a gap, or overruns its tensor, a total_bytes
// that is not dtype * shape) drops the partial version and returns an error naming what was seen;
// the assembler then waits for part 0 of a version.
class WeightsAssembler {
 public:
  // Consumes `update` (its piece bytes may be moved out). Returns the complete version when
  // `update` is its last part, nullptr when more parts are needed, or an error.
  absl::StatusOr<std::shared_ptr<const WeightsVersion>> Add(v1::ParameterUpdate* update);

  // Drops any partial version (e.g. when the stream breaks).
  void Reset();

  // The version being assembled; 0 when none.
  int64_t pending_version() const { return pending_ ? pending_->version : 0; }

 private:
  absl::Status AddPiece(v1::TensorPiece* piece);
  absl::Status Fail(absl::Status status);

  std::unique_ptr<WeightsVersion> pending_;
  int32_t next_part_ = 0;
  int32_t num_parts_ = 0;
  // Index in pending_->tensors of the tensor whose bytes are still arriving, -1 when none.
  int open_tensor_ = -1;
  uint64_t open_total_bytes_ = 0;
  std::set<std::string> names_;
};

}  // namespace dreamfleet::broadcast
