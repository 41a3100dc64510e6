#include "core/comm/comm_metrics.h"

namespace inferd {

const char* CommOpName(CommOp op) {
  switch (op) {
    case CommOp::kTransfer:
      return "transfer";
    case CommOp::kBroadcast:
      return "broadcast";
    case CommOp::kAllReduce:
      return "all_reduce";
    case CommOp::kAllGather:
      return "all_gather";
    case CommOp::kReduceScatter:
      return "reduce_scatter";
  }
  return "transfer";
}

CommMetrics::CommMetrics(prometheus::Registry& r)
    : bytes_total(prometheus::BuildCounter()
                      .Name("inferd_comm_bytes_total")
                      .Help("Bytes moved, by link (or collective device set) and operation.")
                      .Register(r)),
      operations_total(prometheus::BuildCounter()
                           .Name("inferd_comm_operations_total")
                           .Help("Transfers and collectives completed, by link and operation.")
                           .Register(r)),
      duration_seconds(prometheus::BuildHistogram()
                           .Name("inferd_comm_duration_seconds")
                           .Help("Time from start to completion of a transfer or collective.")
                           .Register(r)),
      bandwidth_bytes_per_second(
          prometheus::BuildGauge()
              .Name("inferd_comm_bandwidth_bytes_per_second")
              .Help("Achieved bandwidth per link: moving average over recent transfers.")
              .Register(r)),
      link_peak_bytes_per_second(
          prometheus::BuildGauge()
              .Name("inferd_comm_link_peak_bytes_per_second")
              .Help("Peak bandwidth of the link's kind, from start-up calibration.")
              .Register(r)),
      queue_depth(prometheus::BuildGauge()
                      .Name("inferd_comm_queue_depth")
                      .Help("Transfers queued and not yet started, by priority.")
                      .Register(r)),
      errors_total(prometheus::BuildCounter()
                       .Name("inferd_comm_errors_total")
                       .Help("Failed transfers and collectives, by operation.")
                       .Register(r)) {
  const prometheus::Histogram::BucketBoundaries buckets = {
      1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100};
  for (int i = 0; i < kNumCommOps; ++i) {
    const char* op = CommOpName(static_cast<CommOp>(i));
    duration_[i] = &duration_seconds.Add({{"op", op}}, buckets);
    errors_[i] = &errors_total.Add({{"op", op}});
  }
  for (int p = 0; p < kNumTransferPriorities; ++p) {
    queue_depth_[p] =
        &queue_depth.Add({{"priority", std::string(PriorityLabel(static_cast<Priority>(p)))}});
  }
}

CommMetrics::LinkOp CommMetrics::ForLinkOp(const std::string& link, CommOp op) {
  const prometheus::Labels labels = {{"link", link}, {"op", CommOpName(op)}};
  return LinkOp{bytes_total.Add(labels), operations_total.Add(labels)};
}

prometheus::Gauge& CommMetrics::Bandwidth(const std::string& link) {
  return bandwidth_bytes_per_second.Add({{"link", link}});
}

prometheus::Gauge& CommMetrics::Peak(const std::string& link) {
  return link_peak_bytes_per_second.Add({{"link", link}});
}

}  // namespace inferd
