#include "server/report_service.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "core/util/version.h"
#include "server/communication_proto.h"
#include "server/memory_proto.h"
#include "server/scaling_proto.h"
#include "server/scheduler_proto.h"
#include "server/server_call.h"

namespace inferd {

void BuildPerformanceReport(const ReportSources& sources, v1::PerformanceReport* out) {
  out->set_generated_unix_ms(absl::ToUnixMillis(absl::Now()));
  out->set_version(kVersion);
  std::optional<ScalingStats> scaling;
  std::vector<ScalingEvent> events;
  if (sources.scaler != nullptr) {
    scaling = sources.scaler->GetStats();
    events = sources.scaler->GetEvents();
  }
  for (Device* d : sources.devices) {
    v1::DeviceReport* r = out->add_devices();
    const DeviceInfo& info = d->info();
    r->set_device(info.index);
    r->set_kind(DeviceKindName(info.kind));
    r->set_name(info.name);
    if (absl::StatusOr<MemoryInfo> mem = d->GetMemoryInfo(); mem.ok()) {
      r->set_memory_total_bytes(mem->total_bytes);
      r->set_memory_free_bytes(mem->free_bytes);
    }
    absl::StatusOr<double> util = d->GetUtilization();
    r->set_utilization(util.ok() ? *util : -1.0);
    bool healthy = true, active = true;
    if (scaling) {
      const auto& u = scaling->unhealthy_devices;
      const auto& a = scaling->active_devices;
      healthy = std::find(u.begin(), u.end(), info.index) == u.end();
      active = std::find(a.begin(), a.end(), info.index) != a.end();
    }
    r->set_healthy(healthy);
    r->set_active(active);
    for (const ScalingEvent& e : events) {
      if (e.device == info.index && (e.action == ScalingAction::kDeviceUnhealthy ||
                                     e.action == ScalingAction::kDeviceHealthy)) {
        r->add_fault_events(e.reason);
      }
    }
  }
  if (sources.memory != nullptr) MemoryStatsToProto(sources.memory->GetStats(), out->mutable_memory());
  if (scaling) ScalingStatsToProto(*scaling, out->mutable_scaling());
  if (sources.scheduler != nullptr) {
    SchedulerStatsToProto(sources.scheduler->GetStats(), out->mutable_scheduler());
  }
  if (sources.comm != nullptr) CommStatsToProto(sources.comm->GetStats(), out->mutable_communication());
}

ReportService::ReportService(ReportSources sources, GrpcMetrics* metrics)
    : sources_(std::move(sources)),
      m_report_(metrics->ForMethod("inferd.v1.Report/GetPerformanceReport")) {}

grpc::ServerUnaryReactor* ReportService::GetPerformanceReport(
    grpc::CallbackServerContext* ctx, const v1::GetPerformanceReportRequest*,
    v1::PerformanceReport* resp) {
  UnaryCall call(ctx, m_report_);
  BuildPerformanceReport(sources_, resp);
  return call.Finish(absl::OkStatus());
}

}  // namespace inferd
