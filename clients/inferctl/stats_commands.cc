// stats: each engine's statistics — memory, scheduler, comm, scaling — and
// the per-model inference statistics (KServe ModelStatistics), as a table or
// as JSON (--json).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/cpp/proto_text.h"
#include "clients/inferctl/commands.h"
#include "inference/grpc_service.grpc.pb.h"
#include "inferd/v1/communication.grpc.pb.h"
#include "inferd/v1/memory.grpc.pb.h"
#include "inferd/v1/scaling.grpc.pb.h"
#include "inferd/v1/scheduler.grpc.pb.h"

namespace inferd::inferctl {
namespace {

constexpr char kStatsUsage[] =
    "stats memory|scheduler|comm|scaling [--json]\n"
    "stats models [--model=NAME] [--json]   per-model inference statistics\n"
    "stats scaling --events[=N] [--json]   the newest scaling decisions";

unsigned long U(uint64_t v) { return static_cast<unsigned long>(v); }

void PrintMemory(const v1::MemoryStats& s) {
  std::printf("%-4s %11s %11s %11s %11s %11s %6s %8s %7s %7s %8s\n", "dev", "total", "reserved",
              "allocated", "free", "largest", "frag", "tensors", "pinned", "gc", "compacts");
  for (const auto& d : s.devices()) {
    std::printf("%-4d %11s %11s %11s %11s %11s %6.3f %8lu %7lu %7lu %8lu\n", d.device(),
                FormatBytes(d.total_bytes()).c_str(), FormatBytes(d.reserved_bytes()).c_str(),
                FormatBytes(d.allocated_bytes()).c_str(), FormatBytes(d.free_bytes()).c_str(),
                FormatBytes(d.largest_free_block_bytes()).c_str(), d.fragmentation(),
                U(d.active_tensors()), U(d.pinned_tensors()), U(d.gc_runs()), U(d.compactions()));
  }
}

void PrintScheduler(const v1::GetSchedulerStatsResponse& s) {
  std::printf("strategy %s  queued %ld  running %ld  waiting deps %ld  pending batch %ld\n",
              s.strategy().c_str(), static_cast<long>(s.queued()), static_cast<long>(s.running()),
              static_cast<long>(s.waiting_deps()), static_cast<long>(s.pending_batch()));
  std::printf(
      "submitted %lu  succeeded %lu  failed %lu  cancelled %lu  timed out %lu  rejected %lu"
      "  retries %lu  preemptions %lu\n",
      U(s.submitted()), U(s.succeeded()), U(s.failed()), U(s.cancelled()), U(s.timed_out()),
      U(s.rejected()), U(s.retries()), U(s.preemptions()));
  std::printf(
      "batches %lu (%lu requests)  groups %lu (%lu requests)  retained %lu  mean queue %.6f s"
      "  mean exec %.6f s\n",
      U(s.batches()), U(s.batched_requests()), U(s.groups()), U(s.grouped_requests()),
      U(s.tasks_retained()), s.mean_queue_seconds(), s.mean_execution_seconds());
  std::vector<std::string> queues;
  for (const auto& q : s.queues()) {
    queues.push_back(
        absl::StrCat(ShortEnumName(v1::Priority_descriptor(), q.priority()), " ", q.queued()));
  }
  std::printf("queues: %s\n\n", absl::StrJoin(queues, ", ").c_str());
  std::printf("%-4s %-7s %-8s %7s %8s %10s %9s %9s %11s\n", "dev", "active", "health", "queued",
              "running", "completed", "failures", "consec", "reserved");
  for (const auto& d : s.devices()) {
    std::printf("%-4d %-7s %-8s %7d %8d %10lu %9lu %9d %11s\n", d.device(),
                d.active() ? "yes" : "no", d.healthy() ? "healthy" : "FAULTY", d.queued(),
                d.running(), U(d.completed()), U(d.failures()), d.consecutive_failures(),
                FormatBytes(d.reserved_bytes()).c_str());
  }
}

void PrintComm(const v1::CommunicationStats& s) {
  std::printf(
      "nccl %s  chunk %s  overlap threshold %s  bandwidth limit %.2f  active transfers %lu"
      "  communicators %lu\n",
      s.nccl_enabled() ? "on" : "off", FormatBytes(s.chunk_bytes()).c_str(),
      FormatBytes(s.overlap_threshold_bytes()).c_str(), s.bandwidth_limit(),
      U(s.active_transfers()), U(s.communicators()));
  std::vector<std::string> calib;
  for (const auto& c : s.calibration()) {
    calib.push_back(absl::StrCat(ShortEnumName(v1::LinkKind_descriptor(), c.kind()), " ",
                                 absl::StrFormat("%.2f", c.peak_bytes_per_second() / 1e9),
                                 " GB/s"));
  }
  std::printf("calibration (%s): %s\n\n", s.calibration_measured() ? "measured" : "not measured",
              absl::StrJoin(calib, ", ").c_str());
  std::printf("%-10s %-16s %12s %10s %7s %7s %10s %10s\n", "link", "kind", "bytes", "transfers",
              "errors", "queued", "GB/s", "limit GB/s");
  for (const auto& l : s.links()) {
    std::printf("%-10s %-16s %12s %10lu %7lu %7lu %10.3f %10.3f\n", l.link().c_str(),
                ShortEnumName(v1::LinkKind_descriptor(), l.kind()).c_str(),
                FormatBytes(l.bytes()).c_str(), U(l.transfers()), U(l.errors()), U(l.queued()),
                l.bandwidth_bytes_per_second() / 1e9, l.limit_bytes_per_second() / 1e9);
  }
  std::printf("\n%-16s %10s %12s %7s %12s\n", "op", "operations", "bytes", "errors", "seconds");
  for (const auto& o : s.ops()) {
    std::printf("%-16s %10lu %12s %7lu %12.6f\n", o.op().c_str(), U(o.operations()),
                FormatBytes(o.bytes()).c_str(), U(o.errors()), o.total_seconds());
  }
  std::vector<std::string> depths;
  for (const auto& q : s.queue_depth()) {
    depths.push_back(
        absl::StrCat(ShortEnumName(v1::Priority_descriptor(), q.priority()), " ", q.depth()));
  }
  std::printf("\nqueue depth: %s\n", absl::StrJoin(depths, ", ").c_str());
}

// Mean of a StatisticDuration in microseconds ("-" when it never occurred).
std::string MeanUs(const inference::StatisticDuration& d) {
  if (d.count() == 0) return "-";
  return absl::StrFormat("%.1f", static_cast<double>(d.ns()) / static_cast<double>(d.count()) / 1e3);
}

void PrintModels(const inference::ModelStatisticsResponse& r) {
  std::printf("%-20s %-4s %9s %9s %7s %10s %10s %9s %9s %9s %9s  %s\n", "model", "ver",
              "success", "fail", "infers", "executions", "queue us", "input us", "infer us",
              "output us", "total us", "last inference");
  for (const auto& m : r.model_stats()) {
    const auto& s = m.inference_stats();
    std::printf("%-20s %-4s %9lu %9lu %7lu %10lu %10s %9s %9s %9s %9s  %s\n", m.name().c_str(),
                m.version().c_str(), U(s.success().count()), U(s.fail().count()),
                U(m.inference_count()), U(m.execution_count()), MeanUs(s.queue()).c_str(),
                MeanUs(s.compute_input()).c_str(), MeanUs(s.compute_infer()).c_str(),
                MeanUs(s.compute_output()).c_str(), MeanUs(s.success()).c_str(),
                m.last_inference() == 0 ? "never"
                                        : FormatTimeMs(static_cast<int64_t>(m.last_inference()))
                                              .c_str());
    for (const auto& b : m.batch_stats()) {
      std::printf("  batch %-6lu executions %9lu  input %s us  infer %s us  output %s us\n",
                  U(b.batch_size()), U(b.compute_infer().count()),
                  MeanUs(b.compute_input()).c_str(), MeanUs(b.compute_infer()).c_str(),
                  MeanUs(b.compute_output()).c_str());
    }
  }
}

void PrintScalingEvent(const v1::ScalingEvent& e) {
  std::printf("%6lu  %s  %-18s %s\n", U(e.sequence()), FormatTimeMs(e.time_unix_ms()).c_str(),
              ShortEnumName(v1::ScalingAction_descriptor(), e.action()).c_str(),
              e.reason().c_str());
}

const char* ComparisonSymbol(v1::ScalingComparison c) {
  switch (c) {
    case v1::SCALING_COMPARISON_GREATER:
      return ">";
    case v1::SCALING_COMPARISON_GREATER_EQUAL:
      return ">=";
    case v1::SCALING_COMPARISON_LESS:
      return "<";
    case v1::SCALING_COMPARISON_LESS_EQUAL:
      return "<=";
    default:
      return "?";
  }
}

void PrintScaling(const v1::GetScalingStatsResponse& s) {
  std::printf("enabled %s  active [%s]  inactive [%s]  unhealthy [%s]\n",
              s.enabled() ? "yes" : "no", absl::StrJoin(s.active_devices(), ",").c_str(),
              absl::StrJoin(s.inactive_devices(), ",").c_str(),
              absl::StrJoin(s.unhealthy_devices(), ",").c_str());
  std::printf("desired replicas %d (demand %.2f)  last evaluation %s  last scale %s\n",
              s.desired_replicas(), s.replica_demand(),
              FormatTimeMs(s.last_evaluation_unix_ms()).c_str(),
              FormatTimeMs(s.last_scale_unix_ms()).c_str());
  if (s.has_last_decision()) std::printf("last decision: %s\n", s.last_decision().reason().c_str());
  const auto& c = s.counts();
  std::printf(
      "evaluations %ld  activations %ld  deactivations %ld  replica raises %ld  lowerings %ld"
      "  client samples %ld\n\n",
      static_cast<long>(c.evaluations()), static_cast<long>(c.device_activations()),
      static_cast<long>(c.device_deactivations()), static_cast<long>(c.replica_raises()),
      static_cast<long>(c.replica_lowerings()), static_cast<long>(c.client_samples()));
  std::printf("window %.0f s\n%-24s %7s %10s %10s %10s %10s %8s\n", s.window_length_seconds(),
              "metric", "samples", "mean", "min", "max", "p99", "cv");
  for (const auto& w : s.window()) {
    std::printf("%-24s %7ld %10.4g %10.4g %10.4g %10.4g %8.3g\n",
                ShortEnumName(v1::ScalingMetric_descriptor(), w.metric()).c_str(),
                static_cast<long>(w.count()), w.mean(), w.min(), w.max(), w.p99(), w.cv());
  }
  std::printf("\nrules:\n");
  for (const auto& r : s.policy().rules()) {
    std::printf("  %-4s %s %s %g for %g s\n",
                ShortEnumName(v1::ScalingDirection_descriptor(), r.direction()).c_str(),
                ShortEnumName(v1::ScalingMetric_descriptor(), r.metric()).c_str(),
                ComparisonSymbol(r.comparison()), r.threshold(), r.hold_seconds());
  }
}

template <typename Response, typename Call>
int Run(InferdClient& client, bool json, Call call, void (*print)(const Response&)) {
  Response resp;
  absl::Status st = client.WithRetries([&](grpc::ClientContext* ctx) { return call(ctx, &resp); });
  if (!st.ok()) return Fail(st);
  if (json)
    std::printf("%s\n", MessageToJson(resp).c_str());
  else
    print(resp);
  return 0;
}

}  // namespace

int StatsCommand(InferdClient& client, const std::vector<std::string>& args) {
  if (args.empty()) return UsageError("stats", absl::StrCat("needs an engine:\n", kStatsUsage));
  const std::string& engine = args[0];
  const std::string command = absl::StrCat("stats ", engine);
  bool json = false;
  std::optional<int64_t> events;
  std::string model;
  std::vector<Flag> flags = {{"json", &json}};
  if (engine == "scaling") flags.push_back({"events", &events});
  if (engine == "models") flags.push_back({"model", &model});
  std::vector<std::string> pos;
  std::vector<std::string> rest(args.begin() + 1, args.end());
  for (auto& a : rest) {
    if (a == "--events") a = "--events=20";
  }
  if (!ParseFlags(command, rest, flags, &pos)) return 2;
  if (!pos.empty()) return UsageError(command, absl::StrCat("unknown argument '", pos[0], "'"));
  auto channel = client.channel();
  if (engine == "models") {
    inference::ModelStatisticsRequest req;
    req.set_name(model);
    return Run<inference::ModelStatisticsResponse>(
        client, json,
        [&](grpc::ClientContext* ctx, inference::ModelStatisticsResponse* r) {
          return client.kserve().ModelStatistics(ctx, req, r);
        },
        PrintModels);
  }
  if (engine == "memory") {
    auto stub = v1::Memory::NewStub(channel);
    return Run<v1::MemoryStats>(
        client, json,
        [&](grpc::ClientContext* ctx, v1::MemoryStats* r) {
          return stub->GetMemoryStats(ctx, v1::GetMemoryStatsRequest(), r);
        },
        PrintMemory);
  }
  if (engine == "scheduler") {
    auto stub = v1::Scheduler::NewStub(channel);
    return Run<v1::GetSchedulerStatsResponse>(
        client, json,
        [&](grpc::ClientContext* ctx, v1::GetSchedulerStatsResponse* r) {
          return stub->GetSchedulerStats(ctx, v1::GetSchedulerStatsRequest(), r);
        },
        PrintScheduler);
  }
  if (engine == "comm") {
    auto stub = v1::Communication::NewStub(channel);
    return Run<v1::CommunicationStats>(
        client, json,
        [&](grpc::ClientContext* ctx, v1::CommunicationStats* r) {
          return stub->GetCommunicationStats(ctx, v1::GetCommunicationStatsRequest(), r);
        },
        PrintComm);
  }
  if (engine == "scaling") {
    auto stub = v1::Scaling::NewStub(channel);
    if (events) {
      if (*events < 0) return UsageError(command, "--events: must be >= 0 (0: all kept)");
      v1::GetScalingEventsRequest req;
      req.set_limit(static_cast<uint32_t>(*events));
      return Run<v1::GetScalingEventsResponse>(
          client, json,
          [&](grpc::ClientContext* ctx, v1::GetScalingEventsResponse* r) {
            return stub->GetScalingEvents(ctx, req, r);
          },
          +[](const v1::GetScalingEventsResponse& r) {
            for (const auto& e : r.events()) PrintScalingEvent(e);
          });
    }
    return Run<v1::GetScalingStatsResponse>(
        client, json,
        [&](grpc::ClientContext* ctx, v1::GetScalingStatsResponse* r) {
          return stub->GetScalingStats(ctx, v1::GetScalingStatsRequest(), r);
        },
        PrintScaling);
  }
  return UsageError("stats", absl::StrCat("unknown engine '", engine, "'; one of:\n", kStatsUsage));
}

}  // namespace inferd::inferctl
