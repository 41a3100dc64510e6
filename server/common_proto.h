// Conversions of what the inferd.v1 services share (inferd/v1/common.proto
// and conventions): priorities, times, and INVALID_ARGUMENT errors that name
// the wire field.
#ifndef INFERD_SERVER_COMMON_PROTO_H_
#define INFERD_SERVER_COMMON_PROTO_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/util/priority.h"
#include "inferd/v1/common.pb.h"

namespace inferd {

// INVALID_ARGUMENT "<field>: <problem>".
absl::Status InvalidField(absl::string_view field, absl::string_view problem);

// PRIORITY_CRITICAL (1) .. PRIORITY_BACKGROUND (5) <-> Priority kCritical ..
// kBackground; PRIORITY_UNSPECIFIED means kNormal. Any other number is
// INVALID_ARGUMENT "<field>: unknown priority <n>".
absl::StatusOr<Priority> PriorityFromProto(v1::Priority wire, absl::string_view field);
v1::Priority PriorityToProto(Priority priority);

// Milliseconds since the Unix epoch; 0 for an infinite time (not set).
int64_t UnixMillis(absl::Time t);

}  // namespace inferd

#endif  // INFERD_SERVER_COMMON_PROTO_H_
