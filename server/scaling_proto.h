// Conversions between inferd.v1.Scaling messages and the DynamicScaler's
// plain structs (core/scaling/). PolicyFromProto returns INVALID_ARGUMENT
// naming the wire field ("policy.rules[0].metric: ...") for unset or unknown
// enums and non-finite numbers; the range checks are the scaler's
// (SetPolicy), renamed to wire fields by PolicyFieldName.
#ifndef INFERD_SERVER_SCALING_PROTO_H_
#define INFERD_SERVER_SCALING_PROTO_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/scaling/dynamic_scaler.h"
#include "core/scaling/scaling_event.h"
#include "core/scaling/scaling_policy.h"
#include "inferd/v1/scaling.pb.h"

namespace inferd {

absl::StatusOr<ScalingPolicy> PolicyFromProto(const v1::ScalingPolicy& wire);
void PolicyToProto(const ScalingPolicy& policy, v1::ScalingPolicy* wire);
void EventToProto(const ScalingEvent& event, v1::ScalingEvent* wire);
void ScalingStatsToProto(const ScalingStats& stats, v1::GetScalingStatsResponse* wire);
// Returns the wire name of a ScalingPolicy field (see PolicyFieldRenamer):
// ("hold", 1) -> "policy.rules[1].hold_seconds".
std::string PolicyFieldName(absl::string_view field, int rule_index);

}  // namespace inferd

#endif  // INFERD_SERVER_SCALING_PROTO_H_
