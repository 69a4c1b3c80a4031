#include "learner/sequence_replay.h"

#include <algorithm>
#include <cstring>

namespace dreamfleet::learner {

SequenceReplay::SequenceReplay(const AgentConfig& c, int streams, int64_t capacity, uint64_t seed)
    : config_(c),
      capacity_(capacity),
      image_bytes_(static_cast<int64_t>(c.image_height) * c.image_width * c.image_channels),
      streams_(streams),
      rng_(seed) {
  for (auto& s : streams_) {
    s.image.resize(capacity * image_bytes_);
    s.vector.resize(capacity * c.vector_size);
    s.text.resize(capacity * c.text_length);
    s.action.resize(capacity);
    s.reward.resize(capacity);
    s.is_first.resize(capacity);
    s.is_last.resize(capacity);
    s.is_terminal.resize(capacity);
  }
}

void SequenceReplay::Add(int stream, const ReplayStep& step) {
  Stream& s = streams_[stream];
  const int64_t i = s.next;
  if (image_bytes_ > 0) std::memcpy(&s.image[i * image_bytes_], step.image, image_bytes_);
  if (config_.vector_size > 0) {
    std::memcpy(&s.vector[i * config_.vector_size], step.vector,
                sizeof(float) * config_.vector_size);
  }
  if (config_.text_length > 0) {
    std::memcpy(&s.text[i * config_.text_length], step.text,
                sizeof(int32_t) * config_.text_length);
  }
  s.action[i] = step.action;
  s.reward[i] = step.reward;
  s.is_first[i] = step.is_first;
  s.is_last[i] = step.is_last;
  s.is_terminal[i] = step.is_terminal;
  s.next = (i + 1) % capacity_;
  s.count = std::min(s.count + 1, capacity_);
}

bool SequenceReplay::CanSample(int64_t length) const {
  return std::any_of(streams_.begin(), streams_.end(),
                     [&](const Stream& s) { return s.count >= length; });
}

int64_t SequenceReplay::size() const {
  int64_t n = 0;
  for (const auto& s : streams_) n += s.count;
  return n;
}

Batch SequenceReplay::Sample(int64_t batch, int64_t length) {
  // Each stream is weighted by its number of complete windows.
  std::vector<double> weights;
  for (const auto& s : streams_) weights.push_back(std::max<int64_t>(0, s.count - length + 1));
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  const auto& c = config_;
  Batch b;
  if (image_bytes_ > 0) {
    b.image = torch::empty({batch, length, c.image_height, c.image_width, c.image_channels},
                           torch::kUInt8);
  }
  if (c.vector_size > 0) b.vector = torch::empty({batch, length, c.vector_size});
  if (c.text_length > 0) b.text = torch::empty({batch, length, c.text_length}, torch::kInt32);
  b.action = torch::empty({batch, length}, torch::kLong);
  b.reward = torch::empty({batch, length});
  b.is_first = torch::empty({batch, length}, torch::kBool);
  b.is_last = torch::empty({batch, length}, torch::kBool);
  b.is_terminal = torch::empty({batch, length}, torch::kBool);
  auto* image = image_bytes_ > 0 ? b.image.data_ptr<uint8_t>() : nullptr;
  auto* action = b.action.data_ptr<int64_t>();
  auto* reward = b.reward.data_ptr<float>();
  auto* first = b.is_first.data_ptr<bool>();
  auto* last = b.is_last.data_ptr<bool>();
  auto* term = b.is_terminal.data_ptr<bool>();
  for (int64_t row = 0; row < batch; ++row) {
    const Stream& s = streams_[pick(rng_)];
    std::uniform_int_distribution<int64_t> start_dist(0, s.count - length);
    const int64_t oldest = s.count < capacity_ ? 0 : s.next;
    const int64_t start = oldest + start_dist(rng_);
    for (int64_t t = 0; t < length; ++t) {
      const int64_t i = (start + t) % capacity_;
      const int64_t o = row * length + t;
      if (image) std::memcpy(image + o * image_bytes_, &s.image[i * image_bytes_], image_bytes_);
      if (c.vector_size > 0) {
        std::memcpy(b.vector.data_ptr<float>() + o * c.vector_size, &s.vector[i * c.vector_size],
                    sizeof(float) * c.vector_size);
      }
      if (c.text_length > 0) {
        std::memcpy(b.text.data_ptr<int32_t>() + o * c.text_length, &s.text[i * c.text_length],
                    sizeof(int32_t) * c.text_length);
      }
      action[o] = s.action[i];
      reward[o] = s.reward[i];
      first[o] = s.is_first[i];
      last[o] = s.is_last[i];
      term[o] = s.is_terminal[i];
    }
  }
  return b;
}

}  // namespace dreamfleet::learner
