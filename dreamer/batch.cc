#include "dreamer/batch.h"

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dreamer/tensor_convert.h"
#include "services/status_macros.h"

namespace dreamfleet::dreamer {
namespace {

std::string Shape(const torch::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ","), "]");
}

absl::Status CheckShape(const char* name, const torch::Tensor& t, std::vector<int64_t> want) {
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat("batch has no ", name));
  if (t.sizes().vec() != want) {
    return absl::InvalidArgumentError(absl::StrCat("batch ", name, " shape ", Shape(t),
                                                   " does not match expected [",
                                                   absl::StrJoin(want, ","), "]"));
  }
  return absl::OkStatus();
}

torch::Tensor MaybeTo(const torch::Tensor& t, torch::Device device,
                      std::optional<torch::ScalarType> dtype = std::nullopt) {
  if (!t.defined()) return t;
  return dtype ? t.to(device, *dtype) : t.to(device);
}

}  // namespace

Batch Batch::To(torch::Device device) const {
  Batch b;
  b.image = MaybeTo(image, device, torch::kUInt8);
  b.vector = MaybeTo(vector, device, torch::kFloat32);
  b.text = MaybeTo(text, device, torch::kLong);
  b.action = MaybeTo(action, device, torch::kLong);
  b.reward = MaybeTo(reward, device, torch::kFloat32);
  b.is_first = MaybeTo(is_first, device, torch::kBool);
  b.is_last = MaybeTo(is_last, device, torch::kBool);
  b.is_terminal = MaybeTo(is_terminal, device, torch::kBool);
  b.context_deter = MaybeTo(context_deter, device, torch::kFloat32);
  b.context_stoch = MaybeTo(context_stoch, device, torch::kFloat32);
  b.context_action = MaybeTo(context_action, device, torch::kLong);
  return b;
}

