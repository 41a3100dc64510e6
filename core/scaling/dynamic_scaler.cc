#include "core/scaling/dynamic_scaler.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/util/check.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

std::string Num(double v) { return absl::StrFormat("%.4g", v); }

absl::Status CheckAmount(absl::string_view field, double v) {
  if (!std::isfinite(v)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", Num(v), " must be finite"));
  }
  if (v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", Num(v), " is negative"));
  }
  return absl::OkStatus();
}

absl::Status CheckFraction(absl::string_view field, double v) {
  if (!(v >= 0.0 && v <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", Num(v), " must be in [0, 1]"));
  }
  return absl::OkStatus();
}

// A decision about `rule` (index `index`) before it is applied.
ScalingEvent Decision(absl::Time now, const ScalingRule& rule, int index, double value, double cv) {
  ScalingEvent e;
  e.time = now;
  e.direction = rule.direction;
  e.rule_index = index;
  e.rule = DescribeRule(rule);
  e.value = value;
  e.threshold = rule.threshold;
  e.cv = cv;
  return e;
}

std::string RuleSummary(const ScalingEvent& e) {
  return absl::StrCat("rules[", e.rule_index, "] ", e.rule, " (measured ", Num(e.value),
                      " against threshold ", Num(e.threshold), ", cv ", Num(e.cv), ")");
}

}  // namespace

absl::string_view ScalingActionName(ScalingAction action) {
  switch (action) {
    case ScalingAction::kNone:
      return "none";
    case ScalingAction::kActivateDevice:
      return "activate_device";
    case ScalingAction::kDeactivateDevice:
      return "deactivate_device";
    case ScalingAction::kRaiseReplicas:
      return "raise_replicas";
    case ScalingAction::kLowerReplicas:
      return "lower_replicas";
    case ScalingAction::kHeldCooldown:
      return "held_cooldown";
    case ScalingAction::kHeldUnstable:
      return "held_unstable";
    case ScalingAction::kHeldAtBound:
      return "held_at_bound";
    case ScalingAction::kDeviceUnhealthy:
      return "device_unhealthy";
    case ScalingAction::kDeviceHealthy:
      return "device_healthy";
    case ScalingAction::kPolicyChanged:
      return "policy_changed";
  }
  return "unknown";
}

absl::string_view DeviceChangeCauseName(DeviceChangeCause cause) {
  switch (cause) {
    case DeviceChangeCause::kScaleUp:
      return "scale_up";
    case DeviceChangeCause::kScaleDown:
      return "scale_down";
    case DeviceChangeCause::kUnhealthy:
      return "unhealthy";
    case DeviceChangeCause::kHealthy:
      return "healthy";
    case DeviceChangeCause::kPolicy:
      return "policy";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<DynamicScaler>> DynamicScaler::Create(
    ScalerOptions options, Clock* clock, prometheus::Registry& registry) {
  INFERD_CHECK(clock != nullptr);
  if (options.devices.empty()) {
    return absl::InvalidArgumentError("devices: must list at least one device");
  }
  std::set<int> seen;
  for (size_t i = 0; i < options.devices.size(); ++i) {
    const int d = options.devices[i];
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat("devices[", i, "]: ", d, " is negative"));
    }
    if (!seen.insert(d).second) {
      return absl::InvalidArgumentError(absl::StrCat("devices[", i, "]: ", d, " is listed twice"));
    }
  }
  RETURN_IF_ERROR(ValidatePolicy(options.policy));
  const int n = static_cast<int>(options.devices.size());
  if (options.initial_active_devices < 0 || options.initial_active_devices > n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "initial_active_devices: ", options.initial_active_devices, " must be in [0, ", n, "]"));
  }
  if (options.window_resolution <= absl::ZeroDuration() ||
      options.window_resolution > options.policy.window_length) {
    return absl::InvalidArgumentError(
        absl::StrCat("window_resolution: ", absl::FormatDuration(options.window_resolution),
                     " must be positive and <= window_length"));
  }
  if (options.event_history_capacity == 0) {
    return absl::InvalidArgumentError("event_history_capacity: 0 must be >= 1");
  }
  return std::unique_ptr<DynamicScaler>(new DynamicScaler(std::move(options), clock, registry));
}

