#include "dreamer/tensor_convert.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "services/status_macros.h"

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
      return absl::InvalidArgumentError(absl::StrCat(
          "dtype ", c10::toString(type), " has no wire form (float32, int32, uint8 and bool do)"));
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

absl::StatusOr<services::NamedTensor> ToNamedTensor(const std::string& name,
                                                    const torch::Tensor& tensor) {
  absl::StatusOr<v1::DType> dtype = WireDType(tensor.scalar_type());
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", name, "\": ", dtype.status().message()));
  }
  torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
  services::NamedTensor named;
  named.name = name;
  named.dtype = *dtype;
  named.shape.assign(cpu.sizes().begin(), cpu.sizes().end());
  named.data.assign(static_cast<const char*>(cpu.data_ptr()), cpu.nbytes());
  return named;
}

absl::StatusOr<torch::Tensor> ToTorch(const services::NamedTensor& named) {
  absl::StatusOr<torch::ScalarType> type = TorchDType(named.dtype);
  if (!type.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", named.name, "\": ", type.status().message()));
  }
  for (int64_t dim : named.shape) {
    if (dim < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", named.name, "\" has a negative dimension"));
    }
  }
  torch::Tensor tensor = torch::empty(named.shape, torch::TensorOptions().dtype(*type));
  if (static_cast<size_t>(tensor.nbytes()) != named.data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", named.name, "\" has ",
                                                   named.data.size(), " bytes, its shape needs ",
                                                   tensor.nbytes()));
  }
  std::memcpy(tensor.data_ptr(), named.data.data(), named.data.size());
  return tensor;
}

absl::StatusOr<std::vector<services::NamedTensor>> ToNamedTensors(const NamedTensors& tensors) {
  std::vector<services::NamedTensor> out;
  out.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    ASSIGN_OR_RETURN(services::NamedTensor named, ToNamedTensor(name, tensor));
    out.push_back(std::move(named));
  }
  return out;
}

absl::StatusOr<NamedTensors> FromNamedTensors(const std::vector<services::NamedTensor>& tensors) {
  NamedTensors out;
  out.reserve(tensors.size());
  for (const services::NamedTensor& named : tensors) {
    ASSIGN_OR_RETURN(torch::Tensor tensor, ToTorch(named));
    out.emplace_back(named.name, std::move(tensor));
  }
  return out;
}

}  // namespace dreamfleet::dreamer
