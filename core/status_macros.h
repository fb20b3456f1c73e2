// Early-return helpers for absl::Status / absl::StatusOr, as used across pipetrain.
#ifndef PIPETRAIN_CORE_STATUS_MACROS_H_
#define PIPETRAIN_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PT_CONCAT_INNER_(a, b) a##b
#define PT_CONCAT_(a, b) PT_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` is not OK.
#define PT_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status pt_status_ = (expr);      \
    if (!pt_status_.ok()) return pt_status_; \
  } while (0)

// `PT_ASSIGN_OR_RETURN(auto x, Foo());` binds the value or returns the error.
#define PT_ASSIGN_OR_RETURN(lhs, expr) \
  PT_ASSIGN_OR_RETURN_IMPL_(PT_CONCAT_(pt_statusor_, __LINE__), lhs, expr)
#define PT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

// Fails with InvalidArgument carrying a formatted message when `cond` is false.
#define PT_CHECK_ARG(cond, ...)                                                  \
  do {                                                                           \
    if (!(cond)) return ::absl::InvalidArgumentError(absl::StrCat(__VA_ARGS__)); \
  } while (0)

#endif  // PIPETRAIN_CORE_STATUS_MACROS_H_
