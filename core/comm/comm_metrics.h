// CommMetrics: the communication engine's Prometheus series, built from a
// registry that the composition root owns (tests pass a private one). Names
// follow inferd_comm_<what>_<unit>; labels are bounded: `link` ("host->0",
// "0->1", or a collective's device set "0,1,2,3"), `op` (transfer,
// broadcast, all_reduce, all_gather, reduce_scatter) and `priority`.
#ifndef INFERD_CORE_COMM_COMM_METRICS_H_
#define INFERD_CORE_COMM_COMM_METRICS_H_

#include <array>
#include <string>

#include "core/comm/comm_types.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace inferd {

// The `op` label values.
enum class CommOp : uint8_t {
  kTransfer = 0,
  kBroadcast = 1,
  kAllReduce = 2,
  kAllGather = 3,
  kReduceScatter = 4,
};
inline constexpr int kNumCommOps = 5;
const char* CommOpName(CommOp op);

// Thread-safe (prometheus-cpp metrics are atomic; Family::Add locks). Must
// not outlive the registry.
struct CommMetrics {
  // The series of one link and op.
  struct LinkOp {
    prometheus::Counter& bytes_total;
    prometheus::Counter& operations_total;
  };

  explicit CommMetrics(prometheus::Registry& registry);

  // Adds (or finds) the series of `link` and `op`.
  LinkOp ForLinkOp(const std::string& link, CommOp op);
  prometheus::Gauge& Bandwidth(const std::string& link);
  prometheus::Gauge& Peak(const std::string& link);
  prometheus::Histogram& Duration(CommOp op) { return *duration_[static_cast<int>(op)]; }
  prometheus::Counter& Errors(CommOp op) { return *errors_[static_cast<int>(op)]; }
  prometheus::Gauge& QueueDepth(TransferPriority p) { return *queue_depth_[static_cast<int>(p)]; }

  prometheus::Family<prometheus::Counter>& bytes_total;
  prometheus::Family<prometheus::Counter>& operations_total;
  prometheus::Family<prometheus::Histogram>& duration_seconds;
  prometheus::Family<prometheus::Gauge>& bandwidth_bytes_per_second;
  prometheus::Family<prometheus::Gauge>& link_peak_bytes_per_second;
  prometheus::Family<prometheus::Gauge>& queue_depth;
  prometheus::Family<prometheus::Counter>& errors_total;

 private:
  std::array<prometheus::Histogram*, kNumCommOps> duration_{};
  std::array<prometheus::Counter*, kNumCommOps> errors_{};
  std::array<prometheus::Gauge*, kNumTransferPriorities> queue_depth_{};
};

}  // namespace inferd

#endif  // INFERD_CORE_COMM_COMM_METRICS_H_