DynamicScaler::DynamicScaler(ScalerOptions options, Clock* clock, prometheus::Registry& registry)
    : clock_(clock),
      history_capacity_(options.event_history_capacity),
      device_sampler_(std::move(options.device_sampler)),
      metrics_(registry),
      window_(WindowOptions{options.policy.window_length, options.window_resolution}) {
  absl::MutexLock lock(&mu_);
  policy_ = std::move(options.policy);
  std::sort(options.devices.begin(), options.devices.end());
  const int n = static_cast<int>(options.devices.size());
  int active = options.initial_active_devices == 0 ? n : options.initial_active_devices;
  if (policy_.enabled) {
    active = std::max(active, policy_.min_active_devices);
    if (policy_.max_active_devices > 0) {
      active = std::min(active, policy_.max_active_devices);
    }
    active = std::min(active, n);
  } else {
    active = n;
  }
  for (int i = 0; i < n; ++i) {
    DeviceState state;
    state.active = i < active;
    devices_[options.devices[i]] = state;
  }
  ResetRuleTimersLocked();
  UpdateGaugesLocked(clock_->Now());
}

DynamicScaler::~DynamicScaler() { Stop(); }

// ---------------------------------------------------------------- samples

absl::Status DynamicScaler::AddSchedulerSample(const SchedulerSample& sample, bool client) {
  RETURN_IF_ERROR(CheckAmount("queue_length", sample.queue_length));
  RETURN_IF_ERROR(CheckAmount("processing_time", sample.processing_time_seconds));
  RETURN_IF_ERROR(CheckAmount("throughput", sample.throughput_tasks_per_second));
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  window_.Add(WorkloadMetric::kQueueLength, now, sample.queue_length);
  window_.Add(WorkloadMetric::kProcessingTime, now, sample.processing_time_seconds);
  window_.Add(WorkloadMetric::kThroughput, now, sample.throughput_tasks_per_second);
  const int active = std::max(1, ActiveCountLocked());
  window_.Add(WorkloadMetric::kQueueLengthPerDevice, now, sample.queue_length / active);
  if (client) {
    ++counts_.client_samples;
  } else {
    ++counts_.scheduler_samples;
  }
  return absl::OkStatus();
}

absl::Status DynamicScaler::RecordSchedulerSample(const SchedulerSample& sample) {
  return AddSchedulerSample(sample, /*client=*/false);
}

absl::Status DynamicScaler::CollectWorkloadMetrics(double queue_length, double processing_time,
                                                   double throughput) {
  return AddSchedulerSample(SchedulerSample{queue_length, processing_time, throughput},
                            /*client=*/true);
}

absl::Status DynamicScaler::RecordDeviceSample(const DeviceSample& sample) {
  RETURN_IF_ERROR(CheckFraction("utilization", sample.utilization));
  RETURN_IF_ERROR(CheckFraction("memory_used", sample.memory_used));
  absl::MutexLock lock(&mu_);
  auto it = devices_.find(sample.device);
  if (it == devices_.end()) {
    return absl::NotFoundError(
        absl::StrCat("device: ", sample.device, " is not a device of this daemon"));
  }
  const absl::Time now = clock_->Now();
  DeviceState& state = it->second;
  state.has_sample = true;
  state.utilization = sample.utilization;
  state.memory_used = sample.memory_used;
  window_.AddDevice(sample.device, WorkloadMetric::kUtilization, now, sample.utilization);
  window_.AddDevice(sample.device, WorkloadMetric::kMemoryUsed, now, sample.memory_used);
  ++counts_.device_samples;
  if (state.active) AddFleetSampleLocked(now);
  return absl::OkStatus();
}

void DynamicScaler::AddFleetSampleLocked(absl::Time now) {
  double utilization = 0.0;
  double memory = 0.0;
  int n = 0;
  for (const auto& [index, state] : devices_) {
    if (!state.active || !state.has_sample) continue;
    utilization += state.utilization;
    memory += state.memory_used;
    ++n;
  }
  if (n == 0) return;
  window_.Add(WorkloadMetric::kUtilization, now, utilization / n);
  window_.Add(WorkloadMetric::kMemoryUsed, now, memory / n);
}

