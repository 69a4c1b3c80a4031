#include "broadcast/weights.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/status_macros.h"
#include "services/tensor_codec.h"

namespace dreamfleet::broadcast {
namespace {

using services::DTypeName;
using services::DTypeSize;
using services::NumElements;
using services::ShapeString;

// Upper bounds on the serialized size of everything but piece data (tags, varints, lengths).
constexpr size_t kMessageOverhead = 64;
size_t PieceOverhead(const services::NamedTensor& tensor) {
  return 64 + tensor.name.size() + 10 * tensor.shape.size();
}

// A receiver refuses to allocate more than this for one tensor.
constexpr uint64_t kMaxTensorBytes = uint64_t{16} << 30;

// The byte size dtype * shape implies, or an error naming the tensor.
absl::StatusOr<uint64_t> ExpectedBytes(absl::string_view name, v1::DType dtype,
                                       absl::Span<const int64_t> shape) {
  const size_t element_size = DTypeSize(dtype);
  if (element_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", name, "\" has dtype ", DTypeName(dtype)));
  }
  const int64_t elements = NumElements(shape);
  if (elements < 0 || static_cast<uint64_t>(elements) > kMaxTensorBytes / element_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", name, "\" has invalid shape ", ShapeString(shape)));
  }
  return static_cast<uint64_t>(elements) * element_size;
}

}  // namespace

size_t WeightsVersion::total_bytes() const {
  size_t total = 0;
  for (const services::NamedTensor& tensor : tensors) total += tensor.data.size();
  return total;
}

absl::Status ValidateWeights(const WeightsVersion& weights) {
  if (weights.version <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights version must be positive, got ", weights.version));
  }
  std::set<absl::string_view> names;
  for (const services::NamedTensor& tensor : weights.tensors) {
    if (tensor.name.empty()) {
      return absl::InvalidArgumentError("weights contain a tensor with an empty name");
    }
    if (!names.insert(tensor.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("weights contain tensor \"", tensor.name, "\" twice"));
    }
    ASSIGN_OR_RETURN(uint64_t expected, ExpectedBytes(tensor.name, tensor.dtype, tensor.shape));
    if (expected != tensor.data.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor \"", tensor.name, "\" of shape ", ShapeString(tensor.shape), " ",
          DTypeName(tensor.dtype), " needs ", expected, " bytes, has ", tensor.data.size()));
    }
  }
  return absl::OkStatus();
}

std::vector<std::vector<PiecePlan>> PlanUpdates(const WeightsVersion& weights,
                                                size_t max_message_bytes) {
  max_message_bytes = std::max(max_message_bytes, kMinUpdateMessageBytes);
  std::vector<std::vector<PiecePlan>> plan;
  size_t budget = 0;  // bytes left in plan.back()
  auto start_message = [&]() {
    plan.emplace_back();
    budget = max_message_bytes - kMessageOverhead;
    if (plan.size() == 1) budget -= std::min(budget, weights.model_config.size());
  };
  start_message();
  for (size_t t = 0; t < weights.tensors.size(); ++t) {
    const services::NamedTensor& tensor = weights.tensors[t];
    const size_t overhead = PieceOverhead(tensor);
    size_t offset = 0;
    do {
      // A piece needs its overhead plus some data (or all of an empty tensor) to be worth it.
      const size_t wanted = std::min<size_t>(tensor.data.size() - offset, 1024);
      if (budget < overhead + wanted && !plan.back().empty()) start_message();
      const size_t room = budget > overhead ? budget - overhead : 1;  // progress on huge names
      const size_t length = std::min(room, tensor.data.size() - offset);
      plan.back().push_back({t, offset, length});
      offset += length;
      budget -= std::min(budget, overhead + length);
    } while (offset < tensor.data.size());
  }
  return plan;
}

std::vector<v1::ParameterUpdate> SplitIntoUpdates(const WeightsVersion& weights,
                                                  size_t max_message_bytes) {
  const std::vector<std::vector<PiecePlan>> plan = PlanUpdates(weights, max_message_bytes);
  std::vector<v1::ParameterUpdate> updates(plan.size());
  for (size_t m = 0; m < plan.size(); ++m) {
    v1::ParameterUpdate& update = updates[m];
    update.set_version(weights.version);
    update.set_part(static_cast<int32_t>(m));
    update.set_num_parts(static_cast<int32_t>(plan.size()));
    if (m == 0) update.set_model_config(weights.model_config);
    for (const PiecePlan& planned : plan[m]) {
      const services::NamedTensor& tensor = weights.tensors[planned.tensor];
      v1::TensorPiece* piece = update.add_pieces();
      piece->set_name(tensor.name);
      piece->set_dtype(tensor.dtype);
      for (int64_t dim : tensor.shape) piece->add_shape(dim);
      piece->set_offset(planned.offset);
      piece->set_total_bytes(tensor.data.size());
      piece->set_data(tensor.data.data() + planned.offset, planned.length);
    }
  }
  return updates;
}

void WeightsAssembler::Reset() {
  pending_.reset();
  next_part_ = 0;
  num_parts_ = 0;
  open_tensor_ = -1;
  open_total_bytes_ = 0;
  names_.clear();
}

absl::Status WeightsAssembler::Fail(absl::Status status) {
  Reset();
  return status;
}

