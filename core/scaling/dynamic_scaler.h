// DynamicScaler: decides how many of this machine's devices are in use, and
// how many replicas of the daemon the load calls for. It keeps a workload
// window fed by the scheduler, device monitors and clients; every
// evaluation_interval it checks the ScalingPolicy's rules (hold time,
// stability, cooldown, min/max) and activates or deactivates one device, or
// raises or lowers desired_replicas when local devices are exhausted. Other
// engines register listeners and react (the scheduler stops placing on a
// deactivated device and moves its queued tasks). Every decision is logged
// and kept, with its reason, in a bounded event history.
//
// Cooldowns are measured from the last scale event of EITHER direction, the
// candidate action's direction choosing the length: an up-then-down reversal
// waits scale_down_cooldown, a down-then-up one scale_up_cooldown. Separate
// per-direction clocks would let the scaler flap up/down every evaluation.
//
// Time comes from the injected Clock. Tests call EvaluateOnce() after
// advancing a FakeClock; the daemon calls Start() for a background thread
// that waits (Mutex::AwaitWithTimeout, no polling) between evaluations.
//
// Thread-safe. Listeners run on the thread that caused the change, without
// the state lock held, serialized (see DeviceListener).
#ifndef INFERD_CORE_SCALING_DYNAMIC_SCALER_H_
#define INFERD_CORE_SCALING_DYNAMIC_SCALER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/scaling/scaling_event.h"
#include "core/scaling/scaling_metrics.h"
#include "core/scaling/scaling_policy.h"
#include "core/scaling/scaling_stats.h"
#include "core/scaling/workload_window.h"
#include "core/util/clock.h"
#include "prometheus/registry.h"

namespace inferd {

// Returns the current utilization and memory samples of the devices. The
// scaler calls it at the start of every evaluation (EvaluateOnce,
// EvaluateIfDue when due, the background thread), on the evaluating thread,
// with none of its locks held, and records what it returns as
// RecordDeviceSample does (bad samples are logged and dropped). So devices
// are sampled at the evaluation cadence without a polling thread of their own.
using DeviceSampler = std::function<std::vector<DeviceSample>()>;

struct ScalerOptions {
  std::vector<int> devices;  // DeviceInfo::index of every device; unique, >= 0
  ScalingPolicy policy;
  DeviceSampler device_sampler;  // optional
  // Devices active at start (the lowest indexes), clamped to the policy's
  // bounds; 0 = all. Ignored when the policy is disabled (all are active).
  int initial_active_devices = 0;
  absl::Duration window_resolution = absl::Seconds(1);
  size_t event_history_capacity = 256;
};

class DynamicScaler {
 public:
  // INVALID_ARGUMENT naming the field for bad options (empty or duplicate
  // devices, an invalid policy, ...). `clock` and `registry` are borrowed
  // and must outlive the scaler. Listeners are not told about the initial
  // active set: read ActiveDevices() after registering.
  static absl::StatusOr<std::unique_ptr<DynamicScaler>> Create(ScalerOptions options, Clock* clock,
                                                               prometheus::Registry& registry);

  DynamicScaler(const DynamicScaler&) = delete;
  DynamicScaler& operator=(const DynamicScaler&) = delete;
  ~DynamicScaler();  // Stop()s

  // --- samples (INVALID_ARGUMENT for negative / non-finite / >1 fractions,
  // naming the field; NOT_FOUND for an unknown device) ---
  absl::Status RecordSchedulerSample(const SchedulerSample& sample);
  // The clients' entry point (Scaling.CollectWorkloadMetrics); same data as a
  // scheduler sample.
  absl::Status CollectWorkloadMetrics(double queue_length, double processing_time,
                                      double throughput);
  absl::Status RecordDeviceSample(const DeviceSample& sample);

  // --- evaluation ---
  // Evaluates the rules now, acts, and returns the outcome (also kept as
  // GetStats().last_decision; held/acted outcomes go to the history).
  ScalingEvent EvaluateOnce();
  // EvaluateOnce() when evaluation_interval has passed since the last
  // evaluation (or none happened); returns whether it evaluated.
  bool EvaluateIfDue();
  // Starts / stops the background evaluation thread. Idempotent.
  void Start();
  void Stop();

