// ReportService: inferd.v1.Report — one message with devices, memory,
// scaling (and, as they are wired, scheduler and communication) statistics,
// assembled from each engine's own stats and the other adapters' converters.
#ifndef INFERD_SERVER_REPORT_SERVICE_H_
#define INFERD_SERVER_REPORT_SERVICE_H_

#include <vector>

#include "core/comm/comm_engine.h"
#include "core/device/device.h"
#include "core/memory/memory_engine.h"
#include "core/scaling/dynamic_scaler.h"
#include "core/sched/scheduler.h"
#include "inferd/v1/report.grpc.pb.h"
#include "server/grpc_metrics.h"

namespace inferd {

// The engines a report reads; borrowed, may be null when not built.
struct ReportSources {
  std::vector<Device*> devices;
  MemoryEngine* memory = nullptr;
  DynamicScaler* scaler = nullptr;
  CommEngine* comm = nullptr;
  Scheduler* scheduler = nullptr;
};

// Fills `out` from `sources`. Thread-safe (engines' stats calls are).
void BuildPerformanceReport(const ReportSources& sources, v1::PerformanceReport* out);

// Thread-safe.
class ReportService final : public v1::Report::CallbackService {
 public:
  ReportService(ReportSources sources, GrpcMetrics* metrics);

  // v1::Report::CallbackService
  grpc::ServerUnaryReactor* GetPerformanceReport(grpc::CallbackServerContext* ctx,
                                                 const v1::GetPerformanceReportRequest* req,
                                                 v1::PerformanceReport* resp) override;

 private:
  const ReportSources sources_;
  MethodMetrics* const m_report_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_REPORT_SERVICE_H_
