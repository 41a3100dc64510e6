// CommStats: what GetCommunicationStats reports — the same figures as the
// inferd_comm_* metrics, plus the engine's settings and calibration.
#ifndef INFERD_CORE_COMM_COMM_STATS_H_
#define INFERD_CORE_COMM_COMM_STATS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/comm/comm_metrics.h"
#include "core/comm/comm_types.h"

namespace inferd {

// One link (ordered endpoint pair) that has carried a transfer.
struct LinkStats {
  std::string link;  // "0->1"
  int src = kHostEndpoint;
  int dst = kHostEndpoint;
  LinkKind kind = LinkKind::kLocal;
  uint64_t bytes = 0;
  uint64_t transfers = 0;
  uint64_t errors = 0;
  uint64_t queued = 0;                    // waiting or partly issued
  uint64_t caller_issued = 0;             // transfers AsyncTransfer's caller issued
  double bandwidth_bytes_per_second = 0;  // moving average of achieved
  double peak_bytes_per_second = 0;       // calibration of its kind
  double limit_bytes_per_second = 0;      // 0: not limited
};

// Totals of one operation kind since start.
struct OpStats {
  CommOp op = CommOp::kTransfer;
  uint64_t operations = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
  double total_seconds = 0;
};

struct CommStats {
  std::vector<LinkStats> links;
  std::array<OpStats, kNumCommOps> ops{};
  std::array<uint64_t, kNumTransferPriorities> queue_depth{};
  uint64_t active_transfers = 0;  // queued or running
  LinkPeaks peaks;
  // Settings in effect.
  bool nccl_enabled = false;  // enable_nccl and NCCL built and usable
  uint64_t chunk_bytes = 0;
  uint64_t overlap_threshold_bytes = 0;
  double bandwidth_limit = 0;
  // Collectives.
  uint64_t communicators = 0;          // cached, one per device set
  uint64_t communicators_created = 0;  // including rebuilds
  uint64_t communicator_rebuilds = 0;  // after a failure
};

}  // namespace inferd

#endif  // INFERD_CORE_COMM_COMM_STATS_H_
