#include "services/tensor_codec.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dreamfleet::services {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case v1::DTYPE_UINT8: return 1;
    case v1::DTYPE_FLOAT32: return 4;
    case v1::DTYPE_INT32: return 4;
    case v1::DTYPE_BOOL: return 1;
    default: return 0;
  }
}

std::string DTypeName(DType dtype) {
  switch (dtype) {
    case v1::DTYPE_UINT8: return "uint8";
    case v1::DTYPE_FLOAT32: return "float32";
    case v1::DTYPE_INT32: return "int32";
    case v1::DTYPE_BOOL: return "bool";
    case v1::DTYPE_UNSPECIFIED: return "unspecified";
    default: return absl::StrCat("unknown(", static_cast<int>(dtype), ")");
  }
}

std::string ShapeString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

int64_t NumElements(absl::Span<const int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) return -1;
    if (dim != 0 && count > std::numeric_limits<int64_t>::max() / dim) return -1;
    count *= dim;
  }
  return count;
}

absl::Status EncodeTensor(DType dtype, absl::Span<const int64_t> shape, const void* data,
                          size_t num_bytes, v1::TensorProto* out) {
  const size_t element_size = DTypeSize(dtype);
  if (element_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot encode dtype ", DTypeName(dtype)));
  }
  const int64_t elements = NumElements(shape);
  if (elements < 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid shape ", ShapeString(shape)));
  }
  if (static_cast<size_t>(elements) * element_size != num_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("shape ", ShapeString(shape), " of ",
                                                   DTypeName(dtype), " needs ",
                                                   elements * element_size, " bytes, got ",
                                                   num_bytes));
  }
  out->set_dtype(dtype);
  out->clear_shape();
  for (int64_t dim : shape) out->add_shape(dim);
  out->set_data(data, num_bytes);
  return absl::OkStatus();
}

absl::StatusOr<TensorView> DecodeTensor(const v1::TensorProto& proto, absl::string_view name) {
  TensorView view;
  view.dtype = proto.dtype();
  view.shape.assign(proto.shape().begin(), proto.shape().end());
  const size_t element_size = DTypeSize(view.dtype);
  if (element_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", name, "\" has dtype ", DTypeName(view.dtype)));
  }
  const int64_t elements = NumElements(view.shape);
  if (elements < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", name, "\" has invalid shape ", ShapeString(view.shape)));
  }
  if (static_cast<size_t>(elements) * element_size != proto.data().size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor \"", name, "\" of shape ", ShapeString(view.shape), " and dtype ",
        DTypeName(view.dtype), " needs ", elements * element_size, " bytes, got ",
        proto.data().size()));
  }
  view.data = reinterpret_cast<const uint8_t*>(proto.data().data());
  view.num_bytes = proto.data().size();
  return view;
}

absl::StatusOr<TensorView> DecodeTensor(const v1::TensorProto& proto, absl::string_view name,
                                        DType dtype, absl::Span<const int64_t> shape) {
  if (proto.dtype() != dtype) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" has dtype ",
                                                   DTypeName(proto.dtype()), ", expected ",
                                                   DTypeName(dtype)));
  }
  bool shape_ok = proto.shape_size() == static_cast<int>(shape.size());
  for (int i = 0; shape_ok && i < proto.shape_size(); ++i) {
    shape_ok = shape[i] == -1 || shape[i] == proto.shape(i);
  }
  if (!shape_ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", name, "\" has shape ",
                     ShapeString({proto.shape().data(), static_cast<size_t>(proto.shape_size())}),
                     ", expected ", ShapeString(shape)));
  }
  return DecodeTensor(proto, name);
}

}  // namespace dreamfleet::services
