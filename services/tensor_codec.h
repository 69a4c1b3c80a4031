// Converts between TensorProto (the wire form) and raw row-major buffers, checking dtype, shape
// and byte counts. Messages name the tensor and the value seen, e.g.
// `tensor "image" has shape [32,64,64,4], expected [32,64,64,3]`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "dreamfleet/v1/tensor.pb.h"
#include "services/status_macros.h"

namespace dreamfleet::services {

using v1::DType;

// Bytes per element; 0 for DTYPE_UNSPECIFIED or unknown values.
size_t DTypeSize(DType dtype);
// "uint8", "float32", "int32", "bool", "unspecified".
std::string DTypeName(DType dtype);
// "[64,64,3]".
std::string ShapeString(absl::Span<const int64_t> shape);
// Product of the dims; -1 when a dim is negative or the product overflows.
int64_t NumElements(absl::Span<const int64_t> shape);

template <typename T> constexpr DType DTypeOf();
template <> constexpr DType DTypeOf<uint8_t>() { return v1::DTYPE_UINT8; }
template <> constexpr DType DTypeOf<float>() { return v1::DTYPE_FLOAT32; }
template <> constexpr DType DTypeOf<int32_t>() { return v1::DTYPE_INT32; }
template <> constexpr DType DTypeOf<bool>() { return v1::DTYPE_BOOL; }

// Fills `out` from `num_bytes` bytes at `data`, which must equal prod(shape) * DTypeSize(dtype).
absl::Status EncodeTensor(DType dtype, absl::Span<const int64_t> shape, const void* data,
                          size_t num_bytes, v1::TensorProto* out);

template <typename T>
absl::Status EncodeTensor(absl::Span<const int64_t> shape, absl::Span<const T> values,
                          v1::TensorProto* out) {
  return EncodeTensor(DTypeOf<T>(), shape, values.data(), values.size() * sizeof(T), out);
}

// A checked, read-only view of a TensorProto's bytes (valid while the proto lives).
struct TensorView {
  DType dtype = v1::DTYPE_UNSPECIFIED;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t num_bytes = 0;

  int64_t num_elements() const { return NumElements(shape); }
  template <typename T>
  const T* as() const { return reinterpret_cast<const T*>(data); }
};

// Checks that the proto is self-consistent (known dtype, non-negative dims, byte count matches).
// `name` is used in messages.
absl::StatusOr<TensorView> DecodeTensor(const v1::TensorProto& proto, absl::string_view name);

// DecodeTensor plus: the dtype must be `dtype` and the shape must equal `shape`, where a
// dim of -1 in `shape` matches any size.
absl::StatusOr<TensorView> DecodeTensor(const v1::TensorProto& proto, absl::string_view name,
                                        DType dtype, absl::Span<const int64_t> shape);

// Copies the tensor's bytes into `out` (resized), after the checks above.
template <typename T>
absl::Status DecodeTensorTo(const v1::TensorProto& proto, absl::string_view name,
                            absl::Span<const int64_t> shape, std::vector<T>* out) {
  ASSIGN_OR_RETURN(TensorView view, DecodeTensor(proto, name, DTypeOf<T>(), shape));
  out->assign(view.as<T>(), view.as<T>() + view.num_elements());
  return absl::OkStatus();
}

}  // namespace dreamfleet::services
