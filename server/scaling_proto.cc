#include "server/scaling_proto.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/common_proto.h"

namespace inferd {
namespace {

// WorkloadMetric k <-> SCALING_METRIC_* k + 1 (same order).
v1::ScalingMetric MetricToProto(WorkloadMetric metric) {
  switch (metric) {
    case WorkloadMetric::kQueueLength:
      return v1::SCALING_METRIC_QUEUE_LENGTH;
    case WorkloadMetric::kProcessingTime:
      return v1::SCALING_METRIC_PROCESSING_TIME;
    case WorkloadMetric::kThroughput:
      return v1::SCALING_METRIC_THROUGHPUT;
    case WorkloadMetric::kUtilization:
      return v1::SCALING_METRIC_UTILIZATION;
    case WorkloadMetric::kMemoryUsed:
      return v1::SCALING_METRIC_MEMORY_USED;
    case WorkloadMetric::kQueueLengthPerDevice:
      return v1::SCALING_METRIC_QUEUE_LENGTH_PER_DEVICE;
  }
  return v1::SCALING_METRIC_UNSPECIFIED;
}

v1::ScalingComparison ComparisonToProto(Comparison comparison) {
  switch (comparison) {
    case Comparison::kGreater:
      return v1::SCALING_COMPARISON_GREATER;
    case Comparison::kGreaterEqual:
      return v1::SCALING_COMPARISON_GREATER_EQUAL;
    case Comparison::kLess:
      return v1::SCALING_COMPARISON_LESS;
    case Comparison::kLessEqual:
      return v1::SCALING_COMPARISON_LESS_EQUAL;
  }
  return v1::SCALING_COMPARISON_UNSPECIFIED;
}

v1::ScalingDirection DirectionToProto(ScaleDirection direction) {
  return direction == ScaleDirection::kUp ? v1::SCALING_DIRECTION_UP : v1::SCALING_DIRECTION_DOWN;
}

v1::ScalingAction ActionToProto(ScalingAction action) {
  switch (action) {
    case ScalingAction::kNone:
      return v1::SCALING_ACTION_NONE;
    case ScalingAction::kActivateDevice:
      return v1::SCALING_ACTION_ACTIVATE_DEVICE;
    case ScalingAction::kDeactivateDevice:
      return v1::SCALING_ACTION_DEACTIVATE_DEVICE;
    case ScalingAction::kRaiseReplicas:
      return v1::SCALING_ACTION_RAISE_REPLICAS;
    case ScalingAction::kLowerReplicas:
      return v1::SCALING_ACTION_LOWER_REPLICAS;
    case ScalingAction::kHeldCooldown:
      return v1::SCALING_ACTION_HELD_COOLDOWN;
    case ScalingAction::kHeldUnstable:
      return v1::SCALING_ACTION_HELD_UNSTABLE;
    case ScalingAction::kHeldAtBound:
      return v1::SCALING_ACTION_HELD_AT_BOUND;
    case ScalingAction::kDeviceUnhealthy:
      return v1::SCALING_ACTION_DEVICE_UNHEALTHY;
    case ScalingAction::kDeviceHealthy:
      return v1::SCALING_ACTION_DEVICE_HEALTHY;
    case ScalingAction::kPolicyChanged:
      return v1::SCALING_ACTION_POLICY_CHANGED;
  }
  return v1::SCALING_ACTION_NONE;
}

v1::ScalingScope ScopeOf(ScalingAction action) {
  switch (action) {
    case ScalingAction::kActivateDevice:
    case ScalingAction::kDeactivateDevice:
    case ScalingAction::kDeviceUnhealthy:
    case ScalingAction::kDeviceHealthy:
      return v1::SCALING_SCOPE_DEVICE;
    case ScalingAction::kRaiseReplicas:
    case ScalingAction::kLowerReplicas:
      return v1::SCALING_SCOPE_REPLICA;
    default:
      return v1::SCALING_SCOPE_UNSPECIFIED;
  }
}

// "SCALING_METRIC_FOO", or the number when the enum has no such value.
template <typename Enum>
std::string EnumText(Enum value, const std::string& name) {
  return name.empty() ? absl::StrCat(static_cast<int>(value)) : name;
}

absl::Status Seconds(absl::string_view field, double seconds, absl::Duration* out) {
  if (!std::isfinite(seconds)) {
    return InvalidField(absl::StrCat("policy.", field), absl::StrCat(seconds, " must be finite"));
  }
  *out = absl::Seconds(seconds);
  return absl::OkStatus();
}

absl::StatusOr<ScalingRule> RuleFromProto(const v1::ScalingRule& wire, int index) {
  const std::string at = absl::StrCat("policy.rules[", index, "].");
  ScalingRule rule;
  switch (wire.direction()) {
    case v1::SCALING_DIRECTION_UP:
      rule.direction = ScaleDirection::kUp;
      break;
    case v1::SCALING_DIRECTION_DOWN:
      rule.direction = ScaleDirection::kDown;
      break;
    default:
      return InvalidField(
          at + "direction",
          absl::StrCat(EnumText(wire.direction(), v1::ScalingDirection_Name(wire.direction())),
                       " is not SCALING_DIRECTION_UP or SCALING_DIRECTION_DOWN"));
  }
  bool metric_found = false;
  for (int m = 0; m < kNumWorkloadMetrics; ++m) {
    if (MetricToProto(static_cast<WorkloadMetric>(m)) == wire.metric()) {
      rule.metric = static_cast<WorkloadMetric>(m);
      metric_found = true;
    }
  }
  if (!metric_found) {
    return InvalidField(at + "metric",
                        absl::StrCat(EnumText(wire.metric(), v1::ScalingMetric_Name(wire.metric())),
                                     " is not a workload metric"));
  }
  bool comparison_found = false;
  for (Comparison c : {Comparison::kGreater, Comparison::kGreaterEqual, Comparison::kLess,
                       Comparison::kLessEqual}) {
    if (ComparisonToProto(c) == wire.comparison()) {
      rule.comparison = c;
      comparison_found = true;
    }
  }
  if (!comparison_found) {
    return InvalidField(
        at + "comparison",
        absl::StrCat(EnumText(wire.comparison(), v1::ScalingComparison_Name(wire.comparison())),
                     " is not a comparison"));
  }
  rule.threshold = wire.threshold();
  if (!std::isfinite(wire.hold_seconds())) {
    return InvalidField(at + "hold_seconds", absl::StrCat(wire.hold_seconds(), " must be finite"));
  }
  rule.hold = absl::Seconds(wire.hold_seconds());
  return rule;
}

}  // namespace

std::string PolicyFieldName(absl::string_view field, int rule_index) {
  if (rule_index >= 0) {
    return absl::StrCat("policy.rules[", rule_index, "].",
                        field == "hold" ? "hold_seconds" : field);
  }
  if (field == "scale_up_cooldown" || field == "scale_down_cooldown" ||
      field == "evaluation_interval" || field == "window_length") {
    return absl::StrCat("policy.", field, "_seconds");
  }
  return absl::StrCat("policy.", field);
}

absl::StatusOr<ScalingPolicy> PolicyFromProto(const v1::ScalingPolicy& wire) {
  ScalingPolicy policy;
  policy.enabled = wire.enabled();
  policy.rules.clear();
  for (int i = 0; i < wire.rules_size(); ++i) {
    absl::StatusOr<ScalingRule> rule = RuleFromProto(wire.rules(i), i);
    if (!rule.ok()) return rule.status();
    policy.rules.push_back(*rule);
  }
  const struct {
    const char* field;
    double seconds;
    absl::Duration* out;
  } durations[] = {
      {"scale_up_cooldown_seconds", wire.scale_up_cooldown_seconds(), &policy.scale_up_cooldown},
      {"scale_down_cooldown_seconds", wire.scale_down_cooldown_seconds(),
       &policy.scale_down_cooldown},
      {"evaluation_interval_seconds", wire.evaluation_interval_seconds(),
       &policy.evaluation_interval},
      {"window_length_seconds", wire.window_length_seconds(), &policy.window_length},
  };
  for (const auto& d : durations) {
    if (absl::Status st = Seconds(d.field, d.seconds, d.out); !st.ok()) return st;
  }
  policy.stability_threshold = wire.stability_threshold();
  policy.min_active_devices = wire.min_active_devices();
  policy.max_active_devices = wire.max_active_devices();
  policy.max_replicas = wire.max_replicas();
  return policy;
}

void PolicyToProto(const ScalingPolicy& policy, v1::ScalingPolicy* wire) {
  wire->set_enabled(policy.enabled);
  for (const ScalingRule& rule : policy.rules) {
    v1::ScalingRule* r = wire->add_rules();
    r->set_direction(DirectionToProto(rule.direction));
    r->set_metric(MetricToProto(rule.metric));
    r->set_comparison(ComparisonToProto(rule.comparison));
    r->set_threshold(rule.threshold);
    r->set_hold_seconds(absl::ToDoubleSeconds(rule.hold));
  }
  wire->set_scale_up_cooldown_seconds(absl::ToDoubleSeconds(policy.scale_up_cooldown));
  wire->set_scale_down_cooldown_seconds(absl::ToDoubleSeconds(policy.scale_down_cooldown));
  wire->set_evaluation_interval_seconds(absl::ToDoubleSeconds(policy.evaluation_interval));
  wire->set_stability_threshold(policy.stability_threshold);
  wire->set_min_active_devices(policy.min_active_devices);
  wire->set_max_active_devices(policy.max_active_devices);
  wire->set_max_replicas(policy.max_replicas);
  wire->set_window_length_seconds(absl::ToDoubleSeconds(policy.window_length));
}

void EventToProto(const ScalingEvent& event, v1::ScalingEvent* wire) {
  wire->set_sequence(event.sequence);
  wire->set_time_unix_ms(UnixMillis(event.time));
  wire->set_action(ActionToProto(event.action));
  if (event.direction.has_value()) wire->set_direction(DirectionToProto(*event.direction));
  wire->set_scope(ScopeOf(event.action));
  wire->set_device(event.device);
  wire->set_rule_index(event.rule_index);
  wire->set_rule(event.rule);
  wire->set_value(event.value);
  wire->set_threshold(event.threshold);
  wire->set_cv(event.cv);
  wire->set_active_devices(event.active_devices);
  wire->set_desired_replicas(event.desired_replicas);
  wire->set_reason(event.reason);
}

void ScalingStatsToProto(const ScalingStats& stats, v1::GetScalingStatsResponse* resp) {
  resp->set_enabled(stats.enabled);
  for (int d : stats.active_devices) resp->add_active_devices(d);
  for (int d : stats.inactive_devices) resp->add_inactive_devices(d);
  for (int d : stats.unhealthy_devices) resp->add_unhealthy_devices(d);
  std::vector<int> healthy = stats.active_devices;
  healthy.insert(healthy.end(), stats.inactive_devices.begin(), stats.inactive_devices.end());
  std::sort(healthy.begin(), healthy.end());
  for (int d : healthy) resp->add_healthy_devices(d);
  resp->set_desired_replicas(stats.desired_replicas);
  resp->set_replica_demand(stats.replica_demand);
  if (stats.last_decision.has_value()) {
    EventToProto(*stats.last_decision, resp->mutable_last_decision());
  }
  resp->set_last_scale_unix_ms(UnixMillis(stats.last_scale_time));
  resp->set_last_evaluation_unix_ms(UnixMillis(stats.last_evaluation_time));
  resp->set_window_length_seconds(absl::ToDoubleSeconds(stats.window_length));
  for (int m = 0; m < kNumWorkloadMetrics; ++m) {
    const WindowAggregate& a = stats.window[m];
    v1::ScalingMetricWindow* w = resp->add_window();
    w->set_metric(MetricToProto(static_cast<WorkloadMetric>(m)));
    w->set_count(a.count);
    w->set_mean(a.mean);
    w->set_min(a.min);
    w->set_max(a.max);
    w->set_p99(a.p99);
    w->set_stddev(a.stddev);
    w->set_cv(a.cv);
    w->set_oldest_unix_ms(UnixMillis(a.oldest));
    w->set_newest_unix_ms(UnixMillis(a.newest));
  }
  v1::ScalingCounts* c = resp->mutable_counts();
  c->set_evaluations(stats.evaluations);
  c->set_device_activations(stats.device_activations);
  c->set_device_deactivations(stats.device_deactivations);
  c->set_replica_raises(stats.replica_raises);
  c->set_replica_lowerings(stats.replica_lowerings);
  c->set_held_cooldown(stats.held_cooldown);
  c->set_held_unstable(stats.held_unstable);
  c->set_held_at_bound(stats.held_at_bound);
  c->set_device_faults(stats.device_faults);
  c->set_scheduler_samples(stats.scheduler_samples);
  c->set_device_samples(stats.device_samples);
  c->set_client_samples(stats.client_samples);
  PolicyToProto(stats.policy, resp->mutable_policy());
}

}  // namespace inferd
