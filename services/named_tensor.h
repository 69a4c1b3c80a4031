// NamedTensor: a named, dense, row-major tensor as plain bytes (no LibTorch), the one in-memory
// tensor type outside LibTorch: replay chunks and batches (replay client), policy weights (the
// broadcast) and step records (step_record.h) all carry their data as NamedTensors. The wire form
// is v1::TensorProto (tensor_codec.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dreamfleet/v1/tensor.pb.h"

namespace dreamfleet::services {

struct NamedTensor {
  std::string name;
  v1::DType dtype = v1::DTYPE_UNSPECIFIED;
  std::vector<int64_t> shape;
  std::string data;  // prod(shape) * DTypeSize(dtype) bytes, little-endian
};

// The tensor named `name` in `tensors`, or nullptr.
inline const NamedTensor* FindTensor(const std::vector<NamedTensor>& tensors,
                                     const std::string& name) {
  for (const NamedTensor& tensor : tensors) {
    if (tensor.name == name) return &tensor;
  }
  return nullptr;
}

}  // namespace dreamfleet::services
