// Status propagation helpers (Abseil 20220623 ships none of its own).
#ifndef INFERD_CORE_UTIL_STATUS_MACROS_H_
#define INFERD_CORE_UTIL_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define INFERD_CONCAT_INNER_(a, b) a##b
#define INFERD_CONCAT_(a, b) INFERD_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` yields a non-OK status.
#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status _inferd_st = (expr);          \
    if (!_inferd_st.ok()) return _inferd_st;     \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates a StatusOr<T>; on error returns
// its status, else moves the value into `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, expr) \
  INFERD_ASSIGN_OR_RETURN_IMPL_(INFERD_CONCAT_(_inferd_sor_, __LINE__), lhs, expr)
#define INFERD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

#endif  // INFERD_CORE_UTIL_STATUS_MACROS_H_
