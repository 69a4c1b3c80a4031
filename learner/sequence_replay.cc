#include "learner/sequence_replay.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace dreamfleet::learner {

SequenceReplay::SequenceReplay(const dreamer::AgentConfig& c, int streams, int64_t capacity,
                               uint64_t seed, double priority_exponent, double rewarded_share)
    : exponent_(priority_exponent),
      rewarded_share_(rewarded_share),
      capacity_(capacity),
      context_(c.replay_context > 0),
      deter_size_(c.deter),
      stoch_size_(c.stoch),
      classes_(c.classes),
      rng_(seed) {
  // Class indices are stored in a byte: learner.classes is at most 256.
  TORCH_CHECK(!context_ || classes_ <= 256, "replay context stores at most 256 classes");
  const services::StepShape shape = dreamer::StepShapeOf(c);
  for (int i = 0; i < streams; ++i) {
    streams_.emplace_back(shape);
    streams_.back().steps.Reserve(capacity);
  }
  TORCH_CHECK(std::isfinite(exponent_) && exponent_ >= 0.0,
              "priority exponent must be finite and >= 0");
  TORCH_CHECK(rewarded_share_ >= 0.0 && rewarded_share_ <= 1.0, "rewarded share must be in [0, 1]");
  if (prioritized()) {
    weights_.assign(static_cast<size_t>(streams) * capacity, 0.0);
    tree_.assign(weights_.size() + 1, 0.0);
  }
}

void SequenceReplay::SetWeight(int64_t index, double weight) {
  const double delta = weight - weights_[index];
  weights_[index] = weight;
  total_weight_ += delta;
  for (int64_t i = index + 1; i < static_cast<int64_t>(tree_.size()); i += i & -i) {
    tree_[i] += delta;
  }
}

int64_t SequenceReplay::FindByWeight(double u) const {
  // Descends the Fenwick tree: the first index whose prefix sum exceeds u.
  const int64_t n = static_cast<int64_t>(weights_.size());
  int64_t pos = 0, step = 1;
  while (step * 2 <= n) step *= 2;
  for (; step > 0; step /= 2) {
    if (pos + step <= n && tree_[pos + step] <= u) {
      pos += step;
      u -= tree_[pos];
    }
  }
  return std::min(pos, n - 1);
}

double SequenceReplay::weight(int stream, int64_t position) const {
  return prioritized() ? weights_[stream * capacity_ + position] : 1.0;
}

void SequenceReplay::SetLatent(Stream& s, int64_t position, const float* deter,
                               const float* stoch) {
  std::memcpy(s.deter.data() + position * deter_size_, deter, deter_size_ * sizeof(float));
  for (int64_t i = 0; i < stoch_size_; ++i) {
    const float* row = stoch + i * classes_;
    s.stoch[position * stoch_size_ + i] =
        static_cast<uint8_t>(std::max_element(row, row + classes_) - row);
  }
}

void SequenceReplay::Add(int stream, const services::StepRecord& step, const float* deter,
                         const float* stoch) {
  Stream& s = streams_[stream];
  s.steps.Write(s.next, step);  // appends until the ring is full, then overwrites the oldest
  if (context_) {
    TORCH_CHECK(deter != nullptr && stoch != nullptr, "replay context needs the step's latent");
    if (static_cast<int64_t>(s.deter.size()) < (s.next + 1) * deter_size_) {
      s.deter.resize((s.next + 1) * deter_size_);
      s.stoch.resize((s.next + 1) * stoch_size_);
    }
    SetLatent(s, s.next, deter, stoch);
  }
  // The new step (over the evicted oldest one, whose windows are gone) starts at the mean priority.
  if (prioritized()) SetWeight(stream * capacity_ + s.next, std::pow(mean_priority_, exponent_));
  s.next = (s.next + 1) % capacity_;
  s.count = std::min(s.count + 1, capacity_);
  if (step.reward != 0.0f && std::isfinite(step.reward)) s.rewarded.push_back(s.written);
  ++s.written;
  while (!s.rewarded.empty() && s.rewarded.front() < s.written - s.count) s.rewarded.pop_front();
  ++adds_;
}

