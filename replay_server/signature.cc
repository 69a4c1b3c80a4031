#include "replay_server/signature.h"

#include <cmath>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/logging.h"
#include "services/status_macros.h"
#include "services/step_record.h"
#include "services/tensor_codec.h"

namespace dreamfleet::replay {
namespace {

using services::DTypeName;
using services::DTypeSize;
using services::ShapeString;

absl::Status CheckChunkHeader(const v1::Chunk& chunk, const std::string& table) {
  if (chunk.actor_id().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk for table \"", table, "\" has an empty actor_id"));
  }
  if (chunk.num_steps() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("chunk ", chunk.sequence(), " of actor ",
                                                   services::QuoteClientText(chunk.actor_id()),
                                                   " has num_steps 0"));
  }
  return absl::OkStatus();
}

}  // namespace

const v1::NamedTensor* FindField(const v1::Chunk& chunk, const std::string& name) {
  for (const v1::NamedTensor& t : chunk.data()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

absl::StatusOr<Signature> Signature::FromChunk(const v1::Chunk& chunk, const std::string& table) {
  RETURN_IF_ERROR(CheckChunkHeader(chunk, table));
  google::protobuf::RepeatedPtrField<v1::TensorSpec> specs;
  for (const v1::NamedTensor& named : chunk.data()) {
    v1::TensorSpec* spec = specs.Add();
    spec->set_name(named.name());
    spec->set_dtype(named.tensor().dtype());
    if (named.tensor().shape_size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field \"", named.name(), "\" has shape [] but needs a leading steps dimension"));
    }
    for (int i = 1; i < named.tensor().shape_size(); ++i) spec->add_shape(named.tensor().shape(i));
  }
  ASSIGN_OR_RETURN(Signature signature, FromProto(specs));
  RETURN_IF_ERROR(signature.Check(chunk, table));
  return signature;
}

absl::StatusOr<Signature> Signature::FromProto(
    const google::protobuf::RepeatedPtrField<v1::TensorSpec>& specs) {
  Signature signature;
  std::set<std::string> names;
  for (const v1::TensorSpec& spec : specs) {
    if (spec.name().empty()) return absl::InvalidArgumentError("a field has an empty name");
    if (!names.insert(spec.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", spec.name(), "\" appears twice"));
    }
    FieldSpec field;
    field.name = spec.name();
    field.dtype = spec.dtype();
    if (DTypeSize(field.dtype) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", spec.name(), "\" has dtype ",
                                                     DTypeName(field.dtype)));
    }
    field.shape.assign(spec.shape().begin(), spec.shape().end());
    const int64_t elements = services::NumElements(field.shape);
    if (elements <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", spec.name(), "\" has shape ",
                                                     ShapeString(field.shape), " per step"));
    }
    field.step_bytes = static_cast<size_t>(elements) * DTypeSize(field.dtype);
    signature.step_bytes_ += field.step_bytes;
    signature.fields_.push_back(std::move(field));
  }
  namespace field = services::step_field;
  const int is_first = signature.FieldIndex(field::kIsFirst);
  if (is_first < 0) {
    return absl::InvalidArgumentError(absl::StrCat("the signature has no \"", field::kIsFirst,
                                                   "\" field (bool, shape []); fields seen: [",
                                                   absl::StrJoin(names, ","), "]"));
  }
  for (const char* flag : {field::kIsFirst, field::kIsLast, field::kIsTerminal}) {
    const int index = signature.FieldIndex(flag);
    if (index < 0) continue;
    const FieldSpec& f = signature.fields_[index];
    if (f.dtype != v1::DTYPE_BOOL || !f.shape.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", flag, "\" is ",
                                                     DTypeName(f.dtype), ShapeString(f.shape),
                                                     " per step, expected bool[]"));
    }
  }
  if (const int index = signature.FieldIndex(field::kReward); index >= 0) {
    const FieldSpec& f = signature.fields_[index];
    if (f.dtype != v1::DTYPE_FLOAT32 || !f.shape.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", field::kReward, "\" is ",
                                                     DTypeName(f.dtype), ShapeString(f.shape),
                                                     " per step, expected float32[]"));
    }
  }
  return signature;
}

void Signature::ToProto(google::protobuf::RepeatedPtrField<v1::TensorSpec>* specs) const {
  specs->Clear();
  for (const FieldSpec& field : fields_) {
    v1::TensorSpec* spec = specs->Add();
    spec->set_name(field.name);
    spec->set_dtype(field.dtype);
    for (int64_t d : field.shape) spec->add_shape(d);
  }
}

int Signature::FieldIndex(const std::string& name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::string Signature::DebugString() const {
  std::vector<std::string> parts;
  for (const FieldSpec& f : fields_) {
    parts.push_back(absl::StrCat(f.name, ":", DTypeName(f.dtype), ShapeString(f.shape)));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
}

absl::Status Signature::Check(const v1::Chunk& chunk, const std::string& table) const {
  RETURN_IF_ERROR(CheckChunkHeader(chunk, table));
  std::vector<bool> seen(fields_.size(), false);
  const int64_t steps = chunk.num_steps();
  for (const v1::NamedTensor& named : chunk.data()) {
    const int index = FieldIndex(named.name());
    if (index < 0) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", named.name(),
                                                     "\" is not in the signature of table \"",
                                                     table, "\" ", DebugString()));
    }
    if (seen[index]) {
      return absl::InvalidArgumentError(
          absl::StrCat("field \"", named.name(), "\" appears twice in the chunk"));
    }
    seen[index] = true;
    const FieldSpec& field = fields_[index];
    const v1::TensorProto& tensor = named.tensor();
    if (tensor.dtype() != field.dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field \"", field.name, "\" has dtype ", DTypeName(tensor.dtype()),
          ", expected ", DTypeName(field.dtype), " for table \"", table, "\""));
    }
    std::vector<int64_t> expected = {steps};
    expected.insert(expected.end(), field.shape.begin(), field.shape.end());
    const std::vector<int64_t> shape(tensor.shape().begin(), tensor.shape().end());
    if (shape != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field \"", field.name, "\" has shape ", ShapeString(shape), ", expected ",
          ShapeString(expected), " (num_steps ", steps, ") for table \"", table, "\""));
    }
    const size_t expected_bytes = field.step_bytes * static_cast<size_t>(steps);
    if (tensor.data().size() != expected_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", field.name, "\" has ",
                                                     tensor.data().size(), " bytes, expected ",
                                                     expected_bytes));
    }
    if (field.dtype == v1::DTYPE_FLOAT32) {
      const size_t n = expected_bytes / sizeof(float);
      const char* bytes = tensor.data().data();
      for (size_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, bytes + i * sizeof(float), sizeof(float));
        if (!std::isfinite(v)) {
          return absl::InvalidArgumentError(
              absl::StrCat("field \"", field.name, "\" has the non-finite value ", v, " at step ",
                           i / (n / steps), " of chunk ", chunk.sequence(), " of actor ",
                           services::QuoteClientText(chunk.actor_id())));
        }
      }
    }
  }
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (!seen[i]) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", fields_[i].name,
                                                     "\" of the signature of table \"", table,
                                                     "\" is missing from the chunk"));
    }
  }
  return absl::OkStatus();
}

}  // namespace dreamfleet::replay