// ------------------------------------------------------------- evaluation

void DynamicScaler::SampleDevices() {
  if (!device_sampler_) return;
  for (const DeviceSample& sample : device_sampler_()) {
    if (absl::Status st = RecordDeviceSample(sample); !st.ok()) {
      INFERD_LOG(kWarning, "scaler: dropped a sample of device ", sample.device, ": ",
                 st.message());
    }
  }
}

ScalingEvent DynamicScaler::EvaluateOnce() {
  SampleDevices();
  absl::MutexLock notify_lock(&notify_mu_);
  Changes changes;
  ScalingEvent outcome;
  {
    absl::MutexLock lock(&mu_);
    outcome = EvaluateLocked(clock_->Now(), &changes);
  }
  Notify(changes);
  return outcome;
}

bool DynamicScaler::EvaluateIfDue() {
  if (device_sampler_) {
    {
      absl::MutexLock lock(&mu_);
      if (last_evaluation_ != absl::InfinitePast() &&
          clock_->Now() - last_evaluation_ < policy_.evaluation_interval) {
        return false;
      }
    }
    SampleDevices();
  }
  absl::MutexLock notify_lock(&notify_mu_);
  Changes changes;
  bool due = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    due = last_evaluation_ == absl::InfinitePast() ||
          now - last_evaluation_ >= policy_.evaluation_interval;
    if (due) EvaluateLocked(now, &changes);
  }
  Notify(changes);
  return due;
}

ScalingEvent DynamicScaler::EvaluateLocked(absl::Time now, Changes* changes) {
  ++counts_.evaluations;
  metrics_.evaluations.Increment();
  last_evaluation_ = now;

  ScalingEvent outcome;
  outcome.time = now;
  if (!policy_.enabled) {
    outcome.reason = "dynamic scaling disabled";
  } else {
    const std::vector<ScalingRule>& rules = policy_.rules;
    std::vector<bool> holds(rules.size(), false);
    std::vector<double> values(rules.size(), 0.0);
    for (size_t i = 0; i < rules.size(); ++i) {
      const WindowAggregate recent =
          window_.Aggregate(rules[i].metric, now, policy_.evaluation_interval);
      values[i] = recent.mean;
      const bool condition =
          recent.count > 0 && Compare(recent.mean, rules[i].comparison, rules[i].threshold);
      if (!condition) {
        pending_since_[i] = absl::InfiniteFuture();
        continue;
      }
      if (pending_since_[i] == absl::InfiniteFuture()) pending_since_[i] = now;
      holds[i] = now - pending_since_[i] >= rules[i].hold;
    }
    // Stability: CV of the same interval means the rule compares, over its
    // hold span (at least two intervals).
    auto cv_of = [&](size_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      const absl::Duration span = std::max(rules[i].hold, 2 * policy_.evaluation_interval);
      return window_.SliceMeansCv(rules[i].metric, now, span, policy_.evaluation_interval);
    };

    // Up rules are OR'ed; down rules AND'ed, the first one deciding. Up wins
    // a conflict: running short of capacity costs more than a spare device.
    std::vector<size_t> up;
    int first_down = -1;
    bool all_down = true;
    for (size_t i = 0; i < rules.size(); ++i) {
      if (rules[i].direction == ScaleDirection::kUp) {
        if (holds[i]) up.push_back(i);
      } else {
        if (first_down < 0) first_down = static_cast<int>(i);
        all_down = all_down && holds[i];
      }
    }
    const bool down = first_down >= 0 && all_down;

    if (!up.empty() || down) {
      const ScaleDirection direction = up.empty() ? ScaleDirection::kDown : ScaleDirection::kUp;
      const absl::Duration cooldown = direction == ScaleDirection::kUp
                                          ? policy_.scale_up_cooldown
                                          : policy_.scale_down_cooldown;
      std::vector<size_t> candidates =
          up.empty() ? std::vector<size_t>{static_cast<size_t>(first_down)} : up;
      const size_t first = candidates.front();
      ScalingEvent decision =
          Decision(now, rules[first], static_cast<int>(first), values[first], cv_of(first));
      if (now - last_scale_time_ < cooldown) {
        decision.action = ScalingAction::kHeldCooldown;
        decision.reason = absl::StrCat(
            "held scale ", ScaleDirectionName(direction), ": ", RuleSummary(decision),
            " holds but only ", absl::FormatDuration(now - last_scale_time_),
            " since the last scale event (cooldown ", absl::FormatDuration(cooldown), ")");
        ++counts_.held_cooldown;
        outcome = decision;
      } else {
        bool stable = false;
        for (size_t i : candidates) {
          const double cv = cv_of(i);
          if (cv < policy_.stability_threshold) {
            decision = Decision(now, rules[i], static_cast<int>(i), values[i], cv);
            stable = true;
            break;
          }
        }
        if (stable) {
          outcome = ScaleLocked(direction, now, decision, changes);
        } else {
          decision.action = ScalingAction::kHeldUnstable;
          decision.reason = absl::StrCat(
              "held scale ", ScaleDirectionName(direction), ": ", RuleSummary(decision),
              " holds but cv >= stability_threshold ", Num(policy_.stability_threshold));
          ++counts_.held_unstable;
          outcome = decision;
        }
      }
      if (outcome.action == ScalingAction::kHeldCooldown ||
          outcome.action == ScalingAction::kHeldUnstable ||
          outcome.action == ScalingAction::kHeldAtBound) {
        if (outcome.action != last_held_action_ || outcome.rule_index != last_held_rule_ ||
            now - last_held_time_ >= policy_.window_length) {
          last_held_action_ = outcome.action;
          last_held_rule_ = outcome.rule_index;
          last_held_time_ = now;
          RecordLocked(outcome);
          outcome = events_.back();
        } else {
          outcome.active_devices = ActiveCountLocked();
          outcome.desired_replicas = desired_replicas_;
        }
      }
    } else {
      outcome.reason = "no rule holds";
    }
  }
  if (outcome.action == ScalingAction::kNone) {
    outcome.active_devices = ActiveCountLocked();
    outcome.desired_replicas = desired_replicas_;
  }
  counts_.last_decision = outcome;
  UpdateGaugesLocked(now);
  return outcome;
}

