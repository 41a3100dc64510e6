// Priority: the one scheduling level of inferd's work — inference requests,
// tasks and transfers alike — and the one table of its names. The order is
// that of inferd.v1.Priority (CRITICAL first) and of the KServe request
// parameter `priority` (1 is the highest level).
#ifndef INFERD_CORE_UTIL_PRIORITY_H_
#define INFERD_CORE_UTIL_PRIORITY_H_

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace inferd {

enum class Priority : uint8_t { kCritical = 0, kHigh = 1, kNormal = 2, kLow = 3, kBackground = 4 };
inline constexpr int kNumPriorities = 5;

// "critical", "high", "normal", "low", "background" (metric labels).
absl::string_view PriorityLabel(Priority priority);
// "CRITICAL", "HIGH", "NORMAL", "LOW", "BACKGROUND" (messages, docs, the
// KServe request parameter).
absl::string_view PriorityName(Priority priority);
// The level whose PriorityName is `name` in any case ("high", "HIGH"), or
// nullopt.
std::optional<Priority> ParsePriorityName(absl::string_view name);

}  // namespace inferd

#endif  // INFERD_CORE_UTIL_PRIORITY_H_
