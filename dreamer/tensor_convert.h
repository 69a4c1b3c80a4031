// Converts between LibTorch tensors and services::NamedTensor, the torch-free form the rest of
// dreamfleet carries: the policy weights the learner broadcasts (learner: ExportPolicyWeights ->
// ToNamedTensors -> broadcast::WeightsVersion; actor: WeightsVersion -> FromNamedTensors ->
// ImportPolicyWeights) and the batches replay hands out (BatchFromFields in batch.h).
// float32, int32, uint8 and bool tensors convert; other dtypes are an error naming the tensor.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dreamer/policy.h"
#include "services/named_tensor.h"

namespace dreamfleet::dreamer {

// A copy of `tensor` (moved to the CPU, made contiguous) named `name`.
absl::StatusOr<services::NamedTensor> ToNamedTensor(const std::string& name,
                                                    const torch::Tensor& tensor);
// A CPU tensor owning a copy of `named`'s bytes; INVALID_ARGUMENT when the byte count does not
// match the shape and dtype.
absl::StatusOr<torch::Tensor> ToTorch(const services::NamedTensor& named);

// Every tensor of `tensors`, in order.
absl::StatusOr<std::vector<services::NamedTensor>> ToNamedTensors(const NamedTensors& tensors);
absl::StatusOr<NamedTensors> FromNamedTensors(const std::vector<services::NamedTensor>& tensors);

}  // namespace dreamfleet::dreamer
