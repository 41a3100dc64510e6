#include "core/config/engine_options.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/sched/batching_stage.h"
#include "core/util/check.h"

namespace inferd {
namespace {

// What a Transfer reply carries besides a result's bytes, with room to spare.
constexpr uint64_t kTransferReplyOverhead = 64 << 10;

constexpr char kPerformance[] = "device.multi_gpu.performance_optimization.";

ScalingRule RuleFromConfig(const ScalingRuleConfig& config) {
  ScalingRule rule;
  // ValidateConfig has checked the names; an unknown one fails here loudly.
  rule.direction = config.direction == "down" ? ScaleDirection::kDown : ScaleDirection::kUp;
  INFERD_CHECK(ParseWorkloadMetric(config.metric, &rule.metric));
  INFERD_CHECK(ParseComparison(config.comparison, &rule.comparison));
  rule.threshold = config.threshold;
  rule.hold = absl::Seconds(config.hold_seconds);
  return rule;
}

}  // namespace

std::string ScalingConfigKey(absl::string_view field, int rule_index) {
  if (rule_index >= 0) {
    return absl::StrCat("scaling.rules[", rule_index, "].",
                        field == "hold" ? "hold_seconds" : field);
  }
  if (field == "enabled") return absl::StrCat(kPerformance, "enable_dynamic_scaling");
  if (field == "scale_up_cooldown" || field == "scale_down_cooldown") {
    return absl::StrCat(kPerformance, field);
  }
  if (field == "evaluation_interval") return absl::StrCat(kPerformance, "scaling_evaluation_interval");
  if (field == "stability_threshold") return absl::StrCat(kPerformance, "scaling_stability_threshold");
  if (field == "window_length") return "scaling.window_length_seconds";
  return absl::StrCat("scaling.", field);
}

absl::StatusOr<ScalingPolicy> ScalingPolicyFromConfig(const Config& config) {
  const PerformanceConfig& perf = config.device.performance;
  const ScalingConfig& scaling = config.scaling;
  ScalingPolicy policy;
  policy.enabled = perf.enable_dynamic_scaling;
  policy.scale_up_cooldown = absl::Seconds(perf.scale_up_cooldown);
  policy.scale_down_cooldown = absl::Seconds(perf.scale_down_cooldown);
  policy.evaluation_interval = absl::Seconds(perf.scaling_evaluation_interval);
  policy.stability_threshold = perf.scaling_stability_threshold;
  policy.min_active_devices = scaling.min_active_devices;
  policy.max_active_devices = scaling.max_active_devices;
  policy.max_replicas = scaling.max_replicas;
  policy.window_length = absl::Seconds(scaling.window_length_seconds);
  const bool default_rules = scaling.rules.empty();
  if (!default_rules) {
    policy.rules.clear();
    for (const ScalingRuleConfig& rule : scaling.rules)
      policy.rules.push_back(RuleFromConfig(rule));
  }
  const absl::Status status = ValidatePolicy(policy);
  if (status.ok()) return policy;
  if (default_rules && absl::StartsWith(status.message(), "rules[")) {
    // The user wrote no rule: blame the key that made the defaults invalid.
    return absl::InvalidArgumentError(
        absl::StrCat("scaling.window_length_seconds: ", scaling.window_length_seconds,
                     " is shorter than a default rule's hold (", status.message(),
                     "); raise it or write scaling.rules"));
  }
  return RenamePolicyField(status, ScalingConfigKey);
}

absl::StatusOr<ScalerOptions> ScalerOptionsFromConfig(const Config& config,
                                                      std::vector<int> devices) {
  absl::StatusOr<ScalingPolicy> policy = ScalingPolicyFromConfig(config);
  if (!policy.ok()) return policy.status();
  ScalerOptions options;
  options.devices = std::move(devices);
  options.window_resolution = std::min(absl::Seconds(1), policy->evaluation_interval);
  options.policy = *std::move(policy);
  return options;
}

DiscoveryOptions DiscoveryOptionsFromConfig(const Config& c) {
  DiscoveryOptions o;
  o.host_devices = c.device.host_devices;
  o.host_capacity_bytes = static_cast<uint64_t>(c.device.host_memory_mb) << 20;
  o.cuda_ordinals = c.device.cuda_devices;
  o.streams_per_device = c.device.performance.max_tasks_per_device + 1 +
                         (c.device.performance.enable_task_preemption ? 1 : 0);
  o.host_inline_when_idle = c.device.host_inline_when_idle;
  return o;
}

MemoryEngineOptions MemoryOptionsFromConfig(const Config& c) {
  const PerformanceConfig& p = c.device.performance;
  MemoryEngineOptions o;
  o.pool_size_mb = static_cast<uint64_t>(p.memory_pool_size_mb);
  o.gc_threshold = p.memory_gc_threshold;
  o.defrag_threshold = p.memory_defrag_threshold;
  o.enable_monitoring = p.enable_memory_monitoring;
  o.max_pool_fraction = c.memory.max_pool_fraction;
  o.monitor_interval = absl::Seconds(c.memory.monitor_interval_seconds);
  o.compaction_idle_time = absl::Seconds(c.memory.compaction_idle_seconds);
  o.default_lease = absl::Seconds(c.memory.default_lease_seconds);
  o.max_lease = absl::Seconds(c.memory.max_lease_seconds);
  o.batch_safety_margin = c.memory.batch_safety_margin;
  o.zero_new_tensors = c.memory.zero_new_tensors;
  o.release_segments_on_grow = c.memory.release_segments_on_grow;
  o.staging_mb = static_cast<uint64_t>(c.memory.staging_mb);
  o.max_tensor_bytes = static_cast<uint64_t>(c.limits.max_tensor_bytes);
  o.max_dims = c.limits.max_dims;
  return o;
}

CommEngineOptions CommOptionsFromConfig(const Config& c) {
  const PerformanceConfig& p = c.device.performance;
  CommEngineOptions o;
  o.transfer.chunk_bytes = static_cast<uint64_t>(p.comm_chunk_size_mb) << 20;
  o.transfer.overlap_threshold_bytes = static_cast<uint64_t>(p.comm_overlap_threshold_mb) << 20;
  o.transfer.bandwidth_limit = p.comm_bandwidth_limit;
  o.collective.enable_nccl = p.enable_nccl;
  const auto max_send = static_cast<uint64_t>(c.server.max_send_message_bytes);
  o.transfer.max_host_result_bytes =
      max_send > 2 * kTransferReplyOverhead ? max_send - kTransferReplyOverhead : max_send / 2;
  o.transfer.max_held_host_bytes = static_cast<uint64_t>(c.limits.max_host_transfer_bytes);
  return o;
}

absl::StatusOr<SchedulerOptions> SchedulerOptionsFromConfig(const Config& config) {
  const PerformanceConfig& perf = config.device.performance;
  const SchedulerConfig& sched = config.scheduler;
  SchedulerOptions o;
  absl::StatusOr<PlacementStrategy> strategy = ParsePlacementStrategy(perf.scheduling_strategy);
  if (!strategy.ok()) return strategy.status();
  o.strategy = *strategy;
  o.max_tasks_per_device = perf.max_tasks_per_device;
  o.default_timeout = absl::Seconds(perf.task_timeout);
  o.enable_preemption = perf.enable_task_preemption;
  o.enable_migration = perf.enable_task_migration;
  o.max_queue_depth = sched.max_queue_depth;
  o.aging_interval = absl::Seconds(sched.aging_interval_seconds);
  o.default_max_retries = sched.default_max_retries;
  o.retry_backoff = absl::Seconds(sched.retry_backoff_seconds);
  o.unhealthy_threshold = sched.unhealthy_threshold;
  o.unhealthy_probe_interval = absl::Seconds(sched.unhealthy_probe_interval_seconds);
  o.max_retained_tasks = static_cast<size_t>(sched.max_retained_tasks);
  o.watch_buffer_events = static_cast<size_t>(sched.watch_buffer_events);
  o.default_batching.enabled = sched.enable_dynamic_batching;
  o.default_batching.max_queue_delay = absl::Microseconds(sched.batch_max_queue_delay_us);
  o.default_batching.preferred_batch_sizes = sched.preferred_batch_sizes;
  o.default_batching.dispatch_when_idle = sched.batch_dispatch_when_idle;
  o.batch_gather_threads = sched.batch_gather_threads;
  o.batch_gather_on_arrival = sched.batch_gather_on_arrival;
  o.max_requests_per_slot = sched.max_requests_per_slot;
  o.group_slots = sched.group_slots;
  o.limits = config.limits;
  o.submit_tasks_async = true;
  return o;
}

SharedMemoryOptions SharedMemoryOptionsFromConfig(const Config& config,
                                                  std::vector<Device*> devices) {
  SharedMemoryOptions options;
  options.max_regions = config.shared_memory.max_regions;
  options.devices = std::move(devices);
  return options;
}

ModelRepositoryOptions ModelRepositoryOptionsFromConfig(const Config& config,
                                                        std::vector<Device*> devices) {
  ModelRepositoryOptions options;
  options.devices = std::move(devices);
  options.torch_backend_library = config.models.torch_backend_library;
  return options;
}

ModelControlMode ModelControlModeFromConfig(const Config& config) {
  ModelControlMode mode = ModelControlMode::kExplicit;
  (void)ParseModelControlMode(config.models.control_mode, &mode);  // checked by the key table
  return mode;
}

std::function<std::optional<BatchingPolicy>(const ModelSignature&)> ModelBatchingLookup(
    const ModelRepository* repository, BatchingPolicy defaults) {
  if (repository == nullptr) return nullptr;
  return [repository, defaults = std::move(defaults)](
             const ModelSignature& sig) -> std::optional<BatchingPolicy> {
    absl::StatusOr<ModelConfigSpec> spec = repository->ReadConfig(sig.name);
    if (!spec.ok()) return std::nullopt;
    return ModelBatchingPolicy(*spec, defaults);
  };
}

}  // namespace inferd
