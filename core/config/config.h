// Config: the daemon's typed configuration, loaded once from YAML (or left
// at the compiled-in defaults, which equal configs/inferd.yaml). Each engine
// gets its own struct. yaml-cpp is used only in config.cc.
//
// Key paths below are the YAML paths. The block the torch-inference
// framework's configuration uses lives, key for key, under
// device.multi_gpu.performance_optimization.
//
// One table in config_keys.cc (kFields, built by Fields()) lists every key: its
// YAML path, the struct member it sets, its allowed values, unit and a
// one-line doc. That table drives parsing, unknown-key detection,
// validation, DescribeConfig() and ConfigKeys(). To add a key:
//   1. add the member, with its default, to the struct below;
//   2. add one Key(...) row to the table in config_keys.cc (path, accessor,
//      check, unit, doc), next to the keys of the same section: its range
//      is checked there and nowhere else;
//   3. add the key, with its comment, to configs/inferd.yaml
//      (tests/core/config fails until the file and the table agree);
//   4. map it onto its engine's options in core/config/engine_options.cc.
//
// Thread-safety: all functions here are pure and safe to call concurrently.
#ifndef INFERD_CORE_CONFIG_CONFIG_H_
#define INFERD_CORE_CONFIG_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace inferd {

// server.tls.*: TLS on the gRPC and metrics ports; empty cert_file = plain.
struct TlsConfig {
  std::string cert_file;       // PEM certificate chain
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM CAs; set = clients must present a cert (mTLS)
  int reload_interval_seconds = 10;  // files are re-read when they change

  bool enabled() const { return !cert_file.empty(); }
  bool operator==(const TlsConfig&) const = default;
};

// server.auth.*: bearer tokens with roles (docs/DEPLOY.md).
struct AuthConfig {
  std::string tokens_file;  // "" = no authentication

  bool enabled() const { return !tokens_file.empty(); }
  bool operator==(const AuthConfig&) const = default;
};

// server.*
struct ServerConfig {
  std::string grpc_listen = "127.0.0.1:50051";
  std::string metrics_listen = "127.0.0.1:9464";  // "" disables the exposer
  int metrics_threads = 4;                        // connections served at once
  int infer_threads = 0;  // ModelInfer completion-queue threads; 0: from the cores
  double metrics_request_timeout_seconds = 10.0;  // per connection, request to reply
  int64_t max_receive_message_bytes = 64ll << 20;
  int64_t max_send_message_bytes = 64ll << 20;
  int max_concurrent_streams = 256;
  double shutdown_delay_seconds = 0.0;   // NOT_SERVING this long before draining
  double shutdown_grace_seconds = 20.0;  // drain in-flight calls up to this
  std::string reflection = "auto";       // auto (on when loopback) | on | off
  std::string log_level = "info";        // debug | info | warning | error
  // Responses one ModelStreamInfer stream may hold (requests running plus
  // responses not yet written) before the daemon stops reading it.
  int max_stream_held_responses = 128;
  // Without it the daemon refuses a grpc_listen beyond loopback with
  // neither TLS nor authentication.
  bool allow_insecure_non_loopback = false;
  TlsConfig tls;
  AuthConfig auth;

  bool operator==(const ServerConfig&) const = default;
};

// device.multi_gpu.performance_optimization.* — placement, memory pool,
// communication and scaling basics.
struct PerformanceConfig {
  int64_t memory_pool_size_mb = 512;
  bool enable_memory_monitoring = true;
  double memory_gc_threshold = 0.8;
  double memory_defrag_threshold = 0.3;
  bool enable_nccl = true;
  int64_t comm_chunk_size_mb = 4;
  int64_t comm_overlap_threshold_mb = 1;
  double comm_bandwidth_limit = 0.8;
  bool enable_dynamic_scaling = true;
  double scale_up_cooldown = 30.0;
  double scale_down_cooldown = 60.0;
  double scaling_evaluation_interval = 10.0;
  double scaling_stability_threshold = 0.1;
  bool enable_advanced_scheduling = true;
  std::string scheduling_strategy = "balanced";
  int max_tasks_per_device = 4;
  double task_timeout = 300.0;
  bool enable_task_preemption = false;
  bool enable_task_migration = false;

