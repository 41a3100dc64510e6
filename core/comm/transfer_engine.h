// TransferEngine: prioritized asynchronous copies of tensors between
// endpoints — devices and the host (client bytes in and out) — by handle.
// Serves async_transfer(tensor, src_device, dst_device, priority).
//
// Each link (ordered pair of endpoints) has a queue ordered by priority
// (then arrival) and a worker that issues the head transfer piece by piece;
// between pieces it re-picks, so a CRITICAL transfer overtakes a large
// BACKGROUND one within a piece. Staged copies (device -> pinned host ->
// device, pageable host memory) go in chunk_bytes pieces through a ring of
// pinned buffers, `window` pieces in flight over two or more streams, so
// the copy into a buffer overlaps the copy out of the previous one.
// Transfers below overlap_threshold_bytes go whole. A token bucket per link
// caps it at bandwidth_limit x its kind's peak (calibrated at start).
//
// Fast path: a direct copy (same device, peer, pinned host memory) that is
// one piece, on a link with nothing queued or in flight and (when limited)
// with the tokens at hand, is issued by AsyncTransfer's caller itself, with
// no hand-off to the worker. WaitTransfer without a deadline then completes
// it on the waiting thread from the copy's event; otherwise the link's
// worker does, as for any other transfer.
//
// Tensors: the source is pinned from AsyncTransfer until the copy is done,
// so it cannot be freed (FreeTensor answers FAILED_PRECONDITION) nor moved
// mid-flight; a source already freed is refused up front (NOT_FOUND). The
// result is a new tensor on the destination with the source's dtype, shape
// and owner; with `move` the source is freed once the copy is done.
// docs/COMM.md describes the design.
#ifndef INFERD_CORE_COMM_TRANSFER_ENGINE_H_
#define INFERD_CORE_COMM_TRANSFER_ENGINE_H_

#include <array>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/comm/comm_metrics.h"
#include "core/comm/comm_stats.h"
#include "core/util/parallel_copy.h"
#include "core/comm/token_bucket.h"
#include "core/comm/transfer.h"
#include "core/device/device.h"
#include "core/memory/memory_engine.h"
#include "core/util/clock.h"

namespace inferd {

// Thread-safe. Devices, memory engine, clock, metrics and waiter are
// borrowed and must outlive the engine.
class TransferEngine {
 public:
  using WaitCallback = absl::AnyInvocable<void(absl::StatusOr<TransferInfo>) &&>;

  // Calibrates the link kinds unless options.link_peaks is set (a failed
  // calibration is logged and leaves the links unlimited). `waiter` null: a
  // real-time one. INVALID_ARGUMENT naming the option for bad options.
  static absl::StatusOr<std::unique_ptr<TransferEngine>> Create(
      const TransferEngineOptions& options, std::vector<Device*> devices, MemoryEngine* memory,
      Clock* clock, CommMetrics* metrics, TokenWaiter* waiter = nullptr);
  // Fails queued transfers (CANCELLED), waits for pieces in flight, then
  // releases pins and buffers.
  ~TransferEngine();

  TransferEngine(const TransferEngine&) = delete;
  TransferEngine& operator=(const TransferEngine&) = delete;

  // Validates, pins the source, allocates the destination tensor and queues
  // the transfer; returns its id at once. INVALID_ARGUMENT (bad device,
  // dtype, shape or sizes; move of host bytes or onto the same device; host
  // to host), NOT_FOUND (source tensor), RESOURCE_EXHAUSTED (destination),
  // UNAVAILABLE while shutting down. Results for the host: INVALID_ARGUMENT
  // above options.max_host_result_bytes, RESOURCE_EXHAUSTED when results
  // in flight fill options.max_held_host_bytes.
  absl::StatusOr<TransferId> AsyncTransfer(TransferRequest request);

  // Returns the transfer's state. With `release_host_data`, a finished
  // host-destination transfer hands over its bytes and forgets them.
  // NOT_FOUND for unknown (or long-forgotten) ids.
  absl::StatusOr<TransferInfo> GetTransfer(const TransferId& id, bool release_host_data = false);
  // Blocks until the transfer ends or `deadline` (real time) passes, then
  // returns its state (still queued or running on timeout). NOT_FOUND. With
  // no deadline (InfiniteFuture) a transfer its caller issued that no
  // thread completes yet is completed on this thread, by waiting for its
  // copy's event.
  absl::StatusOr<TransferInfo> WaitTransfer(const TransferId& id, absl::Time deadline,
                                            bool release_host_data = false);
  // Calls `done` (on an engine thread, or at once) when the transfer ends
  // or `deadline` (real time) passes, with its state; NOT_FOUND for an
  // unknown id. For adapters that must not block a thread per wait.
  void NotifyWhenDone(const TransferId& id, absl::Time deadline, bool release_host_data,
                      WaitCallback done);

