// The config key table (config_keys.h): every key's type, range, unit and
// documentation, and the checks the ranges are made of.
#include "core/config/config_keys.h"

#include "core/config/yaml_util.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/util/status_macros.h"

namespace inferd::config_internal {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kIntMax = std::numeric_limits<int>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();
// Sizes in MiB stay below 16 TiB so converting them to bytes never overflows.
constexpr int64_t kMaxMiB = int64_t{1} << 24;

// Number text for ranges and messages: "1.5", "30", "inf".
std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return absl::StrCat(v);
}
std::string Num(int64_t v) { return v == kInt64Max ? "inf" : absl::StrCat(v); }

// ---------------------------------------------------------------------------
// Checks. Each is a callable returning "" when the value is allowed, else the
// problem (the message after "<path>: "), plus Describe() for docs.

// Closed integer interval [lo, hi]; hi == kInt64Max reads as "inf)".
struct IntRange {
  int64_t lo;
  int64_t hi;
  std::string Describe() const {
    return absl::StrCat("[", Num(lo), ", ", Num(hi), hi == kInt64Max ? ")" : "]");
  }
  std::string operator()(int64_t v) const {
    if (v >= lo && v <= hi) return "";
    return absl::StrCat(v, " is out of range ", Describe());
  }
};

// Interval of doubles with open or closed ends; hi may be +inf.
struct DoubleRange {
  double lo;
  double hi;
  bool lo_open = false;
  bool hi_open = false;
  std::string Describe() const {
    return absl::StrCat(lo_open ? "(" : "[", Num(lo), ", ", Num(hi),
                        hi_open || std::isinf(hi) ? ")" : "]");
  }
  std::string operator()(double v) const {
    bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (ok) return "";
    return absl::StrCat(FormatDouble(v), " is out of range ", Describe());
  }
};

DoubleRange Ratio() { return {0.0, 1.0}; }
DoubleRange NonNegativeSeconds() { return {0.0, kInf}; }
DoubleRange PositiveSeconds() { return {0.0, kInf, /*lo_open=*/true}; }

struct OneOf {
  std::vector<std::string> allowed;
  std::string Describe() const { return absl::StrJoin(allowed, " | "); }
  std::string operator()(const std::string& v) const {
    for (const std::string& a : allowed) {
      if (v == a) return "";
    }
    return absl::StrCat(Quote(v), " is not one of ", absl::StrJoin(allowed, ", "));
  }
};

struct AnyBool {
  std::string Describe() const { return "true | false"; }
  std::string operator()(bool) const { return ""; }
};

struct AnyString {
  std::string Describe() const { return "any string"; }
  std::string operator()(const std::string&) const { return ""; }
};

struct FilePath {
  std::string Describe() const { return "a file path, or \"\" for none"; }
  std::string operator()(const std::string&) const { return ""; }
};

// "host:port" with a non-empty host (name, IPv4 or [IPv6]) and a port in
// [0, 65535]; "" too when allow_empty.
struct HostPort {
  bool allow_empty = false;
  std::string Describe() const {
    return allow_empty ? "host:port, or \"\" to disable" : "host:port";
  }
  std::string operator()(const std::string& v) const {
    if (v.empty() && allow_empty) return "";
    std::string bad = absl::StrCat(Quote(v), " is not host:port");
    size_t colon = v.rfind(':');
    if (colon == std::string::npos || colon == 0) return bad;
    absl::string_view host(v.data(), colon);
    absl::string_view port(v.data() + colon + 1, v.size() - colon - 1);
    if (host.front() == '[') {
      if (host.size() < 3 || host.back() != ']') return bad;
      for (char c : host.substr(1, host.size() - 2)) {
        if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return bad;
      }
    } else {
      for (char c : host) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
          return bad;
        }
      }
    }
    if (port.empty() || port.size() > 5) return bad;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return bad;
    }
    int port_number = 0;
    if (!absl::SimpleAtoi(port, &port_number) || port_number > 65535) {
      return absl::StrCat(Quote(v), ": port ", port, " is out of range [0, 65535]");
    }
    return "";
  }
};

