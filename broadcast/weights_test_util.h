// Synthetic weights for tests and benchmarks of the weight broadcast: float32 tensors whose bytes
// depend on the version, the tensor's index and the byte position, so a mixed-up, stale or
// misplaced piece never compares equal.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "broadcast/weights.h"

namespace dreamfleet::broadcast {

struct TensorShape {
  std::string name;
  std::vector<int64_t> shape;
};

inline std::shared_ptr<const WeightsVersion> MakePatternWeights(
    int64_t version, const std::vector<TensorShape>& shapes) {
  auto weights = std::make_shared<WeightsVersion>();
  weights->version = version;
  weights->model_config = "synthetic: true\nversion: " + std::to_string(version) + "\n";
  for (size_t t = 0; t < shapes.size(); ++t) {
    services::NamedTensor& tensor = weights->tensors.emplace_back();
    tensor.name = shapes[t].name;
    tensor.dtype = v1::DTYPE_FLOAT32;
    tensor.shape = shapes[t].shape;
    int64_t elements = 1;
    for (int64_t dim : tensor.shape) elements *= dim;
    tensor.data.resize(static_cast<size_t>(elements) * 4);
    uint64_t state = (static_cast<uint64_t>(version) << 32) ^ (t * 0x9E3779B97F4A7C15ull) ^ 1;
    size_t i = 0;
    for (; i + 8 <= tensor.data.size(); i += 8) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;  // LCG
      const uint64_t word = state ^ (state >> 29);
      std::memcpy(&tensor.data[i], &word, 8);
    }
    for (; i < tensor.data.size(); ++i) tensor.data[i] = static_cast<char>(i * 31 + t);
  }
  return weights;
}

// True when both versions have the same version, config and tensors, byte for byte.
inline bool SameWeights(const WeightsVersion& a, const WeightsVersion& b) {
  if (a.version != b.version || a.model_config != b.model_config ||
      a.tensors.size() != b.tensors.size()) {
    return false;
  }
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const services::NamedTensor& x = a.tensors[i];
    const services::NamedTensor& y = b.tensors[i];
    if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape || x.data != y.data) {
      return false;
    }
  }
  return true;
}

}  // namespace dreamfleet::broadcast
