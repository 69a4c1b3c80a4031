#include "dreamer/weights_convert.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace dreamfleet::dreamer {
namespace {

absl::StatusOr<v1::DType> WireDType(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return v1::DTYPE_FLOAT32;
    case torch::kInt:
      return v1::DTYPE_INT32;
    case torch::kByte:
      return v1::DTYPE_UINT8;
    case torch::kBool:
      return v1::DTYPE_BOOL;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("dtype ", c10::toString(type), " cannot be broadcast"));
  }
}

absl::StatusOr<torch::ScalarType> TorchDType(v1::DType dtype) {
  switch (dtype) {
    case v1::DTYPE_FLOAT32:
      return torch::kFloat;
    case v1::DTYPE_INT32:
      return torch::kInt;
    case v1::DTYPE_UINT8:
      return torch::kByte;
    case v1::DTYPE_BOOL:
      return torch::kBool;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported dtype ", static_cast<int>(dtype)));
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<const broadcast::WeightsVersion>> ToWeightsVersion(
    const NamedTensors& tensors, int64_t version, std::string model_config) {
  auto weights = std::make_shared<broadcast::WeightsVersion>();
  weights->version = version;
  weights->model_config = std::move(model_config);
  weights->tensors.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    absl::StatusOr<v1::DType> dtype = WireDType(tensor.scalar_type());
    if (!dtype.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", name, "\": ", dtype.status().message()));
    }
    torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
    services::NamedTensor buffer;
    buffer.name = name;
    buffer.dtype = *dtype;
    buffer.shape.assign(cpu.sizes().begin(), cpu.sizes().end());
    buffer.data.assign(static_cast<const char*>(cpu.data_ptr()), cpu.nbytes());
    weights->tensors.push_back(std::move(buffer));
  }
  return std::shared_ptr<const broadcast::WeightsVersion>(std::move(weights));
}

absl::StatusOr<NamedTensors> FromWeightsVersion(const broadcast::WeightsVersion& weights) {
  NamedTensors tensors;
  tensors.reserve(weights.tensors.size());
  for (const services::NamedTensor& buffer : weights.tensors) {
    absl::StatusOr<torch::ScalarType> type = TorchDType(buffer.dtype);
    if (!type.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", buffer.name, "\": ", type.status().message()));
    }
    torch::Tensor tensor = torch::empty(buffer.shape, torch::TensorOptions().dtype(*type));
    if (static_cast<size_t>(tensor.nbytes()) != buffer.data.size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", buffer.name, "\" has ",
                                                     buffer.data.size(), " bytes, its shape needs ",
                                                     tensor.nbytes()));
    }
    std::memcpy(tensor.data_ptr(), buffer.data.data(), buffer.data.size());
    tensors.emplace_back(buffer.name, std::move(tensor));
  }
  return tensors;
}

}  // namespace dreamfleet::dreamer
