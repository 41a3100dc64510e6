// ModelCollector: per-model Prometheus series read at scrape time from each
// loaded model's ModelStatistics (lock-free counters the execution path
// already keeps), so the request path pays nothing and an unloaded model's
// series go with it. Also the process's CPU time, memory and descriptors.
//
// Series (labels model, version): inferd_model_requests_total{outcome},
// inferd_model_request_duration_seconds (histogram, end to end),
// inferd_model_{queue,compute_input,compute_infer,compute_output}_seconds_total,
// inferd_model_{inferences,executions}_total, inferd_model_pending_requests
// (queued and running in the scheduler); and process_* (docs/METRICS.md).
#ifndef INFERD_SERVER_MODEL_COLLECTOR_H_
#define INFERD_SERVER_MODEL_COLLECTOR_H_

#include <vector>

#include "core/models/model_registry.h"
#include "prometheus/collectable.h"

namespace inferd {

// Thread-safe.
class ModelCollector final : public prometheus::Collectable {
 public:
  // Borrows `models`, which must outlive the collector's registration.
  explicit ModelCollector(const ModelRegistry* models) : models_(models) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const ModelRegistry* models_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_MODEL_COLLECTOR_H_