  bool operator==(const PerformanceConfig&) const = default;
};

// device.*
struct DeviceConfig {
  // N > 0: use N host devices instead of GPUs. 0: GPUs when present, else
  // one host device.
  int host_devices = 0;
  int64_t host_memory_mb = 2048;      // capacity of each host device
  std::vector<int> cuda_devices;      // CUDA ordinals to use; empty = all
  bool host_inline_when_idle = true;  // see HostDeviceOptions
  PerformanceConfig performance;      // multi_gpu.performance_optimization

  bool operator==(const DeviceConfig&) const = default;
};

// scaling.rules[i]: one scaling rule as written in the file (the names
// docs/SCALING.md uses); core/scaling maps it onto a ScalingRule.
struct ScalingRuleConfig {
  std::string direction;   // up | down
  std::string metric;      // queue_length | processing_time | throughput |
                           // utilization | memory_used | queue_length_per_device
  std::string comparison;  // > | >= | < | <=
  double threshold = 0.0;  // >= 0; <= 1 for utilization and memory_used
  double hold_seconds = 0.0;

  bool operator==(const ScalingRuleConfig&) const = default;
};

// scaling.* — the dynamic scaler's own keys (enable, cooldowns,
// interval and stability stay in PerformanceConfig).
struct ScalingConfig {
  double window_length_seconds = 300.0;  // >= scaling_evaluation_interval
  int min_active_devices = 1;
  int max_active_devices = 0;  // 0 = all devices
  int max_replicas = 8;
  std::vector<ScalingRuleConfig> rules;  // empty = DefaultScalingRules()

  bool operator==(const ScalingConfig&) const = default;
};

// models.*
struct ModelsConfig {
  std::string repository;  // folder of <model>/config.yaml; "" = builtins only
  std::string torch_backend_library;  // libinferd_torch.so; "" = beside the daemon
  // none: the repository loads at start and RepositoryModelLoad/Unload are
  // refused; explicit: they load and unload by name; poll: the repository
  // is also re-scanned every poll_interval_seconds.
  std::string control_mode = "explicit";
  double poll_interval_seconds = 15.0;
  bool operator==(const ModelsConfig&) const = default;
};

// shared_memory.* — system and CUDA shared-memory regions (same host only).
struct SharedMemoryConfig {
  // Registration is refused unless the daemon listens on loopback only,
  // since a region is memory of this machine; true allows it anyway.
  bool allow_non_loopback = false;
  int max_regions = 64;  // registered regions, system and CUDA together
  bool operator==(const SharedMemoryConfig&) const = default;
};

// limits.* — admission limits on request data.
struct LimitsConfig {
  int64_t max_tensor_bytes = 1ll << 30;
  int max_inputs = 64;
  int max_dims = 16;
  int max_watch_streams = 64;                         // per kind: WatchTasks, health Watch
  int64_t max_host_transfer_bytes = 256ll << 20;      // results held for clients to fetch

  bool operator==(const LimitsConfig&) const = default;
};

// memory.* — the memory engine's own keys (docs/MEMORY.md).
struct MemoryConfig {
  double default_lease_seconds = 600.0;   // lease when a request gives none
  double max_lease_seconds = 86400.0;     // longest lease a request may ask for
  double max_pool_fraction = 0.95;        // pool cap as a fraction of device memory
  double monitor_interval_seconds = 1.0;  // maintenance pass period
  double compaction_idle_seconds = 5.0;   // idle time before compacting a device
  double batch_safety_margin = 0.1;       // free memory GetOptimalBatchSize keeps back
  bool zero_new_tensors = true;           // no client reads another's freed bytes
  bool release_segments_on_grow = false;  // trade driver calls for a tighter pool
  int64_t staging_mb = 512;               // pinned staging per GPU; 0 = none

  bool operator==(const MemoryConfig&) const = default;
};

// scheduler.* — the scheduler's own keys (strategy, slots per
// device, timeout, preemption and migration stay in PerformanceConfig).
// docs/SCHEDULER.md describes each policy.
// The most retries a request or task may ask for: the range of
// scheduler.default_max_retries (config_keys.cc) and of a task's
// max_retries (core/sched/task_graph.cc), the bound a job's retry count is
// kept within (Scheduler::Create).
inline constexpr int kMaxRetriesLimit = 16;

