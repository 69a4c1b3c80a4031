// A table's signature: the name, dtype and per-step shape of every field a step carries. The first
// accepted chunk fixes it (it is then persisted in every checkpoint and implied by the WAL); every
// later chunk is checked against it. Fields the table understands by name: `is_first` (bool [],
// required: marks episode starts), `is_last` (bool [], optional: marks episode ends) and `reward`
// (float32 [], optional: summed into episode returns), named as the step record names them
// (services/step_record.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dreamfleet/v1/replay.pb.h"
#include "dreamfleet/v1/tensor.pb.h"

namespace dreamfleet::replay {

struct FieldSpec {
  std::string name;
  v1::DType dtype = v1::DTYPE_UNSPECIFIED;
  std::vector<int64_t> shape;  // per step
  size_t step_bytes = 0;       // bytes of one step of this field
};

// The field of `chunk` named `name`, or nullptr.
const v1::NamedTensor* FindField(const v1::Chunk& chunk, const std::string& name);

class Signature {
 public:
  // The signature implied by `chunk` (its tensors' shapes minus the leading step dim). Checks
  // that the chunk is well formed and carries a bool `is_first`.
  static absl::StatusOr<Signature> FromChunk(const v1::Chunk& chunk, const std::string& table);
  static absl::StatusOr<Signature> FromProto(
      const google::protobuf::RepeatedPtrField<v1::TensorSpec>& specs);
  void ToProto(google::protobuf::RepeatedPtrField<v1::TensorSpec>* specs) const;

  // INVALID_ARGUMENT naming the field and the value seen when `chunk` does not match: missing or
  // extra fields, dtype, shape, byte count, num_steps, non-finite float32 values.
  absl::Status Check(const v1::Chunk& chunk, const std::string& table) const;

  const std::vector<FieldSpec>& fields() const { return fields_; }
  // Index of `name` in fields(), -1 when absent.
  int FieldIndex(const std::string& name) const;
  size_t step_bytes() const { return step_bytes_; }
  std::string DebugString() const;

 private:
  std::vector<FieldSpec> fields_;
  size_t step_bytes_ = 0;
};

}  // namespace dreamfleet::replay