absl::StatusOr<std::shared_ptr<const WeightsVersion>> WeightsAssembler::Add(
    v1::ParameterUpdate* update) {
  if (update->num_parts() <= 0 || update->part() < 0 || update->part() >= update->num_parts()) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("weights version ", update->version(), ": part ", update->part(), " of ",
                     update->num_parts(), " is not a valid part number")));
  }
  if (pending_ == nullptr) {
    if (update->part() != 0) {
      return Fail(absl::DataLossError(absl::StrCat("weights version ", update->version(),
                                                   ": got part ", update->part(), " of ",
                                                   update->num_parts(), " without part 0")));
    }
    if (update->version() <= 0) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("weights version must be positive, got ", update->version())));
    }
    pending_ = std::make_unique<WeightsVersion>();
    pending_->version = update->version();
    pending_->model_config = std::move(*update->mutable_model_config());
    num_parts_ = update->num_parts();
    next_part_ = 0;
  } else if (update->version() != pending_->version || update->num_parts() != num_parts_ ||
             update->part() != next_part_) {
    return Fail(absl::DataLossError(
        absl::StrCat("weights version ", pending_->version, ": expected part ", next_part_, " of ",
                     num_parts_, ", got version ", update->version(), " part ", update->part(),
                     " of ", update->num_parts(), "; dropping the partial version")));
  }
  for (v1::TensorPiece& piece : *update->mutable_pieces()) {
    absl::Status status = AddPiece(&piece);
    if (!status.ok()) {
      return Fail(absl::DataLossError(absl::StrCat("weights version ", pending_->version, " part ",
                                                   update->part(), ": ", status.message())));
    }
  }
  ++next_part_;
  if (next_part_ < num_parts_) return std::shared_ptr<const WeightsVersion>();
  if (open_tensor_ >= 0) {
    const services::NamedTensor& open = pending_->tensors[open_tensor_];
    return Fail(absl::DataLossError(
        absl::StrCat("weights version ", pending_->version, " ended with tensor \"", open.name,
                     "\" at ", open.data.size(), " of ", open_total_bytes_, " bytes")));
  }
  std::shared_ptr<const WeightsVersion> done(std::move(pending_));
  Reset();
  return done;
}

absl::Status WeightsAssembler::AddPiece(v1::TensorPiece* piece) {
  if (piece->offset() == 0 && open_tensor_ < 0) {
    // The first piece of a new tensor.
    if (piece->name().empty()) return absl::InvalidArgumentError("tensor with an empty name");
    if (names_.count(piece->name()) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", piece->name(), "\" arrived twice"));
    }
    const std::vector<int64_t> shape(piece->shape().begin(), piece->shape().end());
    ASSIGN_OR_RETURN(uint64_t expected, ExpectedBytes(piece->name(), piece->dtype(), shape));
    if (piece->total_bytes() != expected) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", piece->name(), "\" of shape ", ShapeString(shape), " ",
                       DTypeName(piece->dtype()), " needs ", expected, " bytes, total_bytes says ",
                       piece->total_bytes()));
    }
    if (piece->data().size() > piece->total_bytes()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", piece->name(), "\": piece of ",
                                                     piece->data().size(), " bytes overruns its ",
                                                     piece->total_bytes(), " bytes"));
    }
    names_.insert(piece->name());
    services::NamedTensor& tensor = pending_->tensors.emplace_back();
    tensor.name = piece->name();
    tensor.dtype = piece->dtype();
    tensor.shape = shape;
    if (piece->data().size() == piece->total_bytes()) {
      tensor.data = std::move(*piece->mutable_data());  // whole tensor: no copy
      return absl::OkStatus();
    }
    tensor.data.reserve(piece->total_bytes());
    tensor.data.append(piece->data());
    open_tensor_ = static_cast<int>(pending_->tensors.size()) - 1;
    open_total_bytes_ = piece->total_bytes();
    return absl::OkStatus();
  }
  if (open_tensor_ < 0) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", piece->name(),
                                                   "\": piece at offset ", piece->offset(),
                                                   " without the piece at offset 0"));
  }
  services::NamedTensor& tensor = pending_->tensors[open_tensor_];
  if (piece->name() != tensor.name) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", tensor.name, "\" is incomplete at ", tensor.data.size(), " of ",
                     open_total_bytes_, " bytes when a piece of \"", piece->name(), "\" arrived"));
  }
  if (piece->dtype() != tensor.dtype || piece->total_bytes() != open_total_bytes_ ||
      !std::equal(piece->shape().begin(), piece->shape().end(), tensor.shape.begin(),
                  tensor.shape.end())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor \"", tensor.name, "\": piece at offset ", piece->offset(), " says ",
        DTypeName(piece->dtype()), " ",
        ShapeString(std::vector<int64_t>(piece->shape().begin(), piece->shape().end())), " ",
        piece->total_bytes(), " bytes, earlier pieces said ", DTypeName(tensor.dtype), " ",
        ShapeString(tensor.shape), " ", open_total_bytes_, " bytes"));
  }
  if (piece->offset() != tensor.data.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor \"", tensor.name, "\": piece at offset ", piece->offset(), ", expected offset ",
        tensor.data.size(), piece->offset() < tensor.data.size() ? " (overlap)" : " (gap)"));
  }
  if (piece->data().size() > open_total_bytes_ - tensor.data.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor \"", tensor.name, "\": piece of ", piece->data().size(), " bytes at offset ",
        piece->offset(), " overruns its ", open_total_bytes_, " bytes"));
  }
  tensor.data.append(piece->data());
  if (tensor.data.size() == open_total_bytes_) {
    open_tensor_ = -1;
    open_total_bytes_ = 0;
  }
  return absl::OkStatus();
}

std::shared_ptr<const WeightsVersion> NewWeightsVersion(
    int64_t version, std::string model_config, std::vector<services::NamedTensor> tensors) {
  auto weights = std::make_shared<WeightsVersion>();
  weights->version = version;
  weights->model_config = std::move(model_config);
  weights->tensors = std::move(tensors);
  return weights;
}

}  // namespace dreamfleet::broadcast
