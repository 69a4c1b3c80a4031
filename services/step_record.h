// The step record: what one env step is, everywhere it is stored. DreamerV3's layout: step t holds
// the observation (image, vector, text: whichever the env has), the reward received on arriving
// at it, its flags, and the action then taken in it. The field names, dtypes and per-step shapes
// are defined here once; the actor's chunk builder, the replay table's signature check, the
// learner's batch and train-local's replay all use them.
// Data flow: env batch row -> StepRecord -> StepColumns (step_columns.h: n steps, field by
// field) -> NamedTensors [n, ...] (a replay chunk) or rows copied into a [B, T, ...] batch.
// No protobuf here: the environments use this header without linking gRPC.
#pragma once

#include <cstdint>

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

}  // namespace dreamfleet::services
