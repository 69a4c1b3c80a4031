// StepColumns: the steps of one stream stored field by field, with the dtype and per-step shape
// of every field of the step record (step_record.h), and their NamedTensor form [n, ...].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dreamfleet/v1/tensor.pb.h"
#include "services/named_tensor.h"
#include "services/step_record.h"

namespace dreamfleet::services {

struct StepFieldSpec {
  const char* name;
  v1::DType dtype;
  std::vector<int64_t> shape;  // per step
  int64_t step_bytes;          // bytes of one step of this field
};

// The fields a step of `shape` carries, in record order: the observations it has, then action,
// reward, is_first, is_last, is_terminal.
std::vector<StepFieldSpec> StepFields(const StepShape& shape);

// Steps of one stream stored field by field (one contiguous byte column per field). Used as an
// append buffer (ChunkBuilder) or, with Write at a ring position, as a ring (SequenceReplay).
class StepColumns {
 public:
  explicit StepColumns(const StepShape& shape);

  const std::vector<StepFieldSpec>& fields() const { return fields_; }
  int64_t size() const { return size_; }

  // Appends `step` as step size().
  void Append(const StepRecord& step);
  // Writes `step` as step `index` (< size(), or == size() to append; anything else aborts).
  void Write(int64_t index, const StepRecord& step);
  // Makes room for `steps` steps without changing size().
  void Reserve(int64_t steps);
  void Clear();

  // The bytes of step `index` of field `field` (fields() order).
  const char* Row(size_t field, int64_t index) const {
    return columns_[field].data() + index * fields_[field].step_bytes;
  }

  // Every field as a [size(), ...] tensor (copies).
  std::vector<NamedTensor> ToTensors() const;

 private:
  std::vector<StepFieldSpec> fields_;
  std::vector<std::string> columns_;
  int64_t size_ = 0;
};

}  // namespace dreamfleet::services