ScalingEvent DynamicScaler::ScaleLocked(ScaleDirection direction, absl::Time now,
                                        ScalingEvent decision, Changes* changes) {
  const int active = ActiveCountLocked();
  const std::string why = RuleSummary(decision);
  if (direction == ScaleDirection::kUp) {
    int candidate = -1;
    for (const auto& [index, state] : devices_) {
      if (state.healthy && !state.active) {
        candidate = index;
        break;
      }
    }
    if (candidate >= 0 && active < MaxActiveLocked()) {
      decision.action = ScalingAction::kActivateDevice;
      decision.device = candidate;
      decision.reason = absl::StrCat("activate device ", candidate, ": ", why);
      SetActiveLocked(candidate, true, DeviceChangeCause::kScaleUp, decision.reason, changes);
      metrics_.decisions_up_device.Increment();
    } else if (desired_replicas_ < policy_.max_replicas) {
      ++desired_replicas_;
      ++counts_.replica_raises;
      decision.action = ScalingAction::kRaiseReplicas;
      decision.reason = absl::StrCat("raise desired_replicas to ", desired_replicas_, " (all ",
                                     active, " usable local devices active): ", why);
      metrics_.decisions_up_replica.Increment();
    } else {
      decision.action = ScalingAction::kHeldAtBound;
      decision.reason =
          absl::StrCat("held scale up: ", why, " holds but ", active,
                       " devices active (max usable) and desired_replicas at max_replicas ",
                       policy_.max_replicas);
      ++counts_.held_at_bound;
      return decision;
    }
  } else {
    if (desired_replicas_ > 1) {
      --desired_replicas_;
      ++counts_.replica_lowerings;
      decision.action = ScalingAction::kLowerReplicas;
      decision.reason = absl::StrCat("lower desired_replicas to ", desired_replicas_, ": ", why);
      metrics_.decisions_down_replica.Increment();
    } else if (active > policy_.min_active_devices) {
      // Drain the least busy device (fewest tasks to move); ties: the
      // highest index, so low indexes stay the stable core.
      int victim = -1;
      double lowest = std::numeric_limits<double>::infinity();
      for (const auto& [index, state] : devices_) {
        if (!state.active) continue;
        const double u = state.has_sample ? state.utilization : 0.0;
        if (u <= lowest) {
          lowest = u;
          victim = index;
        }
      }
      decision.action = ScalingAction::kDeactivateDevice;
      decision.device = victim;
      decision.reason = absl::StrCat("deactivate device ", victim, ": ", why);
      SetActiveLocked(victim, false, DeviceChangeCause::kScaleDown, decision.reason, changes);
      metrics_.decisions_down_device.Increment();
    } else {
      decision.action = ScalingAction::kHeldAtBound;
      decision.reason = absl::StrCat("held scale down: ", why, " holds but ", active,
                                     " devices active = min_active_devices and desired_replicas 1");
      ++counts_.held_at_bound;
      return decision;
    }
  }
  // Evidence gathered before the change described a different fleet.
  last_scale_time_ = now;
  ResetRuleTimersLocked();
  last_held_action_ = ScalingAction::kNone;
  last_held_rule_ = -1;
  RecordLocked(decision);
  return events_.back();
}