  const LinkPeaks& link_peaks() const { return peaks_; }
  // Adds the links, transfer totals and queue depths to `stats`.
  void FillStats(CommStats* stats);

 private:
  struct Link;
  struct Transfer;
  struct Waiter;

  TransferEngine(const TransferEngineOptions& options, std::vector<Device*> devices,
                 MemoryEngine* memory, Clock* clock, CommMetrics* metrics, TokenWaiter* waiter);

  absl::StatusOr<Device*> FindDevice(int index, const char* field) const;
  LinkKind KindOf(int src, int dst) const;
  Link* GetLinkLocked(int src, int dst) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t PieceBytes(const Link& link, bool staged, uint64_t bytes) const;

  static Device* EventDevice(const Link& link);
  static void LetEnqueuedLand(Stream* ss, Stream* ds);
  // Whether AsyncTransfer may issue `t` itself: a direct one-piece copy on
  // an idle link, with the limiter's tokens taken when limited.
  bool MayIssueFromCallerLocked(Link* link, const Transfer& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Enqueues the copy of a caller-issued transfer and records its event.
  absl::Status IssueFromCaller(Link* link, Transfer* t);
  // Takes the oldest caller-issued transfer that no thread completes yet;
  // null if none.
  Transfer* ClaimLocked(Link* link) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for a claimed caller-issued transfer's event, then finishes it.
  void CompleteClaimed(Link* link, Transfer* t, TransferInfo* info, bool release_host_data);

  // Worker of one link.
  void LinkLoop(Link* link);
  Transfer* PickLocked(Link* link) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pins the destination tensor (or allocates the client's bytes) and sets
  // the transfer's source and destination addresses.
  absl::Status PinEndpoints(Transfer* t);
  absl::Status Start(Link* link, Transfer* t);
  absl::Status IssuePiece(Link* link, Transfer* t);
  // Enqueues one copy of a path without staging on `ds` (into a device) or
  // `ss` (out of one) and records `done` after it.
  absl::Status EnqueueDirect(Link* link, Stream* ds, Stream* ss, char* dst, const char* src,
                             uint64_t n, Event& done);
  // Waits for the oldest piece in flight and accounts for it.
  void CompleteOldest(Link* link);
  // Releases pins and buffers, records the outcome and answers waiters.
  // `info` (may be null) receives the final state, taken in the same
  // critical section, for a thread that completed the transfer itself.
  void Finish(Link* link, Transfer* t, TransferInfo* info = nullptr,
              bool release_host_data = false);
  TransferInfo InfoLocked(Transfer* t, bool release_host_data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TimerLoop();
  void SetQueueDepthLocked(TransferPriority p, int delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts `t`'s host result in held_host_bytes_, first dropping the oldest
  // unfetched results as needed; false when results in flight leave no room.
  bool HoldHostBytesLocked(Transfer* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops counting `t`'s host result (fetched, failed, dropped, forgotten).
  void ReleaseHostBytesLocked(Transfer* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const TransferEngineOptions options_;
  const std::vector<Device*> devices_;
  MemoryEngine* const memory_;
  Clock* const clock_;
  CommMetrics* const metrics_;
  std::unique_ptr<CondVarTokenWaiter> own_waiter_;
  TokenWaiter* waiter_;
  LinkPeaks peaks_;
  // Copies between pageable host memory and the staging buffers.
  ParallelCopy copier_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Links by (src + 1) * (N + 1) + (dst + 1); created on first use.
  absl::flat_hash_map<int, std::unique_ptr<Link>> links_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<TransferId, std::unique_ptr<Transfer>> transfers_ ABSL_GUARDED_BY(mu_);
  std::vector<TransferId> finished_order_ ABSL_GUARDED_BY(mu_);  // ring, oldest at head
  size_t finished_head_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint64_t, kNumTransferPriorities> queued_ ABSL_GUARDED_BY(mu_){};
  uint64_t active_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t held_host_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  OpStats totals_ ABSL_GUARDED_BY(mu_);
  // Async waiters, by id, and their deadlines.
  absl::flat_hash_map<uint64_t, std::unique_ptr<Waiter>> waiters_ ABSL_GUARDED_BY(mu_);
  absl::btree_multimap<absl::Time, uint64_t> deadlines_ ABSL_GUARDED_BY(mu_);
  uint64_t next_waiter_ ABSL_GUARDED_BY(mu_) = 0;
  bool timer_kick_ ABSL_GUARDED_BY(mu_) = false;
  bool timer_stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;
};

}  // namespace inferd

#endif  // INFERD_CORE_COMM_TRANSFER_ENGINE_H_
