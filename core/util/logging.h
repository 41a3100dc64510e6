// Minimal leveled logging to stderr: one line per call, with a timestamp and
// level. Thread-safe (each line is one write(2)).
#ifndef INFERD_CORE_UTIL_LOGGING_H_
#define INFERD_CORE_UTIL_LOGGING_H_

#include "absl/strings/string_view.h"

#include "absl/strings/str_cat.h"

namespace inferd {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Sets the lowest level that is printed (default kInfo).
void SetMinLogLevel(LogLevel level);
// Parses "debug" | "info" | "warning" | "error".
bool ParseLogLevel(absl::string_view name, LogLevel* out);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, absl::string_view message);

}  // namespace inferd

#define INFERD_LOG(level, ...)                                          \
  do {                                                                  \
    if (::inferd::LogEnabled(::inferd::LogLevel::level)) {              \
      ::inferd::LogLine(::inferd::LogLevel::level, absl::StrCat(__VA_ARGS__)); \
    }                                                                   \
  } while (0)

#endif  // INFERD_CORE_UTIL_LOGGING_H_
