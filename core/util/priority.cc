#include "core/util/priority.h"

#include "absl/strings/match.h"

namespace inferd {
namespace {

struct PriorityNames {
  absl::string_view label;
  absl::string_view name;
};

constexpr PriorityNames kPriorityNames[kNumPriorities] = {
    {"critical", "CRITICAL"},     {"high", "HIGH"}, {"normal", "NORMAL"}, {"low", "LOW"},
    {"background", "BACKGROUND"},
};

const PriorityNames& NamesOf(Priority priority) {
  const int i = static_cast<int>(priority);
  return kPriorityNames[i < kNumPriorities ? i : static_cast<int>(Priority::kNormal)];
}

}  // namespace

absl::string_view PriorityLabel(Priority priority) { return NamesOf(priority).label; }

absl::string_view PriorityName(Priority priority) { return NamesOf(priority).name; }

std::optional<Priority> ParsePriorityName(absl::string_view name) {
  for (int i = 0; i < kNumPriorities; ++i) {
    if (absl::EqualsIgnoreCase(name, kPriorityNames[i].name)) return static_cast<Priority>(i);
  }
  return std::nullopt;
}

}  // namespace inferd