// ------------------------------------------------------------ device set

void DynamicScaler::SetActiveLocked(int device, bool active, DeviceChangeCause cause,
                                    const std::string& reason, Changes* changes) {
  DeviceState& state = devices_.at(device);
  if (state.active == active) return;
  state.active = active;
  if (active) {
    ++counts_.device_activations;
  } else {
    ++counts_.device_deactivations;
  }
  changes->push_back(DeviceChange{device, active, cause, reason});
}

void DynamicScaler::EnforceBoundsLocked(absl::Time now, Changes* changes) {
  auto record = [&](ScalingAction action, int device, std::string reason) {
    ScalingEvent e;
    e.time = now;
    e.action = action;
    e.direction =
        action == ScalingAction::kActivateDevice ? ScaleDirection::kUp : ScaleDirection::kDown;
    e.device = device;
    e.reason = std::move(reason);
    return e;
  };
  std::vector<ScalingEvent> events;
  if (!policy_.enabled) {
    for (auto& [index, state] : devices_) {
      if (state.healthy && !state.active) {
        const std::string reason = absl::StrCat(
            "activate device ", index, ": dynamic scaling disabled, all healthy devices active");
        SetActiveLocked(index, true, DeviceChangeCause::kPolicy, reason, changes);
        events.push_back(record(ScalingAction::kActivateDevice, index, reason));
      }
    }
    desired_replicas_ = 1;
  } else {
    while (ActiveCountLocked() > MaxActiveLocked()) {
      int victim = -1;
      for (const auto& [index, state] : devices_) {
        if (state.active) victim = index;  // highest active index
      }
      const std::string reason = absl::StrCat("deactivate device ", victim,
                                              ": above max_active_devices ", MaxActiveLocked());
      SetActiveLocked(victim, false, DeviceChangeCause::kPolicy, reason, changes);
      events.push_back(record(ScalingAction::kDeactivateDevice, victim, reason));
    }
    for (auto& [index, state] : devices_) {
      if (ActiveCountLocked() >= policy_.min_active_devices) break;
      if (!state.healthy || state.active) continue;
      const std::string reason = absl::StrCat(
          "activate device ", index, ": below min_active_devices ", policy_.min_active_devices);
      SetActiveLocked(index, true, DeviceChangeCause::kPolicy, reason, changes);
      events.push_back(record(ScalingAction::kActivateDevice, index, reason));
    }
    desired_replicas_ = std::min(desired_replicas_, policy_.max_replicas);
  }
  for (ScalingEvent& e : events) RecordLocked(std::move(e));
}