bool SequenceReplay::CanSample(int64_t length) const {
  const int64_t window = length + (context_ ? 1 : 0);
  return std::any_of(streams_.begin(), streams_.end(),
                     [&](const Stream& s) { return s.count >= window; });
}

int64_t SequenceReplay::size() const {
  int64_t n = 0;
  for (const auto& s : streams_) n += s.count;
  return n;
}

int64_t SequenceReplay::rewarded_steps() const {
  int64_t n = 0;
  for (const auto& s : streams_) n += static_cast<int64_t>(s.rewarded.size());
  return n;
}

bool SequenceReplay::DrawRewarded(int64_t window, int64_t ctx, int* stream, int64_t* start) {
  const int64_t held = rewarded_steps();
  if (held == 0) return false;
  std::uniform_int_distribution<int64_t> pick(0, held - 1);
  // A rewarded step has no window in a stream shorter than one, or (with replay context) as the
  // oldest held step: redraw a few times, then give up for this row.
  for (int attempt = 0; attempt < 8; ++attempt) {
    int64_t k = pick(rng_);
    int i = 0;
    while (k >= static_cast<int64_t>(streams_[i].rewarded.size())) {
      k -= static_cast<int64_t>(streams_[i].rewarded.size());
      ++i;
    }
    const Stream& s = streams_[i];
    const int64_t step = s.rewarded[k], oldest = s.written - s.count;
    const int64_t lo = std::max(oldest, step - window + 1);
    const int64_t hi = std::min(step - ctx, s.written - window);
    if (lo > hi) continue;
    std::uniform_int_distribution<int64_t> first(lo, hi);
    *stream = i;
    *start = first(rng_) % capacity_;
    ++rewarded_draws_;
    return true;
  }
  return false;
}

dreamer::Batch SequenceReplay::Sample(int64_t batch, int64_t length) {
  // With replay context each window has one more step in front: the context.
  const int64_t ctx = context_ ? 1 : 0, window = length + ctx;
  // Each stream is weighted by its number of complete windows.
  std::vector<double> weights;
  for (const auto& s : streams_) weights.push_back(std::max<int64_t>(0, s.count - window + 1));
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  const std::vector<services::StepFieldSpec>& fields = streams_.front().steps.fields();
  std::vector<services::NamedTensor> out(fields.size());
  for (size_t f = 0; f < fields.size(); ++f) {
    out[f].name = fields[f].name;
    out[f].dtype = fields[f].dtype;
    out[f].shape = {batch, window};
    out[f].shape.insert(out[f].shape.end(), fields[f].shape.begin(), fields[f].shape.end());
    out[f].data.resize(batch * window * fields[f].step_bytes);
  }
  torch::Tensor context_deter, context_stoch;
  if (context_) {
    context_deter = torch::empty({batch, deter_size_});
    context_stoch = torch::zeros({batch, stoch_size_, classes_});
  }
  last_sample_.clear();
  for (int64_t row = 0; row < batch; ++row) {
    int stream = pick(rng_);
    int64_t start = -1;
    const bool around_reward = rewarded_share_ > 0.0 &&
                               std::bernoulli_distribution(rewarded_share_)(rng_) &&
                               DrawRewarded(window, ctx, &stream, &start);
    if (!around_reward && prioritized() && total_weight_ > 0) {
      // By priority: a step whose window would run past its stream's newest step is redrawn (the
      // last window - 1 steps of each stream; few against the steps held).
      std::uniform_real_distribution<double> u(0.0, total_weight_);
      for (int attempt = 0; attempt < 64 && start < 0; ++attempt) {
        const int64_t index = FindByWeight(u(rng_));
        const int candidate = static_cast<int>(index / capacity_);
        const Stream& c = streams_[candidate];
        const int64_t position = index % capacity_;
        const int64_t oldest = c.count < capacity_ ? 0 : c.next;
        const int64_t offset = (position - oldest + capacity_) % capacity_;
        if (position < c.count && offset <= c.count - window) {
          stream = candidate;
          start = oldest + offset;
        }
      }
    }
    const Stream& s = streams_[stream];
    if (start < 0) {  // uniform (or no prioritised window found)
      std::uniform_int_distribution<int64_t> start_dist(0, s.count - window);
      const int64_t oldest = s.count < capacity_ ? 0 : s.next;
      start = oldest + start_dist(rng_);
    }
    for (int64_t t = 0; t < window; ++t) {
      const int64_t i = (start + t) % capacity_;
      const int64_t o = row * window + t;
      for (size_t f = 0; f < fields.size(); ++f) {
        std::memcpy(out[f].data.data() + o * fields[f].step_bytes, s.steps.Row(f, i),
                    fields[f].step_bytes);
      }
    }
    if (context_) {
      const int64_t c = start % capacity_;
      std::memcpy(context_deter[row].data_ptr<float>(), s.deter.data() + c * deter_size_,
                  deter_size_ * sizeof(float));
      float* onehot = context_stoch[row].data_ptr<float>();
      for (int64_t i = 0; i < stoch_size_; ++i) {
        onehot[i * classes_ + s.stoch[c * stoch_size_ + i]] = 1.0f;
      }
    }
    last_sample_.push_back({stream, (start + ctx) % capacity_, start % capacity_});
  }
  last_length_ = length;
  adds_at_sample_ = adds_;
  // The fields are built from the config's own step shape: they always form a valid batch.
  dreamer::Batch b = *dreamer::BatchFromFields(out);
  if (!context_) return b;
  b.context_deter = context_deter;
  b.context_stoch = context_stoch;
  b.context_action = b.action.select(1, 0).clone();
  for (torch::Tensor* t : {&b.image, &b.vector, &b.text, &b.action, &b.reward, &b.is_first,
                           &b.is_last, &b.is_terminal}) {
    if (t->defined()) *t = t->narrow(1, 1, length);
  }
  return b;
}

