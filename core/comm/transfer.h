// The transfer engine's plain option, request and result structs (what the
// composition root maps config onto and the gRPC adapter converts to and
// from proto).
#ifndef INFERD_CORE_COMM_TRANSFER_H_
#define INFERD_CORE_COMM_TRANSFER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/comm/comm_types.h"
#include "core/memory/tensor_store.h"
#include "core/tensor/dtype.h"

namespace inferd {

struct TransferEngineOptions {
  // comm_chunk_size_mb: staged transfers (through pinned host buffers) move
  // in chunks of this many bytes, pipelined so staging and copy overlap.
  uint64_t chunk_bytes = 4ull << 20;
  // comm_overlap_threshold_mb: transfers smaller than this go whole.
  uint64_t overlap_threshold_bytes = 1ull << 20;
  // comm_bandwidth_limit: each link is capped at this share of its kind's
  // peak. (0, 1]; 1 turns the limiter off.
  double bandwidth_limit = 0.8;
  // Direct copies (no staging: same device, peer access, pinned host
  // memory) have nothing to overlap; they move in pieces of
  // max(chunk_bytes, peak * direct_piece_time) so that the limiter and
  // priorities still act between pieces without a launch per few µs. Zero:
  // chunk_bytes.
  absl::Duration direct_piece_time = absl::Milliseconds(1);
  // Pieces in flight per link, and staging buffers per staged link. >= 2.
  int window = 4;
  // Threads (the link's worker included) that copy a piece between pageable
  // host memory and its pinned staging buffer: one thread's memcpy is well
  // below the host's memory bandwidth and would cap the staged pipeline.
  // [1, 64].
  int copy_threads = 4;
  // Device streams transfers use (taken modulo each device's stream count);
  // pieces alternate between them. Stream 0 is the memory engine's.
  std::vector<int> stream_indices = {1, 2};
  // Finished transfers kept for GetTransfer; older ones are forgotten.
  size_t max_finished_transfers = 1024;
  // Largest result a transfer may return to the host (the reply carrying
  // it must fit the server's send limit); 0: no limit.
  uint64_t max_host_result_bytes = 0;
  // Bytes of host results held at once, in flight or finished and not yet
  // fetched (limits.max_host_transfer_bytes). A new host transfer that does
  // not fit drops the oldest unfetched results (they report
  // host_data_released); if the results in flight alone leave no room, it
  // is refused. 0: no limit.
  uint64_t max_held_host_bytes = 0;
  // Per-kind peaks. Unset: measured at start (calibration_bytes per copy).
  std::optional<LinkPeaks> link_peaks;
  uint64_t calibration_bytes = 32ull << 20;
};

// Host memory as a transfer source. `keepalive` (may be null) owns it for
// as long as the transfer needs it. `pinned` memory (page-locked, e.g. from
// Device::AllocatePinnedHost) is copied directly; other memory is staged
// through the engine's pinned buffers.
struct HostSource {
  const void* data = nullptr;
  uint64_t size = 0;
  bool pinned = false;
  std::shared_ptr<const void> keepalive;
};

// Host memory as a transfer destination; `data` null: the engine allocates
// the bytes and returns them in TransferInfo::host_data.
struct HostDestination {
  void* data = nullptr;
  uint64_t size = 0;
  bool pinned = false;
  std::shared_ptr<void> keepalive;
};

struct TransferRequest {
  // The source: a stored tensor (its device is the source endpoint) when
  // valid, else `host_source` (the host endpoint) with the new tensor's
  // dtype and shape.
  TensorId source_tensor;
  HostSource host_source;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;
  // Owner and lease of the destination tensor; empty / <= 0: the source
  // tensor's owner and lease length (host sources: "" and the default).
  std::string owner;
  absl::Duration lease = absl::ZeroDuration();
  // A device index, or kHostEndpoint (the bytes come back to the caller).
  int dst_device = kHostEndpoint;
  HostDestination host_destination;
  TransferPriority priority = TransferPriority::kNormal;
  // Free the source tensor once the copy is done. The result is always a
  // new handle; the old one is gone after a successful move.
  bool move = false;
};

enum class TransferState : uint8_t { kQueued, kRunning, kSucceeded, kFailed };
const char* TransferStateName(TransferState s);

struct TransferInfo {
  TransferId id;
  TransferState state = TransferState::kQueued;
  absl::Status status;  // the failure, for kFailed
  int src = kHostEndpoint;
  int dst = kHostEndpoint;
  std::string link;  // "0->1"
  LinkKind kind = LinkKind::kLocal;
  TransferPriority priority = TransferPriority::kNormal;
  bool move = false;
  TensorId source_tensor;  // invalid for host sources
  // The destination tensor (device destinations); valid once succeeded.
  std::optional<TensorInfo> result;
  // Host destinations without a caller buffer: the bytes, once succeeded
  // (null after release_host_data took them).
  std::shared_ptr<const std::string> host_data;
  bool host_data_released = false;
  uint64_t bytes = 0;
  uint32_t chunks = 0;       // pieces the transfer is split into
  uint32_t chunks_done = 0;  // pieces completed
  // Move: whether the source was freed (false with a reason in
  // source_free_error when it was still pinned by other work).
  bool source_freed = false;
  std::string source_free_error;
  absl::Time enqueued;
  absl::Time started;   // InfinitePast until it starts
  absl::Time finished;  // InfinitePast until it ends
};

}  // namespace inferd

#endif  // INFERD_CORE_COMM_TRANSFER_H_