absl::Status DynamicScaler::MarkUnhealthy(int device, absl::string_view reason) {
  absl::MutexLock notify_lock(&notify_mu_);
  Changes changes;
  {
    absl::MutexLock lock(&mu_);
    auto it = devices_.find(device);
    if (it == devices_.end()) {
      return absl::NotFoundError(
          absl::StrCat("device: ", device, " is not a device of this daemon"));
    }
    if (!it->second.healthy) return absl::OkStatus();
    const absl::Time now = clock_->Now();
    it->second.healthy = false;
    const std::string why = absl::StrCat("device ", device, " unhealthy: ", reason);
    SetActiveLocked(device, false, DeviceChangeCause::kUnhealthy, why, &changes);
    ++counts_.device_faults;
    metrics_.device_faults.Increment();
    ScalingEvent e;
    e.time = now;
    e.action = ScalingAction::kDeviceUnhealthy;
    e.device = device;
    e.reason = why;
    RecordLocked(std::move(e));
    EnforceBoundsLocked(now, &changes);
    UpdateGaugesLocked(now);
  }
  Notify(changes);
  return absl::OkStatus();
}

absl::Status DynamicScaler::MarkHealthy(int device) {
  absl::MutexLock notify_lock(&notify_mu_);
  Changes changes;
  {
    absl::MutexLock lock(&mu_);
    auto it = devices_.find(device);
    if (it == devices_.end()) {
      return absl::NotFoundError(
          absl::StrCat("device: ", device, " is not a device of this daemon"));
    }
    if (it->second.healthy) return absl::OkStatus();
    const absl::Time now = clock_->Now();
    it->second.healthy = true;
    it->second.has_sample = false;  // its last sample predates the fault
    ScalingEvent e;
    e.time = now;
    e.action = ScalingAction::kDeviceHealthy;
    e.device = device;
    e.reason = absl::StrCat("device ", device, " healthy again");
    RecordLocked(std::move(e));
    EnforceBoundsLocked(now, &changes);
    UpdateGaugesLocked(now);
  }
  Notify(changes);
  return absl::OkStatus();
}

// ----------------------------------------------------------------- policy

absl::Status DynamicScaler::SetPolicy(const ScalingPolicy& policy) {
  RETURN_IF_ERROR(ValidatePolicy(policy));
  absl::MutexLock notify_lock(&notify_mu_);
  Changes changes;
  {
    absl::MutexLock lock(&mu_);
    if (policy.window_length < window_.resolution()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "window_length: ", absl::FormatDuration(policy.window_length),
          " is below the window resolution ", absl::FormatDuration(window_.resolution())));
    }
    const absl::Time now = clock_->Now();
    policy_ = policy;
    ++policy_generation_;
    window_.SetLength(policy.window_length);
    ResetRuleTimersLocked();
    last_held_action_ = ScalingAction::kNone;
    last_held_rule_ = -1;
    ScalingEvent e;
    e.time = now;
    e.action = ScalingAction::kPolicyChanged;
    e.reason =
        absl::StrCat("policy changed: enabled=", policy.enabled ? "true" : "false", ", ",
                     policy.rules.size(), " rules, devices [", policy.min_active_devices, ", ",
                     policy.max_active_devices, "], max_replicas ", policy.max_replicas);
    RecordLocked(std::move(e));
    EnforceBoundsLocked(now, &changes);
    UpdateGaugesLocked(now);
  }
  Notify(changes);
  return absl::OkStatus();
}

ScalingPolicy DynamicScaler::GetPolicy() const {
  absl::MutexLock lock(&mu_);
  return policy_;
}

// -------------------------------------------------------------- observers