bool SequenceReplay::SetPriorities(const std::vector<double>& losses) {
  if (!prioritized() || adds_ != adds_at_sample_ || losses.size() != last_sample_.size()) {
    return false;
  }
  for (size_t row = 0; row < losses.size(); ++row) {
    if (!std::isfinite(losses[row])) continue;  // keeps the window's previous priority
    const double priority = std::max(losses[row], 1e-6);
    SetWeight(last_sample_[row].stream * capacity_ + last_sample_[row].start,
              std::pow(priority, exponent_));
    // A moving average over the last ~100 windows: the losses fall as the model learns.
    mean_priority_ = priorities_set_++ == 0 ? priority : 0.99 * mean_priority_ + 0.01 * priority;
  }
  return true;
}

bool SequenceReplay::WriteBack(const torch::Tensor& deter, const torch::Tensor& stoch) {
  const int64_t rows = static_cast<int64_t>(last_sample_.size());
  if (!context_ || adds_ != adds_at_sample_ || !deter.defined() || !stoch.defined() ||
      deter.sizes() != torch::IntArrayRef({rows, last_length_, deter_size_}) ||
      stoch.sizes() != torch::IntArrayRef({rows, last_length_, stoch_size_, classes_})) {
    return false;
  }
  const torch::Tensor d = deter.to(torch::kCPU, torch::kFloat).contiguous();
  const torch::Tensor z = stoch.to(torch::kCPU, torch::kFloat).contiguous();
  const float* dp = d.data_ptr<float>();
  const float* zp = z.data_ptr<float>();
  for (int64_t row = 0; row < rows; ++row) {
    Stream& s = streams_[last_sample_[row].stream];
    for (int64_t t = 0; t < last_length_; ++t) {
      const int64_t o = row * last_length_ + t;
      SetLatent(s, (last_sample_[row].first + t) % capacity_, dp + o * deter_size_,
                zp + o * stoch_size_ * classes_);
    }
  }
  return true;
}

}  // namespace dreamfleet::learner