  // --- health ---
  // Removes `device` from the active set (listeners told), records a fault
  // event, and activates a replacement if the active set fell below
  // min_active_devices. OK if already unhealthy; NOT_FOUND if unknown.
  absl::Status MarkUnhealthy(int device, absl::string_view reason);
  // Returns `device` to the healthy pool; it becomes active when scaling is
  // disabled or the active set is below min_active_devices.
  absl::Status MarkHealthy(int device);

  // --- policy ---
  // Validates (INVALID_ARGUMENT naming the field, nothing changed) and
  // applies: rule hold timers restart; bounds are enforced at once.
  absl::Status SetPolicy(const ScalingPolicy& policy);
  ScalingPolicy GetPolicy() const;

  // --- observers ---
  // Returns an id for UnregisterListener.
  int RegisterListener(DeviceListener listener);
  void UnregisterListener(int id);

  ScalingStats GetStats() const;
  // Returns up to `limit` most recent events, oldest first (0 = all kept).
  std::vector<ScalingEvent> GetEvents(size_t limit = 0) const;
  std::vector<int> ActiveDevices() const;
  bool IsActive(int device) const;
  int desired_replicas() const;

 private:
  struct DeviceState {
    bool healthy = true;
    bool active = false;
    bool has_sample = false;
    double utilization = 0.0;  // latest sample
    double memory_used = 0.0;
  };
  using Changes = std::vector<DeviceChange>;

  DynamicScaler(ScalerOptions options, Clock* clock, prometheus::Registry& registry);

  ScalingEvent EvaluateLocked(absl::Time now, Changes* changes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies an up (or down) decision for `rule` whose value/cv were
  // measured; returns the recorded outcome.
  ScalingEvent ScaleLocked(ScaleDirection direction, absl::Time now, ScalingEvent decision,
                           Changes* changes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetActiveLocked(int device, bool active, DeviceChangeCause cause, const std::string& reason,
                       Changes* changes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnforceBoundsLocked(absl::Time now, Changes* changes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordLocked(ScalingEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddFleetSampleLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddSchedulerSample(const SchedulerSample& sample, bool client);
  void UpdateGaugesLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ActiveCountLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What inferd_scaler_desired_replicas exports (see ScalingMetrics).
  double ReplicaDemandLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int HealthyCountLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int MaxActiveLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResetRuleTimersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Notify(const Changes& changes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(notify_mu_);
  // Calls device_sampler_ (if any) and records its samples.
  void SampleDevices() ABSL_LOCKS_EXCLUDED(notify_mu_, mu_);
  void Loop();

  // Constant after construction.
  Clock* const clock_;
  const size_t history_capacity_;
  const DeviceSampler device_sampler_;
  ScalingMetrics metrics_;

  // Serializes state changes with their listener calls (taken before mu_).
  absl::Mutex notify_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::map<int, DeviceListener> listeners_ ABSL_GUARDED_BY(notify_mu_);
  int next_listener_id_ ABSL_GUARDED_BY(notify_mu_) = 1;

  mutable absl::Mutex mu_;
  ScalingPolicy policy_ ABSL_GUARDED_BY(mu_);
  uint64_t policy_generation_ ABSL_GUARDED_BY(mu_) = 0;
  WorkloadWindow window_ ABSL_GUARDED_BY(mu_);
  std::map<int, DeviceState> devices_ ABSL_GUARDED_BY(mu_);
  int desired_replicas_ ABSL_GUARDED_BY(mu_) = 1;
  // Per rule: time of the first evaluation of the current unbroken run in
  // which the rule's condition was true; InfiniteFuture when not pending.
  std::vector<absl::Time> pending_since_ ABSL_GUARDED_BY(mu_);
  absl::Time last_scale_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time last_evaluation_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // The last recorded "held" event: an identical hold (same action and
  // rule) is recorded again only after window_length or a scale event.
  ScalingAction last_held_action_ ABSL_GUARDED_BY(mu_) = ScalingAction::kNone;
  int last_held_rule_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Time last_held_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::deque<ScalingEvent> events_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  ScalingStats counts_ ABSL_GUARDED_BY(mu_);  // counters and last_decision
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Serializes Start/Stop.
  absl::Mutex start_mu_ ABSL_ACQUIRED_BEFORE(notify_mu_);
  std::thread thread_ ABSL_GUARDED_BY(start_mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_DYNAMIC_SCALER_H_
