// Converts the policy's named torch tensors to and from services::WeightsVersion, the torch-free
// form the ParameterService broadcasts. Learner: ExportPolicyWeights -> ToWeightsVersion ->
// Publish. Actor: WeightsAssembler -> FromWeightsVersion -> ImportPolicyWeights.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "learner/policy.h"
#include "services/weights.h"

namespace dreamfleet::learner {

// Copies CPU-contiguous float32/int32/uint8/bool tensors into buffers; other dtypes are an error.
absl::StatusOr<std::shared_ptr<const services::WeightsVersion>> ToWeightsVersion(
    const NamedTensors& tensors, int64_t version, std::string model_config);

// Tensors owning copies of the buffers' bytes, in the same order.
absl::StatusOr<NamedTensors> FromWeightsVersion(const services::WeightsVersion& weights);

}  // namespace dreamfleet::learner
