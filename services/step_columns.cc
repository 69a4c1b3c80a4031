#include "services/step_columns.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace dreamfleet::services {

std::vector<StepFieldSpec> StepFields(const StepShape& s) {
  std::vector<StepFieldSpec> fields;
  if (s.image_height > 0 && s.image_width > 0 && s.image_channels > 0) {
    fields.push_back({step_field::kImage,
                      v1::DTYPE_UINT8,
                      {s.image_height, s.image_width, s.image_channels},
                      int64_t{s.image_height} * s.image_width * s.image_channels});
  }
  if (s.vector_size > 0) {
    fields.push_back(
        {step_field::kVector, v1::DTYPE_FLOAT32, {s.vector_size}, int64_t{s.vector_size} * 4});
  }
  if (s.text_length > 0) {
    fields.push_back(
        {step_field::kText, v1::DTYPE_INT32, {s.text_length}, int64_t{s.text_length} * 4});
  }
  fields.push_back({step_field::kAction, v1::DTYPE_INT32, {}, 4});
  fields.push_back({step_field::kReward, v1::DTYPE_FLOAT32, {}, 4});
  fields.push_back({step_field::kIsFirst, v1::DTYPE_BOOL, {}, 1});
  fields.push_back({step_field::kIsLast, v1::DTYPE_BOOL, {}, 1});
  fields.push_back({step_field::kIsTerminal, v1::DTYPE_BOOL, {}, 1});
  return fields;
}

StepColumns::StepColumns(const StepShape& shape)
    : fields_(StepFields(shape)), columns_(fields_.size()) {}

void StepColumns::Append(const StepRecord& step) { Write(size_, step); }

void StepColumns::Write(int64_t index, const StepRecord& step) {
  if (index < 0 || index > size_) {  // a caller's bug: never write outside the columns
    std::fprintf(stderr, "StepColumns::Write: index %lld outside [0, %lld]\n",
                 static_cast<long long>(index), static_cast<long long>(size_));
    std::abort();
  }
  if (index == size_) {
    for (size_t f = 0; f < fields_.size(); ++f)
      columns_[f].resize((size_ + 1) * fields_[f].step_bytes);
    ++size_;
  }
  const bool flags[3] = {step.is_first, step.is_last, step.is_terminal};
  for (size_t f = 0; f < fields_.size(); ++f) {
    const StepFieldSpec& field = fields_[f];
    char* out = columns_[f].data() + index * field.step_bytes;
    const std::string_view name = field.name;
    const void* in = nullptr;
    uint8_t flag = 0;
    if (name == step_field::kImage) {
      in = step.image;
    } else if (name == step_field::kVector) {
      in = step.vector;
    } else if (name == step_field::kText) {
      in = step.text;
    } else if (name == step_field::kAction) {
      in = &step.action;
    } else if (name == step_field::kReward) {
      in = &step.reward;
    } else {
      const size_t which = name == step_field::kIsFirst ? 0 : name == step_field::kIsLast ? 1 : 2;
      flag = flags[which] ? 1 : 0;
      in = &flag;
    }
    std::memcpy(out, in, field.step_bytes);
  }
}

void StepColumns::Reserve(int64_t steps) {
  for (size_t f = 0; f < fields_.size(); ++f) columns_[f].reserve(steps * fields_[f].step_bytes);
}

void StepColumns::Clear() {
  for (std::string& column : columns_) column.clear();
  size_ = 0;
}

std::vector<NamedTensor> StepColumns::ToTensors() const {
  std::vector<NamedTensor> tensors;
  tensors.reserve(fields_.size());
  for (size_t f = 0; f < fields_.size(); ++f) {
    NamedTensor tensor;
    tensor.name = fields_[f].name;
    tensor.dtype = fields_[f].dtype;
    tensor.shape.push_back(size_);
    tensor.shape.insert(tensor.shape.end(), fields_[f].shape.begin(), fields_[f].shape.end());
    tensor.data.assign(columns_[f].data(), size_ * fields_[f].step_bytes);
    tensors.push_back(std::move(tensor));
  }
  return tensors;
}

}  // namespace dreamfleet::services
