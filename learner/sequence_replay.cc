#include "learner/sequence_replay.h"

#include <algorithm>
#include <cstring>

namespace dreamfleet::learner {

SequenceReplay::SequenceReplay(const dreamer::AgentConfig& c, int streams, int64_t capacity,
                               uint64_t seed)
    : capacity_(capacity), rng_(seed) {
  const services::StepShape shape = dreamer::StepShapeOf(c);
  for (int i = 0; i < streams; ++i) {
    streams_.emplace_back(shape);
    streams_.back().steps.Reserve(capacity);
  }
}

void SequenceReplay::Add(int stream, const services::StepRecord& step) {
  Stream& s = streams_[stream];
  s.steps.Write(s.next, step);  // appends until the ring is full, then overwrites the oldest
  s.next = (s.next + 1) % capacity_;
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

dreamer::Batch SequenceReplay::Sample(int64_t batch, int64_t length) {
  // Each stream is weighted by its number of complete windows.
  std::vector<double> weights;
  for (const auto& s : streams_) weights.push_back(std::max<int64_t>(0, s.count - length + 1));
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  const std::vector<services::StepFieldSpec>& fields = streams_.front().steps.fields();
  std::vector<services::NamedTensor> out(fields.size());
  for (size_t f = 0; f < fields.size(); ++f) {
    out[f].name = fields[f].name;
    out[f].dtype = fields[f].dtype;
    out[f].shape = {batch, length};
    out[f].shape.insert(out[f].shape.end(), fields[f].shape.begin(), fields[f].shape.end());
    out[f].data.resize(batch * length * fields[f].step_bytes);
  }
  for (int64_t row = 0; row < batch; ++row) {
    const Stream& s = streams_[pick(rng_)];
    std::uniform_int_distribution<int64_t> start_dist(0, s.count - length);
    const int64_t oldest = s.count < capacity_ ? 0 : s.next;
    const int64_t start = oldest + start_dist(rng_);
    for (int64_t t = 0; t < length; ++t) {
      const int64_t i = (start + t) % capacity_;
      const int64_t o = row * length + t;
      for (size_t f = 0; f < fields.size(); ++f) {
        std::memcpy(out[f].data.data() + o * fields[f].step_bytes, s.steps.Row(f, i),
                    fields[f].step_bytes);
      }
    }
  }
  // The fields are built from the config's own step shape: they always form a valid batch.
  return *dreamer::BatchFromFields(out);
}

}  // namespace dreamfleet::learner