struct SchedulerConfig {
  int max_queue_depth = 10000;             // queued per priority, all devices
  double aging_interval_seconds = 2.0;     // one priority level per interval; 0 = none
  int default_max_retries = 2;             // retries after device failures
  double retry_backoff_seconds = 0.01;     // doubles per attempt, at most 1 s
  int unhealthy_threshold = 3;             // consecutive failures that mark a device
  double unhealthy_probe_interval_seconds = 30.0;  // 0 = no probe (operator re-admits)
  int max_retained_tasks = 10000;          // finished tasks kept for GetTask
  int watch_buffer_events = 1024;          // per WatchTasks stream
  bool enable_dynamic_batching = true;
  int64_t batch_max_queue_delay_us = 500;  // default per model
  bool batch_dispatch_when_idle = true;    // a lone request on an idle device runs at once
  int batch_gather_threads = 4;            // copy a batch's inputs together; 1 = alone
  bool batch_gather_on_arrival = false;    // copy small requests as they join their batch
  int max_requests_per_slot = 32;          // a busy device's freed slot runs a group; 1 = none
  int group_slots = 2;                     // slots unbatched requests hold at once; 0 = all
  std::vector<int> preferred_batch_sizes;  // default per model; [] = max batch

  bool operator==(const SchedulerConfig&) const = default;
};

struct Config {
  ServerConfig server;
  DeviceConfig device;
  MemoryConfig memory;
  ScalingConfig scaling;
  SchedulerConfig scheduler;
  ModelsConfig models;
  SharedMemoryConfig shared_memory;
  LimitsConfig limits;

  bool operator==(const Config&) const = default;
};

// Parses YAML text into a Config, starting from the defaults: keys the text
// does not name keep their defaults, and an empty text (or one with only
// comments) yields Config{}. Unknown or duplicate keys, wrong types,
// out-of-range values, a non-map where a map belongs and YAML syntax errors
// give INVALID_ARGUMENT whose message starts with the key path, e.g.
//   "device.multi_gpu.performance_optimization.memory_gc_threshold: 1.5 is
//    out of range [0, 1]" or "server.grpc_listn: unknown key".
// Types are strict: integers accept only plain decimal integers, doubles
// also accept integers, bools only true/false, lists only YAML sequences.
absl::StatusOr<Config> ParseConfig(absl::string_view yaml_text);

// As above; on success also appends to *keys_set (not owned, may be null)
// the full path of every key the text sets, in document order.
absl::StatusOr<Config> ParseConfig(absl::string_view yaml_text, std::vector<std::string>* keys_set);

// ParseConfig checks each key; the checks across keys (ValidateConfig) wait
// until flags have been applied.
// Reads and parses a file. NOT_FOUND when it cannot be read; parse errors
// as ParseConfig, with the message prefixed by the path.
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

// Checks ranges and enums of an assembled Config (after flags override the
// file), and the keys that go together (server.tls.*, a grpc_listen beyond
// loopback). INVALID_ARGUMENT naming the key path and value; OK otherwise.
absl::Status ValidateConfig(const Config& config);

// True when a listen address only takes local connections (127.x,
// localhost, [::1], unix:).
bool IsLoopbackAddress(const std::string& address);

// Returns `config` as YAML with every key and a comment per key (its doc,
// unit and range), for `inferd --print-config`. For a config that passes
// ValidateConfig, ParseConfig of the result gives back `config` exactly.
std::string DescribeConfig(const Config& config);

// One configuration key, as listed by ConfigKeys().
struct ConfigKeyInfo {
  std::string path;   // full YAML path, e.g. "server.grpc_listen"
  std::string type;   // "bool", "int", "double", "string", "list of int" or "list of rule"
  std::string unit;   // e.g. "seconds", "bytes", "MiB", "ratio"; may be ""
  std::string range;  // allowed values, e.g. "[0, 1]" or "auto | on | off"
  std::string doc;    // one line saying what the key does
};

// Lists every key the parser knows, in table (and file) order.
std::vector<ConfigKeyInfo> ConfigKeys();

}  // namespace inferd

#endif  // INFERD_CORE_CONFIG_CONFIG_H_
