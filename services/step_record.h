// The step record: what one env step is, everywhere it is stored. DreamerV3's layout: step t holds
// the observation (image, vector, text: whichever the env has), the reward received on arriving
// at it, its flags, and the action then taken in it. The field names, dtypes and per-step shapes
// are defined here once; the actor's chunk builder, the replay table's signature check, the
// learner's batch and train-local's replay all use them.
// Data flow: env batch row -> StepRecord -> StepColumns (n steps, field by field) ->
// NamedTensors [n, ...] (a replay chunk) or rows copied into a [B, T, ...] batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dreamfleet/v1/tensor.pb.h"
#include "services/named_tensor.h"

namespace dreamfleet::services {

namespace step_field {
inline constexpr char kImage[] = "image";             // uint8 [H, W, C]
inline constexpr char kVector[] = "vector";           // float32 [V]
inline constexpr char kText[] = "text";               // int32 [L]
inline constexpr char kAction[] = "action";           // int32 []
inline constexpr char kReward[] = "reward";           // float32 []
inline constexpr char kIsFirst[] = "is_first";        // bool []
inline constexpr char kIsLast[] = "is_last";          // bool []
inline constexpr char kIsTerminal[] = "is_terminal";  // bool []
}  // namespace step_field

// The observation sizes of a stream; a size of 0 means the stream has no such observation.
struct StepShape {
  int image_height = 0;
  int image_width = 0;
  int image_channels = 0;
  int vector_size = 0;
  int text_length = 0;
};

struct StepFieldSpec {
  const char* name;
  v1::DType dtype;
  std::vector<int64_t> shape;  // per step
  int64_t step_bytes;          // bytes of one step of this field
};

// The fields a step of `shape` carries, in record order: the observations it has, then action,
// reward, is_first, is_last, is_terminal.
std::vector<StepFieldSpec> StepFields(const StepShape& shape);

// One step, pointing at caller-owned observation data (null where the shape has none).
struct StepRecord {
  const uint8_t* image = nullptr;  // [H, W, C]
  const float* vector = nullptr;   // [V]
  const int32_t* text = nullptr;   // [L]
  int32_t action = 0;
  float reward = 0.0f;
  bool is_first = false;
  bool is_last = false;
  bool is_terminal = false;
};

// Steps of one stream stored field by field (one contiguous byte column per field). Used as an
// append buffer (ChunkBuilder) or, with Write at a ring position, as a ring (SequenceReplay).
class StepColumns {
 public:
  explicit StepColumns(const StepShape& shape);

  const std::vector<StepFieldSpec>& fields() const { return fields_; }
  int64_t size() const { return size_; }

  // Appends `step` as step size().
  void Append(const StepRecord& step);
  // Writes `step` as step `index` (< size(), or == size() to append).
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