absl::Status ValidateBatch(const Batch& b, const AgentConfig& c) {
  if (!b.action.defined()) return absl::InvalidArgumentError("batch has no action");
  if (b.action.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch action shape ", Shape(b.action), " is not [B, T]"));
  }
  const int64_t bs = b.action.size(0), t = b.action.size(1);
  if (t < 2) return absl::InvalidArgumentError("batch length must be at least 2");
  for (auto [name, tensor] : {std::pair<const char*, const torch::Tensor*>{"reward", &b.reward},
                              {"is_first", &b.is_first},
                              {"is_last", &b.is_last},
                              {"is_terminal", &b.is_terminal}}) {
    RETURN_IF_ERROR(CheckShape(name, *tensor, {bs, t}));
  }
  if (c.image_channels > 0) {
    RETURN_IF_ERROR(
        CheckShape("image", b.image, {bs, t, c.image_height, c.image_width, c.image_channels}));
  }
  if (c.vector_size > 0) {
    RETURN_IF_ERROR(CheckShape("vector", b.vector, {bs, t, c.vector_size}));
  }
  if (c.text_length > 0) {
    RETURN_IF_ERROR(CheckShape("text", b.text, {bs, t, c.text_length}));
  }
  const bool context = b.context_deter.defined() || b.context_stoch.defined() ||
                       b.context_action.defined();
  if (context != (c.replay_context > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch ", context ? "has" : "lacks", " a replay context (context_deter, "
                     "context_stoch, context_action) but the agent's replay_context is ",
                     c.replay_context));
  }
  if (context) {
    RETURN_IF_ERROR(CheckShape("context_deter", b.context_deter, {bs, c.deter}));
    RETURN_IF_ERROR(CheckShape("context_stoch", b.context_stoch, {bs, c.stoch, c.classes}));
    RETURN_IF_ERROR(CheckShape("context_action", b.context_action, {bs}));
  }
  auto amin = b.action.min().item<int64_t>(), amax = b.action.max().item<int64_t>();
  if (amin < 0 || amax >= c.num_actions) {
    return absl::InvalidArgumentError(absl::StrCat("batch action values in [", amin, ", ", amax,
                                                   "] outside [0, ", c.num_actions, ")"));
  }
  if (c.vector_size > 0 && c.vector_loss == "binary") {
    // NaN compares false here: non-finite batches are the trainer's to skip.
    auto outside = b.vector.lt(0).logical_or(b.vector.gt(1));
    const int64_t count = outside.sum().item<int64_t>();
    if (count > 0) {
      auto values = b.vector.masked_select(outside).to(torch::kFloat32);
      return absl::InvalidArgumentError(absl::StrCat(
          "batch vector has ", count, " of ", b.vector.numel(), " entries outside [0, 1] (from ",
          values.min().item<float>(), " to ", values.max().item<float>(),
          ") but learner.vector_loss binary needs 0/1 observations; use learner.vector_loss "
          "symlog_mse for this env"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Batch> BatchFromFields(const std::vector<services::NamedTensor>& fields) {
  namespace field = services::step_field;
  struct Field {
    const char* name;
    torch::ScalarType type;
    bool required;
    torch::Tensor Batch::*member;
  };
  static constexpr Field kFields[] = {
      {field::kImage, torch::kByte, false, &Batch::image},
      {field::kVector, torch::kFloat, false, &Batch::vector},
      {field::kText, torch::kInt, false, &Batch::text},
      {field::kAction, torch::kInt, true, &Batch::action},
      {field::kReward, torch::kFloat, true, &Batch::reward},
      {field::kIsFirst, torch::kBool, true, &Batch::is_first},
      {field::kIsLast, torch::kBool, true, &Batch::is_last},
      {field::kIsTerminal, torch::kBool, true, &Batch::is_terminal}};
  Batch batch;
  for (const Field& f : kFields) {
    const services::NamedTensor* named = services::FindTensor(fields, f.name);
    if (named == nullptr) {
      if (f.required) {
        return absl::InvalidArgumentError(absl::StrCat("batch has no field \"", f.name, "\""));
      }
      continue;
    }
    absl::StatusOr<torch::Tensor> tensor = ToTorch(*named);
    if (!tensor.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("batch field: ", tensor.status().message()));
    }
    if (tensor->scalar_type() != f.type) {
      return absl::InvalidArgumentError(absl::StrCat("batch field \"", f.name, "\" is ",
                                                     c10::toString(tensor->scalar_type()), ", not ",
                                                     c10::toString(f.type)));
    }
    batch.*f.member = *std::move(tensor);
  }
  batch.action = batch.action.to(torch::kLong);
  return batch;
}

services::StepShape StepShapeOf(const AgentConfig& c) {
  return {c.image_height, c.image_width, c.image_channels, c.vector_size, c.text_length};
}

Batch RandomBatch(const AgentConfig& c, int64_t bs, int64_t t, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  Batch b;
  if (c.image_channels > 0) {
    b.image = torch::randint(0, 256, {bs, t, c.image_height, c.image_width, c.image_channels}, gen,
                             torch::kUInt8);
  }
  if (c.vector_size > 0) b.vector = torch::randn({bs, t, c.vector_size}, gen);
  if (c.text_length > 0) {
    b.text = torch::randint(0, c.text_vocab, {bs, t, c.text_length}, gen, torch::kLong);
  }
  b.action = torch::randint(0, c.num_actions, {bs, t}, gen, torch::kLong);
  b.reward = (torch::rand({bs, t}, gen) < 0.1).to(torch::kFloat32);
  b.is_first = torch::rand({bs, t}, gen) < 0.05;
  b.is_first.select(1, 0).fill_(true);
  // A step before a first is the last of its episode.
  b.is_last = torch::zeros({bs, t}, torch::kBool);
  b.is_last.narrow(1, 0, t - 1).copy_(b.is_first.narrow(1, 1, t - 1));
  b.is_terminal = b.is_last & (torch::rand({bs, t}, gen) < 0.5);
  return b;
}

}  // namespace dreamfleet::dreamer
