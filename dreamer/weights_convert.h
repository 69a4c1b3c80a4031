// Converts the policy's named torch tensors to and from broadcast::WeightsVersion, the torch-free
// form the ParameterService broadcasts. Learner: ExportPolicyWeights -> ToWeightsVersion ->
// Publish. Actor: WeightsAssembler -> FromWeightsVersion -> ImportPolicyWeights.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "broadcast/weights.h"
#include "dreamer/policy.h"

namespace dreamfleet::dreamer {

// Copies CPU-contiguous float32/int32/uint8/bool tensors into buffers; other dtypes are an error.
absl::StatusOr<std::shared_ptr<const broadcast::WeightsVersion>> ToWeightsVersion(
    const NamedTensors& tensors, int64_t version, std::string model_config);

// Tensors owning copies of the buffers' bytes, in the same order.
absl::StatusOr<NamedTensors> FromWeightsVersion(const broadcast::WeightsVersion& weights);

}  // namespace dreamfleet::dreamer
