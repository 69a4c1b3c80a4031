#include "actor/chunk_builder.h"


namespace dreamfleet::actor {

ChunkBuilder::ChunkBuilder(std::string stream_id, const EnvSpec& spec, int chunk_steps)
    : stream_id_(std::move(stream_id)), spec_(spec), chunk_steps_(chunk_steps) {
  image_.reserve(static_cast<size_t>(spec.image_bytes()) * chunk_steps);
}

void ChunkBuilder::Append(const uint8_t* image, const float* vector, const int32_t* text,
                          int32_t action, float reward, bool is_first, bool is_last,
                          bool is_terminal) {
  if (spec_.image_bytes() > 0) image_.insert(image_.end(), image, image + spec_.image_bytes());
  if (spec_.vector_size > 0) vector_.insert(vector_.end(), vector, vector + spec_.vector_size);
  if (spec_.text_length > 0) text_.insert(text_.end(), text, text + spec_.text_length);
  action_.push_back(action);
  reward_.push_back(reward);
  is_first_.push_back(is_first);
  is_last_.push_back(is_last);
  is_terminal_.push_back(is_terminal);
  ++size_;
}

replay::StepChunk ChunkBuilder::Take(int64_t weights_version) {
  replay::StepChunk chunk;
  chunk.actor_id = stream_id_;
  chunk.sequence = sequence_++;
  chunk.num_steps = static_cast<uint32_t>(size_);
  chunk.weights_version = weights_version;
  const int64_t n = size_;
  auto add = [&](const char* name, v1::DType dtype, std::vector<int64_t> shape, const void* data,
                 size_t bytes) {
    replay::Tensor tensor;
    tensor.name = name;
    tensor.dtype = dtype;
    tensor.shape = std::move(shape);
    tensor.data.assign(static_cast<const char*>(data), bytes);
    chunk.fields.push_back(std::move(tensor));
  };
  if (spec_.image_bytes() > 0) {  // envs without an image (symbolic gridworlds) send no field
    add("image", v1::DTYPE_UINT8, {n, spec_.image_height, spec_.image_width, spec_.image_channels},
        image_.data(), image_.size());
  }
  if (spec_.vector_size > 0) {
    add("vector", v1::DTYPE_FLOAT32, {n, spec_.vector_size}, vector_.data(),
        vector_.size() * sizeof(float));
  }
  if (spec_.text_length > 0) {
    add("text", v1::DTYPE_INT32, {n, spec_.text_length}, text_.data(),
        text_.size() * sizeof(int32_t));
  }
  add("action", v1::DTYPE_INT32, {n}, action_.data(), action_.size() * sizeof(int32_t));
  add("reward", v1::DTYPE_FLOAT32, {n}, reward_.data(), reward_.size() * sizeof(float));
  add("is_first", v1::DTYPE_BOOL, {n}, is_first_.data(), is_first_.size());
  add("is_last", v1::DTYPE_BOOL, {n}, is_last_.data(), is_last_.size());
  add("is_terminal", v1::DTYPE_BOOL, {n}, is_terminal_.data(), is_terminal_.size());
  size_ = 0;
  image_.clear();
  vector_.clear();
  text_.clear();
  action_.clear();
  reward_.clear();
  is_first_.clear();
  is_last_.clear();
  is_terminal_.clear();
  return chunk;
}

}  // namespace dreamfleet::actor
