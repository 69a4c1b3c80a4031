// Status propagation for absl::Status / absl::StatusOr<T> across module boundaries (STYLE.md:
// errors are values). RETURN_IF_ERROR(expr) returns expr's status from the enclosing function
// when it is not OK; ASSIGN_OR_RETURN(lhs, expr) does the same for a StatusOr and otherwise moves
// its value into lhs (a declaration such as `auto x` or an existing variable).
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dreamfleet::services::internal {
inline const absl::Status& ToStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& ToStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}
}  // namespace dreamfleet::services::internal

#define DF_STATUS_CONCAT_INNER_(a, b) a##b
#define DF_STATUS_CONCAT_(a, b) DF_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                                                       \
  do {                                                                              \
    if (const absl::Status df_status_ =                                             \
            ::dreamfleet::services::internal::ToStatus(expr);                       \
        !df_status_.ok()) {                                                         \
      return df_status_;                                                            \
    }                                                                               \
  } while (false)

#define DF_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                              \
  if (!statusor.ok()) return statusor.status();        \
  lhs = std::move(statusor).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  DF_ASSIGN_OR_RETURN_IMPL_(DF_STATUS_CONCAT_(df_statusor_, __LINE__), lhs, expr)