// Distinct CUDA ordinals >= 0.
struct DeviceOrdinals {
  std::string Describe() const { return "distinct ordinals >= 0; [] = all"; }
  std::string operator()(const std::vector<int>& v) const {
    std::set<int> seen;
    for (int ordinal : v) {
      if (ordinal < 0) return absl::StrCat(ordinal, " is out of range [0, inf)");
      if (!seen.insert(ordinal).second) return absl::StrCat(ordinal, " is listed twice");
    }
    return "";
  }
};

// Batch sizes in [1, 65536] (scheduler.preferred_batch_sizes).
struct BatchSizes {
  std::string Describe() const { return "sizes in [1, 65536]; [] = the model's max_batch_size"; }
  std::string operator()(const std::vector<int>& v) const {
    for (int size : v) {
      if (size < 1 || size > 65536) return absl::StrCat(size, " is out of range [1, 65536]");
    }
    return "";
  }
};

// scaling.rules: each rule's names are known, its threshold and hold in
// range. Checks that involve other keys (hold vs window length, the default
// rules) are ValidatePolicy's, run by ScalingPolicyFromConfig
// (core/config/engine_options.h).

struct ScalingRules {
  std::string Describe() const {
    return "list of {direction, metric, comparison, threshold, hold_seconds}; [] = default rules";
  }
  std::string operator()(const std::vector<ScalingRuleConfig>& rules) const {
    if (rules.size() > kMaxScalingRules) {
      return absl::StrCat(rules.size(), " rules exceed the limit of ", kMaxScalingRules);
    }
    static const OneOf kDirections{{"up", "down"}};
    // WorkloadMetricName()'s names (tests/core/scaling checks they agree).
    static const OneOf kMetrics{{"queue_length", "processing_time", "throughput", "utilization",
                                 "memory_used", "queue_length_per_device"}};
    static const OneOf kComparisons{{">", ">=", "<", "<="}};
    for (size_t i = 0; i < rules.size(); ++i) {
      const ScalingRuleConfig& rule = rules[i];
      const std::string at = absl::StrCat("[", i, "].");
      if (std::string p = kDirections(rule.direction); !p.empty()) {
        return absl::StrCat(at, "direction: ", p);
      }
      if (std::string p = kMetrics(rule.metric); !p.empty()) {
        return absl::StrCat(at, "metric: ", p);
      }
      if (std::string p = kComparisons(rule.comparison); !p.empty()) {
        return absl::StrCat(at, "comparison: ", p);
      }
      const bool fraction = rule.metric == "utilization" || rule.metric == "memory_used";
      const DoubleRange threshold{0.0, fraction ? 1.0 : kInf};
      if (std::string p = threshold(rule.threshold); !p.empty()) {
        return absl::StrCat(at, "threshold: ", p,
                            fraction ? absl::StrCat(" for ", rule.metric) : "");
      }
      if (std::string p = NonNegativeSeconds()(rule.hold_seconds); !p.empty()) {
        return absl::StrCat(at, "hold_seconds: ", p);
      }
    }
    return "";
  }
};

// One table row. `accessor` is a captureless generic lambda
// `[](auto* c) { return &c->section.member; }`; the member's type picks the
// parser. `check` is one of the checks above.
template <typename Accessor, typename Check>
FieldSpec Key(std::string path, Accessor accessor, Check check, std::string unit, std::string doc) {
  using T = std::remove_pointer_t<decltype(accessor(static_cast<Config*>(nullptr)))>;
  TypedField<T> field{static_cast<T* (*)(Config*)>(accessor),
                      static_cast<const T* (*)(const Config*)>(accessor),
                      std::function<std::string(const T&)>(check)};
  return FieldSpec{std::move(path), std::move(unit), check.Describe(), std::move(doc),
                   std::move(field)};
}

}  // namespace

