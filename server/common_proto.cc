#include "server/common_proto.h"

#include "absl/strings/str_cat.h"

namespace inferd {

absl::Status InvalidField(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::StatusOr<Priority> PriorityFromProto(v1::Priority wire, absl::string_view field) {
  if (wire == v1::PRIORITY_UNSPECIFIED) return Priority::kNormal;
  if (wire < v1::PRIORITY_CRITICAL || wire > v1::PRIORITY_BACKGROUND) {
    return InvalidField(field, absl::StrCat("unknown priority ", static_cast<int>(wire)));
  }
  return static_cast<Priority>(static_cast<int>(wire) - 1);
}

v1::Priority PriorityToProto(Priority priority) {
  return static_cast<v1::Priority>(static_cast<int>(priority) + 1);
}

int64_t UnixMillis(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return 0;
  return absl::ToUnixMillis(t);
}

}  // namespace inferd
