// Minimal logging for a multi-process trainer: every line says who speaks
// (`[r3 pp1 dp0]`, set once by the launcher) and which subsystem (`[data]`).
// Debian 12's Abseil predates absl/log, so this is the project's own.
#ifndef PIPETRAIN_CORE_UTIL_LOG_H_
#define PIPETRAIN_CORE_UTIL_LOG_H_

#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace pipetrain {

// The process identity printed before every line; empty for one process.
void SetLogIdentity(std::string identity);
// When false, Info lines are dropped (warnings and errors still print).
void SetLogVerbose(bool verbose);

void LogLine(char level, std::string_view tag, std::string_view message);

template <typename... Args>
void LogInfo(std::string_view tag, const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine('I', tag, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogWarning(std::string_view tag, const absl::FormatSpec<Args...>& format,
                const Args&... args) {
  LogLine('W', tag, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogError(std::string_view tag, const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine('E', tag, absl::StrFormat(format, args...));
}

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_UTIL_LOG_H_
