// What the dynamic scaler reports: ScalingEvent, one recorded decision or
// health change with its reason (kept in a bounded history and logged), and
// DeviceChange, what engines that registered a listener are told when a
// device enters or leaves the active set.
#ifndef INFERD_CORE_SCALING_SCALING_EVENT_H_
#define INFERD_CORE_SCALING_SCALING_EVENT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/scaling/scaling_policy.h"

namespace inferd {

enum class ScalingAction {
  kNone,              // an evaluation where no rule held (never in history)
  kActivateDevice,    // scale up, scope device
  kDeactivateDevice,  // scale down, scope device (drain)
  kRaiseReplicas,     // scale up, scope replica (all local devices busy)
  kLowerReplicas,     // scale down, scope replica
  kHeldCooldown,      // a rule held but the cooldown had not passed
  kHeldUnstable,      // a rule held but its metric's CV was too high
  kHeldAtBound,       // a rule held but min/max devices or replicas stop it
  kDeviceUnhealthy,   // MarkUnhealthy: a fault event
  kDeviceHealthy,     // MarkHealthy
  kPolicyChanged,     // SetPolicy
};

// "none", "activate_device", "deactivate_device", "raise_replicas",
// "lower_replicas", "held_cooldown", "held_unstable", "held_at_bound",
// "device_unhealthy", "device_healthy", "policy_changed".
absl::string_view ScalingActionName(ScalingAction action);

struct ScalingEvent {
  uint64_t sequence = 0;  // 1, 2, ... in the order events were recorded
  absl::Time time = absl::InfinitePast();
  ScalingAction action = ScalingAction::kNone;
  // up / down for rule decisions (acted or held) and bound enforcement;
  // none for health and policy events.
  std::optional<ScaleDirection> direction;
  int device = -1;      // the device acted on; -1 when none
  int rule_index = -1;  // index in ScalingPolicy::rules of the deciding rule
  std::string rule;     // DescribeRule() of it; "" when none
  double value = 0.0;   // deciding metric, mean over the last interval
  double threshold = 0.0;
  double cv = 0.0;           // CV of its interval means over the hold span
  int active_devices = 0;    // after the action
  int desired_replicas = 1;  // after the action
  std::string reason;        // one human-readable line, as logged
};

// Why a device entered or left the active set.
enum class DeviceChangeCause { kScaleUp, kScaleDown, kUnhealthy, kHealthy, kPolicy };

// "scale_up", "scale_down", "unhealthy", "healthy", "policy".
absl::string_view DeviceChangeCauseName(DeviceChangeCause cause);

// Told to listeners. active == false means: stop placing work on `device`
// and move its queued tasks elsewhere; running tasks may finish.
// active == true means placement may start using `device`.
struct DeviceChange {
  int device = -1;
  bool active = false;
  DeviceChangeCause cause = DeviceChangeCause::kPolicy;
  std::string reason;
};

// Called without the scaler's lock held, one change at a time, in the order
// the changes happened. May call DynamicScaler getters; must not call its
// mutating methods (EvaluateOnce, MarkUnhealthy, SetPolicy, ...).
using DeviceListener = std::function<void(const DeviceChange&)>;

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_SCALING_EVENT_H_
