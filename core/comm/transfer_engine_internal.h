// The transfer engine's internal records (one transfer, one link, one
// asynchronous waiter), shared by the files that implement TransferEngine.
// Internal to core/comm.
#ifndef INFERD_CORE_COMM_TRANSFER_ENGINE_INTERNAL_H_
#define INFERD_CORE_COMM_TRANSFER_ENGINE_INTERNAL_H_

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/comm/transfer_engine.h"

namespace inferd {

inline bool Terminal(TransferState s) {
  return s == TransferState::kSucceeded || s == TransferState::kFailed;
}

// One transfer. Fields are grouped by who may touch them.
struct TransferEngine::Transfer {
  // Constant after AsyncTransfer.
  TransferId id;
  uint64_t seq = 0;
  TransferPriority priority = TransferPriority::kNormal;
  bool move = false;
  Link* link = nullptr;
  TensorId source_tensor;
  HostSource host_src;
  TensorId dst_tensor;  // invalid for host destinations
  HostDestination host_dst;
  uint64_t bytes = 0;
  uint64_t piece_bytes = 0;
  uint32_t pieces = 0;
  bool staged = false;
  // Issued by AsyncTransfer's caller rather than by the link's worker.
  bool by_caller = false;

  // The thread that issues or completes it: the link's worker; for a
  // caller-issued transfer, AsyncTransfer's caller and then the thread that
  // claimed it. (AsyncTransfer before it is published.)
  TensorPin src_pin;
  TensorPin dst_pin;
  const char* src_ptr = nullptr;
  char* dst_ptr = nullptr;
  std::shared_ptr<std::string> host_result;
  uint64_t offset = 0;
  uint32_t issued = 0;
  uint32_t in_flight = 0;
  bool started = false;
  bool issuing_done = false;  // all pieces issued, or given up
  absl::Status error;
  std::unique_ptr<Event> caller_event;  // a caller-issued copy's completion
  std::atomic<uint32_t> done_pieces{0};

  // Guarded by the engine's mu_.
  TransferState state = TransferState::kQueued;
  absl::Status status;
  absl::Time enqueued;
  absl::Time started_at = absl::InfinitePast();
  absl::Time finished_at = absl::InfinitePast();
  std::optional<TensorInfo> result;
  uint64_t held_host_bytes = 0;  // counted in the engine's held_host_bytes_
  std::shared_ptr<const std::string> host_data;
  bool host_data_released = false;
  bool source_freed = false;
  std::string source_free_error;
  std::vector<uint64_t> waiters;
  // Caller-issued, its copy enqueued, and no thread completes it yet.
  bool claimable = false;
  // Caller-issued: until then (real time) the link's worker leaves it to a
  // waiter, who completes it without a hand-off (see LinkLoop).
  absl::Time claim_after = absl::InfinitePast();
};

// One ordered pair of endpoints, with its queue and worker.
struct TransferEngine::Link {
  explicit Link(CommMetrics::LinkOp m) : metrics(m) {}

  // Constant after creation.
  int src = kHostEndpoint;
  int dst = kHostEndpoint;
  std::string name;
  LinkKind kind = LinkKind::kLocal;
  Device* src_dev = nullptr;  // null for the host
  Device* dst_dev = nullptr;
  std::vector<Stream*> src_streams;
  std::vector<Stream*> dst_streams;
  double peak = 0;
  std::unique_ptr<TokenBucket> bucket;  // null: not limited
  CommMetrics::LinkOp metrics;
  prometheus::Gauge* bandwidth_gauge = nullptr;
  uint64_t slot_bytes = 0;

  // Guarded by the engine's mu_.
  std::vector<Transfer*> queue;  // transfers with pieces left to issue
  bool stopping = false;
  // The worker holds a transfer or has pieces in flight.
  bool worker_busy = false;
  // Caller-issued transfers: not finished; in flight with nobody completing
  // them (oldest first); spare completion events.
  int caller_active = 0;
  std::vector<Transfer*> unclaimed;
  std::vector<std::unique_ptr<Event>> spare_events;
  uint64_t bytes = 0, transfers = 0, errors = 0, caller_issued = 0;
  double bandwidth = 0;

  // The worker only.
  struct Piece {
    Transfer* t;
    int slot;
    char* copy_out;  // staged D2H: the piece's final host address
    uint64_t n;
  };
  std::deque<Piece> in_flight;
  std::vector<std::unique_ptr<Event>> done_events;    // per slot
  std::vector<std::unique_ptr<Event>> staged_events;  // per slot
  std::vector<void*> slots;                           // pinned staging ring
  Device* slot_device = nullptr;
  uint64_t next_slot = 0;

  std::thread worker;
};

struct TransferEngine::Waiter {
  TransferId transfer;
  absl::Time deadline;
  bool release_host_data = false;
  WaitCallback done;
};

}  // namespace inferd

#endif  // INFERD_CORE_COMM_TRANSFER_ENGINE_INTERNAL_H_