// ---------------------------------------------------------------------------
// Formatting of values for messages and for DescribeConfig().

// Writes `s` as a YAML double-quoted scalar (bytes >= 0x80 pass through, so
// UTF-8 stays readable).

std::string FormatDouble(double v) {
  if (v == std::trunc(v) && std::fabs(v) < 1e15) return absl::StrFormat("%.1f", v);
  std::string text;
  for (int precision = 1; precision <= 17; ++precision) {
    text = absl::StrFormat("%.*g", precision, v);
    double back = 0;
    if (absl::SimpleAtod(text, &back) && back == v) break;
  }
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

std::string FormatValue(bool v) { return v ? "true" : "false"; }
std::string FormatValue(int v) { return absl::StrCat(v); }
std::string FormatValue(int64_t v) { return absl::StrCat(v); }
std::string FormatValue(double v) { return FormatDouble(v); }
std::string FormatValue(const std::string& v) { return Quote(v); }
std::string FormatValue(const std::vector<int>& v) {
  return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
}
// Flow style, one map per rule, so the result parses back exactly.
std::string FormatValue(const std::vector<ScalingRuleConfig>& rules) {
  return absl::StrCat(
      "[",
      absl::StrJoin(rules, ", ",
                    [](std::string* out, const ScalingRuleConfig& r) {
                      absl::StrAppend(out, "{direction: ", Quote(r.direction),
                                      ", metric: ", Quote(r.metric),
                                      ", comparison: ", Quote(r.comparison),
                                      ", threshold: ", FormatDouble(r.threshold),
                                      ", hold_seconds: ", FormatDouble(r.hold_seconds), "}");
                    }),
      "]");
}

// Keys of one section must stay together (DescribeConfig relies on it).
const std::vector<FieldSpec>& Fields() {
  static const auto* const kFields = new std::vector<FieldSpec>{
      // clang-format off
      // server.*
      Key("server.grpc_listen",
          [](auto* c) { return &c->server.grpc_listen; },
          HostPort{}, "", "Address the gRPC server binds (port 0 picks a free port)"),
      Key("server.metrics_listen",
          [](auto* c) { return &c->server.metrics_listen; },
          HostPort{.allow_empty = true}, "",
          "Address the metrics endpoint binds (HTTP, or HTTPS with server.tls)"),
      Key("server.infer_threads",
          [](auto* c) { return &c->server.infer_threads; },
          IntRange{0, 64}, "threads",
          "Threads serving ModelInfer (each on its own gRPC completion queue); 0: half the "
          "cores, at least 2 and at most 8"),
      Key("server.metrics_threads",
          [](auto* c) { return &c->server.metrics_threads; },
          IntRange{1, 64}, "threads", "Metrics connections served at once"),
      Key("server.metrics_request_timeout_seconds",
          [](auto* c) { return &c->server.metrics_request_timeout_seconds; },
          DoubleRange{0.0, 300.0, /*lo_open=*/true}, "seconds",
          "Longest a metrics connection may take to send its request or receive the reply"),
      Key("server.max_receive_message_bytes",
          [](auto* c) { return &c->server.max_receive_message_bytes; },
          IntRange{1024, kIntMax}, "bytes", "Largest gRPC message the server accepts"),
      Key("server.max_send_message_bytes",
          [](auto* c) { return &c->server.max_send_message_bytes; },
          IntRange{1024, kIntMax}, "bytes", "Largest gRPC message the server sends"),
      Key("server.max_concurrent_streams",
          [](auto* c) { return &c->server.max_concurrent_streams; },
          IntRange{1, 65536}, "streams", "Most concurrent gRPC streams per client connection"),
      Key("server.shutdown_delay_seconds",
          [](auto* c) { return &c->server.shutdown_delay_seconds; },
          DoubleRange{0.0, 300.0}, "seconds",
          "How long health reports NOT_SERVING before the server stops taking calls "
          "(a probe period, so load balancers move away first)"),
      Key("server.shutdown_grace_seconds",
          [](auto* c) { return &c->server.shutdown_grace_seconds; },
          NonNegativeSeconds(), "seconds", "How long shutdown waits for in-flight calls to drain"),
      Key("server.reflection",
          [](auto* c) { return &c->server.reflection; },
          OneOf{{"auto", "on", "off"}}, "",
          "gRPC server reflection; auto = on when bound to loopback"),
      Key("server.max_stream_held_responses",
          [](auto* c) { return &c->server.max_stream_held_responses; },
          IntRange{1, 65536}, "responses",
          "Requests running plus responses unwritten on one ModelStreamInfer stream before "
          "it stops reading"),
      Key("server.log_level",
          [](auto* c) { return &c->server.log_level; },
          OneOf{{"debug", "info", "warning", "error"}}, "", "Least severe log level written"),
      Key("server.allow_insecure_non_loopback",
          [](auto* c) { return &c->server.allow_insecure_non_loopback; }, AnyBool{}, "",
          "Start with grpc_listen beyond loopback and neither TLS nor auth (logged as a warning)"),
      Key("server.tls.cert_file",
          [](auto* c) { return &c->server.tls.cert_file; }, FilePath{}, "",
          "PEM certificate chain; set = TLS on the gRPC and metrics ports"),
      Key("server.tls.key_file",
          [](auto* c) { return &c->server.tls.key_file; }, FilePath{}, "",
          "PEM private key of cert_file"),
      Key("server.tls.client_ca_file",
          [](auto* c) { return &c->server.tls.client_ca_file; }, FilePath{}, "",
          "PEM CA bundle; set = clients must present a certificate it signed (mutual TLS)"),
      Key("server.tls.reload_interval_seconds",
          [](auto* c) { return &c->server.tls.reload_interval_seconds; },
          IntRange{1, 86400}, "seconds",
          "How often the TLS files are checked for changes"),
      Key("server.auth.tokens_file",
          [](auto* c) { return &c->server.auth.tokens_file; }, FilePath{}, "",
          "Bearer tokens, one 'name role token' a line (role infer or admin); "
          "\"\" = no authentication"),

      // device.*
      Key("device.host_devices",
          [](auto* c) { return &c->device.host_devices; },
          IntRange{0, 64}, "devices",
          "N > 0: run on N host (CPU) devices; 0: GPUs, or one host device if none"),
      Key("device.host_memory_mb",
          [](auto* c) { return &c->device.host_memory_mb; },
          IntRange{1, kMaxMiB}, "MiB", "Memory capacity of each host device"),
      Key("device.cuda_devices",
          [](auto* c) { return &c->device.cuda_devices; },
          DeviceOrdinals{}, "", "CUDA ordinals to use"),
      Key("device.host_inline_when_idle",
          [](auto* c) { return &c->device.host_inline_when_idle; },
          AnyBool{}, "",
          "Host streams run work on the caller's thread when idle (false: always async)"),

      // device.multi_gpu.performance_optimization.* (placement, memory pool, comm, scaling)
      Key("device.multi_gpu.performance_optimization.memory_pool_size_mb",
          [](auto* c) { return &c->device.performance.memory_pool_size_mb; },
          IntRange{1, kMaxMiB}, "MiB", "Size of each device's memory pool"),
      Key("device.multi_gpu.performance_optimization.enable_memory_monitoring",
          [](auto* c) { return &c->device.performance.enable_memory_monitoring; },
          AnyBool{}, "", "Track per-device memory usage and export it as metrics"),
      Key("device.multi_gpu.performance_optimization.memory_gc_threshold",
          [](auto* c) { return &c->device.performance.memory_gc_threshold; },
          Ratio(), "ratio", "Pool usage above which garbage collection runs"),
      Key("device.multi_gpu.performance_optimization.memory_defrag_threshold",
          [](auto* c) { return &c->device.performance.memory_defrag_threshold; },
          DoubleRange{0.0, 1.0, /*lo_open=*/true}, "ratio",
          "Pool fragmentation above which compaction runs"),
      Key("device.multi_gpu.performance_optimization.enable_nccl",
          [](auto* c) { return &c->device.performance.enable_nccl; },
          AnyBool{}, "", "Use NCCL for GPU-to-GPU transfers and collectives when available"),
      Key("device.multi_gpu.performance_optimization.comm_chunk_size_mb",
          [](auto* c) { return &c->device.performance.comm_chunk_size_mb; },
          IntRange{1, kMaxMiB}, "MiB", "Size of the chunks large transfers are split into"),
      Key("device.multi_gpu.performance_optimization.comm_overlap_threshold_mb",
          [](auto* c) { return &c->device.performance.comm_overlap_threshold_mb; },
          IntRange{0, kMaxMiB}, "MiB",
          "Transfers at least this large are chunked and overlapped with compute"),
      Key("device.multi_gpu.performance_optimization.comm_bandwidth_limit",
          [](auto* c) { return &c->device.performance.comm_bandwidth_limit; },
          DoubleRange{0.0, 1.0, /*lo_open=*/true}, "ratio",
          "Share of link bandwidth transfers may use"),
      Key("device.multi_gpu.performance_optimization.enable_dynamic_scaling",
          [](auto* c) { return &c->device.performance.enable_dynamic_scaling; },
          AnyBool{}, "", "Let the scaler grow and shrink the active device set"),
      Key("device.multi_gpu.performance_optimization.scale_up_cooldown",
          [](auto* c) { return &c->device.performance.scale_up_cooldown; },
          NonNegativeSeconds(), "seconds", "Least time between two scale-ups"),
      Key("device.multi_gpu.performance_optimization.scale_down_cooldown",
          [](auto* c) { return &c->device.performance.scale_down_cooldown; },
          NonNegativeSeconds(), "seconds", "Least time between two scale-downs"),
      Key("device.multi_gpu.performance_optimization.scaling_evaluation_interval",
          [](auto* c) { return &c->device.performance.scaling_evaluation_interval; },
          DoubleRange{0.1, kInf}, "seconds", "How often the scaler evaluates its rules"),
      Key("device.multi_gpu.performance_optimization.scaling_stability_threshold",
          [](auto* c) { return &c->device.performance.scaling_stability_threshold; },
          Ratio(), "ratio", "Relative load change below which the load counts as stable"),
      Key("device.multi_gpu.performance_optimization.enable_advanced_scheduling",
          [](auto* c) { return &c->device.performance.enable_advanced_scheduling; },
          AnyBool{}, "", "Schedule by priority, dependencies and placement strategy"),
      Key("device.multi_gpu.performance_optimization.scheduling_strategy",
          [](auto* c) { return &c->device.performance.scheduling_strategy; },
          OneOf{{"round_robin", "least_loaded", "memory_aware", "balanced"}}, "",
          "How the scheduler picks a device for a task"),
      Key("device.multi_gpu.performance_optimization.max_tasks_per_device",
          [](auto* c) { return &c->device.performance.max_tasks_per_device; },
          IntRange{1, 4096}, "tasks", "Most tasks running at once on one device"),
      Key("device.multi_gpu.performance_optimization.task_timeout",
          [](auto* c) { return &c->device.performance.task_timeout; },
          PositiveSeconds(), "seconds", "Default time a task may run before it is TIMED_OUT"),
      Key("device.multi_gpu.performance_optimization.enable_task_preemption",
          [](auto* c) { return &c->device.performance.enable_task_preemption; },
          AnyBool{}, "",
          "Queued CRITICAL tasks take the next free slot ahead of aged lower-priority work"),
      Key("device.multi_gpu.performance_optimization.enable_task_migration",
          [](auto* c) { return &c->device.performance.enable_task_migration; },
          AnyBool{}, "", "Idle devices take queued tasks from busy ones (work stealing)"),

      // memory.* (the memory engine's own keys; docs/MEMORY.md)
      Key("memory.default_lease_seconds",
          [](auto* c) { return &c->memory.default_lease_seconds; },
          DoubleRange{0.0, 1e6, /*lo_open=*/true}, "seconds",
          "Lease of a tensor whose request names none; each use restarts it"),
      Key("memory.max_lease_seconds",
          [](auto* c) { return &c->memory.max_lease_seconds; },
          DoubleRange{0.0, 1e6, /*lo_open=*/true}, "seconds",
          "Longest lease a request may ask for"),
      Key("memory.max_pool_fraction",
          [](auto* c) { return &c->memory.max_pool_fraction; },
          DoubleRange{0.0, 1.0, /*lo_open=*/true}, "ratio",
          "Cap on a device pool's reserved bytes, as a fraction of device memory"),
      Key("memory.monitor_interval_seconds",
          [](auto* c) { return &c->memory.monitor_interval_seconds; },
          DoubleRange{0.0, 3600.0, /*lo_open=*/true}, "seconds",
          "Period of the maintenance pass (lease expiry, GC, compaction)"),
      Key("memory.compaction_idle_seconds",
          [](auto* c) { return &c->memory.compaction_idle_seconds; },
          NonNegativeSeconds(), "seconds",
          "How long a device must see no allocation and no pin before it is compacted"),
      Key("memory.batch_safety_margin",
          [](auto* c) { return &c->memory.batch_safety_margin; },
          DoubleRange{0.0, 1.0, false, /*hi_open=*/true}, "ratio",
          "Fraction of free memory GetOptimalBatchSize keeps back"),
      Key("memory.zero_new_tensors",
          [](auto* c) { return &c->memory.zero_new_tensors; },
          AnyBool{}, "", "Zero new tensors so no client reads another's freed bytes"),
      Key("memory.release_segments_on_grow",
          [](auto* c) { return &c->memory.release_segments_on_grow; }, AnyBool{}, "",
          "Before a pool grows, return its fully free segments to the driver (tighter "
          "memory; each growth then also pays a cudaFree)"),
      Key("memory.staging_mb",
          [](auto* c) { return &c->memory.staging_mb; }, IntRange{0, 1 << 20}, "MiB",
          "Pinned host memory per GPU that stages request inputs and outputs held in "
          "pageable memory, so no copy blocks the dispatching thread; 0 = copy directly"),

      // scaling.* (the scaler's own keys; docs/SCALING.md)
      Key("scaling.window_length_seconds",
          [](auto* c) { return &c->scaling.window_length_seconds; },
          DoubleRange{0.0, 3600.0, /*lo_open=*/true}, "seconds",
          "How far back the workload window keeps samples (>= every rule's hold)"),
      Key("scaling.min_active_devices",
          [](auto* c) { return &c->scaling.min_active_devices; },
          IntRange{1, 4096}, "devices", "Fewest devices the scaler keeps active"),
      Key("scaling.max_active_devices",
          [](auto* c) { return &c->scaling.max_active_devices; },
          IntRange{0, 4096}, "devices", "Most devices the scaler makes active; 0 = all"),
      Key("scaling.max_replicas",
          [](auto* c) { return &c->scaling.max_replicas; },
          IntRange{1, 1000}, "replicas",
          "Most daemon replicas the scaler asks for (1 = never ask for more machines)"),
      Key("scaling.rules",
          [](auto* c) { return &c->scaling.rules; },
          ScalingRules{}, "",
          "Scale-up and scale-down rules"),

      // scheduler.* (the scheduler's own keys; docs/SCHEDULER.md)
      Key("scheduler.max_queue_depth",
          [](auto* c) { return &c->scheduler.max_queue_depth; },
          IntRange{1, 100000000}, "tasks",
          "Most queued tasks per priority (all devices); more get RESOURCE_EXHAUSTED"),
      Key("scheduler.aging_interval_seconds",
          [](auto* c) { return &c->scheduler.aging_interval_seconds; },
          NonNegativeSeconds(), "seconds",
          "Queued work gains one priority level per interval waited; 0 = strict priority"),
      Key("scheduler.default_max_retries",
          [](auto* c) { return &c->scheduler.default_max_retries; },
          IntRange{0, kMaxRetriesLimit}, "retries",
          "Retries after device failures when a task names none"),
      Key("scheduler.retry_backoff_seconds",
          [](auto* c) { return &c->scheduler.retry_backoff_seconds; },
          DoubleRange{0.0, 60.0}, "seconds",
          "Wait before the first retry; doubles per attempt, at most 1 s"),
      Key("scheduler.unhealthy_threshold",
          [](auto* c) { return &c->scheduler.unhealthy_threshold; },
          IntRange{1, 1000}, "failures",
          "Consecutive device failures that mark a device unhealthy"),
      Key("scheduler.unhealthy_probe_interval_seconds",
          [](auto* c) { return &c->scheduler.unhealthy_probe_interval_seconds; },
          NonNegativeSeconds(), "seconds",
          "How often an unhealthy device is probed for re-admission; 0 = never"),
      Key("scheduler.max_retained_tasks",
          [](auto* c) { return &c->scheduler.max_retained_tasks; },
          IntRange{16, 100000000}, "tasks",
          "Finished tasks kept for GetTask and ListTasks (oldest evicted first)"),
      Key("scheduler.watch_buffer_events",
          [](auto* c) { return &c->scheduler.watch_buffer_events; },
          IntRange{1, 1000000}, "events",
          "Events a WatchTasks stream may fall behind before it is ended"),
      Key("scheduler.enable_dynamic_batching",
          [](auto* c) { return &c->scheduler.enable_dynamic_batching; },
          AnyBool{}, "", "Merge requests for models with max_batch_size > 0"),
      Key("scheduler.batch_max_queue_delay_us",
          [](auto* c) { return &c->scheduler.batch_max_queue_delay_us; },
          IntRange{0, 10000000}, "microseconds",
          "Longest a request waits for its batch to fill (a model's config overrides it)"),
      Key("scheduler.batch_dispatch_when_idle",
          [](auto* c) { return &c->scheduler.batch_dispatch_when_idle; },
          AnyBool{}, "",
          "A request that finds nothing pending for its model while a device slot is free "
          "runs at once instead of waiting batch_max_queue_delay_us"),
      Key("scheduler.batch_gather_threads",
          [](auto* c) { return &c->scheduler.batch_gather_threads; },
          IntRange{1, 64}, "threads",
          "Threads that copy a batch's requests into its pinned input block together "
          "when the batch starts (1 = the dispatching thread alone)"),
      Key("scheduler.batch_gather_on_arrival",
          [](auto* c) { return &c->scheduler.batch_gather_on_arrival; },
          AnyBool{}, "",
          "Copy each batched request of up to 64 KiB into its batch's pinned input block "
          "as it joins (under the model's batcher lock) instead of when the batch starts, "
          "so a released batch only has its upload and launch left; GPUs only"),
      Key("scheduler.max_requests_per_slot",
          [](auto* c) { return &c->scheduler.max_requests_per_slot; },
          IntRange{1, 1024}, "requests",
          "When a device's last free slot is taken, queued requests of unbatched models "
          "run with it as one group (one copy each way, one completion), at most this many "
          "and the slot's share of the queue (1 = one request per slot)"),
      Key("scheduler.group_slots",
          [](auto* c) { return &c->scheduler.group_slots; },
          IntRange{0, 1024}, "slots",
          "With groups on, how many of a device's slots requests of unbatched models hold at "
          "once; another such request waits for the next group instead of running alone "
          "(0 = every slot)"),
      Key("scheduler.preferred_batch_sizes",
          [](auto* c) { return &c->scheduler.preferred_batch_sizes; },
          BatchSizes{}, "",
          "A batch runs when it reaches the largest of these (a model's config overrides it)"),

      // models.*
      Key("models.repository",
          [](auto* c) { return &c->models.repository; },
          AnyString{}, "path",
          "Folder of <model>/config.yaml plus weights; \"\" serves builtin models only"),
      Key("models.torch_backend_library",
          [](auto* c) { return &c->models.torch_backend_library; },
          AnyString{}, "path",
          "The torch backend (libinferd_torch.so) for backend: torch models; \"\" looks in "
          "<bin>/../lib, then beside the daemon"),
      Key("models.control_mode",
          [](auto* c) { return &c->models.control_mode; },
          OneOf{{"none", "explicit", "poll"}}, "",
          "none: load at start only; explicit: RepositoryModelLoad/Unload too; poll: also "
          "reload changed folders"),
      Key("models.poll_interval_seconds",
          [](auto* c) { return &c->models.poll_interval_seconds; },
          DoubleRange{0.0, 86400.0, /*lo_open=*/true}, "seconds",
          "How often poll mode re-scans the repository"),

      // shared_memory.* (system and CUDA shared-memory regions; docs/SHARED_MEMORY.md)
      Key("shared_memory.allow_non_loopback",
          [](auto* c) { return &c->shared_memory.allow_non_loopback; },
          AnyBool{}, "",
          "Allow region registration when gRPC listens beyond loopback (regions are "
          "same-host memory)"),
      Key("shared_memory.max_regions",
          [](auto* c) { return &c->shared_memory.max_regions; },
          IntRange{1, 4096}, "regions", "Most registered regions, system and CUDA together"),

      // limits.*
      Key("limits.max_tensor_bytes",
          [](auto* c) { return &c->limits.max_tensor_bytes; },
          IntRange{1, kInt64Max}, "bytes", "Largest tensor a request may create"),
      Key("limits.max_inputs",
          [](auto* c) { return &c->limits.max_inputs; },
          IntRange{1, 65536}, "inputs", "Most input tensors in one request"),
      Key("limits.max_dims",
          [](auto* c) { return &c->limits.max_dims; },
          IntRange{1, 64}, "dims", "Most dimensions in one tensor shape"),
      Key("limits.max_watch_streams",
          [](auto* c) { return &c->limits.max_watch_streams; },
          IntRange{1, 100000}, "streams",
          "Most open WatchTasks streams, and separately most open health Watch streams"),
      Key("limits.max_host_transfer_bytes",
          [](auto* c) { return &c->limits.max_host_transfer_bytes; },
          IntRange{1, kInt64Max}, "bytes",
          "Transfer results held on the host for clients to fetch; beyond, the oldest go"),
      // clang-format on
  };
  return *kFields;
}

// Section paths ("server", "device", "device.multi_gpu", ...) that hold keys.
const absl::flat_hash_set<std::string>& Sections() {
  static const auto* const kSections = [] {
    auto* sections = new absl::flat_hash_set<std::string>;
    for (const FieldSpec& spec : Fields()) {
      for (size_t dot = spec.path.find('.'); dot != std::string::npos;
           dot = spec.path.find('.', dot + 1)) {
        sections->insert(spec.path.substr(0, dot));
      }
    }
    return sections;
  }();
  return *kSections;
}

const FieldSpec* FindField(absl::string_view path) {
  for (const FieldSpec& spec : Fields()) {
    if (spec.path == path) return &spec;
  }
  return nullptr;
}

}  // namespace inferd::config_internal
