// Engine options from the daemon config: the one place where config keys
// become the options each engine's Create takes. The config key table
// (config_keys.cc) checks each key's type and range; the functions here
// translate and check combinations of keys; each engine's Create checks only
// the invariants it needs to run. The composition root (server/daemon.cc)
// calls these and wires the engines together.
#ifndef INFERD_CORE_CONFIG_ENGINE_OPTIONS_H_
#define INFERD_CORE_CONFIG_ENGINE_OPTIONS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/comm/comm_engine.h"
#include "core/config/config.h"
#include "core/device/discovery.h"
#include "core/memory/memory_engine.h"
#include "core/models/model_repository.h"
#include "core/models/repository_manager.h"
#include "core/scaling/dynamic_scaler.h"
#include "core/scaling/scaling_policy.h"
#include "core/sched/scheduler_options.h"
#include "core/shm/shared_memory_registry.h"

namespace inferd {

// device.*: which devices, and one stream per scheduler slot plus stream 0
// for the memory engine and, with preemption on, one for the slot a
// CRITICAL task borrows (docs/SCHEDULER.md).
DiscoveryOptions DiscoveryOptionsFromConfig(const Config& config);

// device.multi_gpu.performance_optimization.memory_* and memory.*, with
// limits.max_tensor_bytes and limits.max_dims.
MemoryEngineOptions MemoryOptionsFromConfig(const Config& config);

// The comm_* keys, and what a Transfer reply may carry: results up to
// server.max_send_message_bytes less the reply's overhead, at most
// limits.max_host_transfer_bytes held on the host.
CommEngineOptions CommOptionsFromConfig(const Config& config);

// The scheduler's keys (device.multi_gpu.performance_optimization.* and
// scheduler.*). INVALID_ARGUMENT naming the key for an unknown strategy.
absl::StatusOr<SchedulerOptions> SchedulerOptionsFromConfig(const Config& config);

// Returns the scaling policy, checked with ValidatePolicy (the key table
// checks each key alone; this checks their combination, e.g. a rule's hold
// against the window). scaling.rules: [] gives DefaultScalingRules().
// INVALID_ARGUMENT names the config key, e.g. "scaling.rules[1].hold_seconds:
// 600 exceeds window_length (300)".
absl::StatusOr<ScalingPolicy> ScalingPolicyFromConfig(const Config& config);

// Returns options for `devices` (DeviceInfo indexes) with the policy above,
// all devices active at start, and a window resolution of
// min(1 s, evaluation interval) so every evaluation sees its own samples.
absl::StatusOr<ScalerOptions> ScalerOptionsFromConfig(const Config& config,
                                                      std::vector<int> devices);

// shared_memory.max_regions; CUDA regions may be opened on `devices`
// (borrowed).
SharedMemoryOptions SharedMemoryOptionsFromConfig(const Config& config,
                                                  std::vector<Device*> devices);

// models.torch_backend_library, for models loaded onto `devices`
// (borrowed).
ModelRepositoryOptions ModelRepositoryOptionsFromConfig(const Config& config,
                                                        std::vector<Device*> devices);
// models.control_mode (the key table has checked the name; kExplicit for
// any other).
ModelControlMode ModelControlModeFromConfig(const Config& config);

// The scheduler's batching_lookup for models of `repository` (borrowed;
// must outlive the lookup): a model's config.yaml dynamic_batching block
// over `defaults` (scheduler.batching.*), read when the model is first
// batched. Null `repository`: no lookup (every model gets the defaults).
std::function<std::optional<BatchingPolicy>(const ModelSignature&)> ModelBatchingLookup(
    const ModelRepository* repository, BatchingPolicy defaults);

// Returns the config key of a ScalingPolicy field (see PolicyFieldRenamer):
// ("scale_up_cooldown", -1) -> "device.multi_gpu.performance_optimization.
// scale_up_cooldown", ("hold", 2) -> "scaling.rules[2].hold_seconds".
std::string ScalingConfigKey(absl::string_view field, int rule_index);

}  // namespace inferd

#endif  // INFERD_CORE_CONFIG_ENGINE_OPTIONS_H_