int DynamicScaler::RegisterListener(DeviceListener listener) {
  absl::MutexLock lock(&notify_mu_);
  const int id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void DynamicScaler::UnregisterListener(int id) {
  absl::MutexLock lock(&notify_mu_);
  listeners_.erase(id);
}

void DynamicScaler::Notify(const Changes& changes) {
  for (const DeviceChange& change : changes) {
    for (const auto& [id, listener] : listeners_) listener(change);
  }
}

ScalingStats DynamicScaler::GetStats() const {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  ScalingStats stats = counts_;
  stats.enabled = policy_.enabled;
  for (const auto& [index, state] : devices_) {
    if (!state.healthy) {
      stats.unhealthy_devices.push_back(index);
    } else if (state.active) {
      stats.active_devices.push_back(index);
    } else {
      stats.inactive_devices.push_back(index);
    }
  }
  stats.desired_replicas = desired_replicas_;
  stats.replica_demand = ReplicaDemandLocked();
  stats.last_scale_time = last_scale_time_;
  stats.last_evaluation_time = last_evaluation_;
  stats.window_length = policy_.window_length;
  stats.policy = policy_;
  for (int m = 0; m < kNumWorkloadMetrics; ++m) {
    stats.window[m] = window_.Aggregate(static_cast<WorkloadMetric>(m), now, policy_.window_length);
  }
  return stats;
}

std::vector<ScalingEvent> DynamicScaler::GetEvents(size_t limit) const {
  absl::MutexLock lock(&mu_);
  const size_t n = limit == 0 ? events_.size() : std::min(limit, events_.size());
  return {events_.end() - static_cast<std::ptrdiff_t>(n), events_.end()};
}

std::vector<int> DynamicScaler::ActiveDevices() const {
  absl::MutexLock lock(&mu_);
  std::vector<int> out;
  for (const auto& [index, state] : devices_) {
    if (state.active) out.push_back(index);
  }
  return out;
}

bool DynamicScaler::IsActive(int device) const {
  absl::MutexLock lock(&mu_);
  auto it = devices_.find(device);
  return it != devices_.end() && it->second.active;
}

int DynamicScaler::desired_replicas() const {
  absl::MutexLock lock(&mu_);
  return desired_replicas_;
}

// ---------------------------------------------------------------- helpers

void DynamicScaler::RecordLocked(ScalingEvent event) {
  event.sequence = next_sequence_++;
  event.active_devices = ActiveCountLocked();
  event.desired_replicas = desired_replicas_;
  INFERD_LOG(kInfo, "scaler: ", ScalingActionName(event.action), ": ", event.reason);
  events_.push_back(std::move(event));
  while (events_.size() > history_capacity_) events_.pop_front();
}

void DynamicScaler::UpdateGaugesLocked(absl::Time now) {
  const absl::Duration span = policy_.window_length;
  auto mean = [&](WorkloadMetric m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return window_.Aggregate(m, now, span).mean;
  };
  metrics_.queue_length.Set(mean(WorkloadMetric::kQueueLength));
  metrics_.throughput.Set(mean(WorkloadMetric::kThroughput));
  metrics_.processing_time.Set(mean(WorkloadMetric::kProcessingTime));
  metrics_.utilization.Set(mean(WorkloadMetric::kUtilization));
  metrics_.memory_used.Set(mean(WorkloadMetric::kMemoryUsed));
  const int active = ActiveCountLocked();
  const int healthy = HealthyCountLocked();
  metrics_.active_devices.Set(active);
  metrics_.healthy_devices.Set(healthy);
  metrics_.desired_replicas.Set(ReplicaDemandLocked());
}

double DynamicScaler::ReplicaDemandLocked() const {
  const int healthy = HealthyCountLocked();
  const double local = healthy > 0 ? static_cast<double>(ActiveCountLocked()) / healthy : 0.0;
  return local + (desired_replicas_ - 1);
}

int DynamicScaler::ActiveCountLocked() const {
  int n = 0;
  for (const auto& [index, state] : devices_) n += state.active ? 1 : 0;
  return n;
}

int DynamicScaler::HealthyCountLocked() const {
  int n = 0;
  for (const auto& [index, state] : devices_) n += state.healthy ? 1 : 0;
  return n;
}

int DynamicScaler::MaxActiveLocked() const {
  const int n = static_cast<int>(devices_.size());
  return policy_.max_active_devices > 0 ? std::min(policy_.max_active_devices, n) : n;
}

void DynamicScaler::ResetRuleTimersLocked() {
  pending_since_.assign(policy_.rules.size(), absl::InfiniteFuture());
}

// ------------------------------------------------------------------ thread

void DynamicScaler::Start() {
  absl::MutexLock start_lock(&start_mu_);
  if (thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void DynamicScaler::Stop() {
  absl::MutexLock start_lock(&start_mu_);
  if (!thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void DynamicScaler::Loop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      const uint64_t generation = policy_generation_;
      auto wake = [this, generation]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || policy_generation_ != generation;
      };
      // Woken early by Stop() or SetPolicy() (then wait the new interval).
      const bool woken = mu_.AwaitWithTimeout(absl::Condition(&wake), policy_.evaluation_interval);
      if (stopping_) return;
      if (woken) continue;
    }
    EvaluateOnce();
  }
}

}  // namespace inferd
