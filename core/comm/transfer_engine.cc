#include "core/comm/transfer_engine.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/comm/link_calibration.h"
#include "core/comm/transfer_engine_internal.h"
#include "core/tensor/bytes_framing.h"
#include "core/util/checked_math.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

// Weight of the newest transfer in a link's bandwidth moving average.
constexpr double kBandwidthAlpha = 0.3;

}  // namespace

TransferEngine::TransferEngine(const TransferEngineOptions& options, std::vector<Device*> devices,
                               MemoryEngine* memory, Clock* clock, CommMetrics* metrics,
                               TokenWaiter* waiter)
    : options_(options),
      devices_(std::move(devices)),
      memory_(memory),
      clock_(clock),
      metrics_(metrics),
      waiter_(waiter),
      copier_(options.copy_threads) {
  if (waiter_ == nullptr) {
    own_waiter_ = std::make_unique<CondVarTokenWaiter>();
    waiter_ = own_waiter_.get();
  }
  totals_.op = CommOp::kTransfer;
}

absl::StatusOr<std::unique_ptr<TransferEngine>> TransferEngine::Create(
    const TransferEngineOptions& options, std::vector<Device*> devices, MemoryEngine* memory,
    Clock* clock, CommMetrics* metrics, TokenWaiter* waiter) {
  auto invalid = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (options.chunk_bytes == 0) return invalid("chunk_bytes must be positive");
  if (!(options.bandwidth_limit > 0 && options.bandwidth_limit <= 1)) {
    return invalid("bandwidth_limit ", options.bandwidth_limit, " is not in (0, 1]");
  }
  if (options.window < 2) return invalid("window ", options.window, " must be at least 2");
  if (options.copy_threads < 1 || options.copy_threads > 64) {
    return invalid("copy_threads ", options.copy_threads, " must be in [1, 64]");
  }
  if (options.stream_indices.empty()) return invalid("stream_indices must not be empty");
  for (int s : options.stream_indices) {
    if (s < 0) return invalid("stream_indices holds the negative index ", s);
  }
  if (options.max_finished_transfers == 0) {
    return invalid("max_finished_transfers must be positive");
  }
  if (options.direct_piece_time < absl::ZeroDuration()) {
    return invalid("direct_piece_time must not be negative");
  }
  if (memory == nullptr || clock == nullptr || metrics == nullptr) {
    return invalid("memory engine, clock and metrics must not be null");
  }
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i] == nullptr || devices[i]->index() != static_cast<int>(i)) {
      return invalid("device list entry ", i, " is null or has another index");
    }
  }
  std::unique_ptr<TransferEngine> engine(
      new TransferEngine(options, std::move(devices), memory, clock, metrics, waiter));
  if (options.link_peaks.has_value()) {
    engine->peaks_ = *options.link_peaks;
  } else if (!engine->devices_.empty()) {
    // At most 1/16 of the first device, so that small devices still start.
    const uint64_t bytes = std::min<uint64_t>(options.calibration_bytes,
                                              engine->devices_[0]->info().total_memory_bytes / 16);
    absl::StatusOr<LinkPeaks> peaks =
        MeasureLinkPeaks(engine->devices_, bytes, options.stream_indices[0]);
    if (peaks.ok()) {
      engine->peaks_ = *peaks;
    } else {
      INFERD_LOG(kWarning, "comm calibration failed (", peaks.status().ToString(),
                 "); links run without a bandwidth limit");
    }
  }
  engine->timer_ = std::thread([e = engine.get()] { e->TimerLoop(); });
  return engine;
}

TransferEngine::~TransferEngine() {
  std::vector<Link*> links;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [key, link] : links_) {
      link->stopping = true;
      links.push_back(link.get());
    }
  }
  waiter_->Cancel();
  for (Link* link : links) link->worker.join();
  {
    absl::MutexLock lock(&mu_);
    timer_stop_ = true;
    timer_kick_ = true;
  }
  if (timer_.joinable()) timer_.join();
  for (Link* link : links) {
    for (void* p : link->slots) link->slot_device->FreePinnedHost(p);
  }
}

absl::StatusOr<Device*> TransferEngine::FindDevice(int index, const char* field) const {
  if (index < 0 || index >= static_cast<int>(devices_.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " ", index, " is not a device (", devices_.size(), " devices)"));
  }
  return devices_[index];
}

LinkKind TransferEngine::KindOf(int src, int dst) const {
  if (src == kHostEndpoint) return LinkKind::kHostToDevice;
  if (dst == kHostEndpoint) return LinkKind::kDeviceToHost;
  if (src == dst) return LinkKind::kLocal;
  return devices_[dst]->CanAccessPeer(*devices_[src]) ? LinkKind::kPeer : LinkKind::kStaged;
}

uint64_t TransferEngine::PieceBytes(const Link& link, bool staged, uint64_t bytes) const {
  if (bytes < options_.overlap_threshold_bytes) return bytes;
  if (staged || options_.direct_piece_time == absl::ZeroDuration()) return options_.chunk_bytes;
  // A device copy of unknown speed has no limiter (no peak to cap) and
  // nothing to overlap: one launch.
  const bool device_copy = link.kind == LinkKind::kLocal || link.kind == LinkKind::kPeer;
  if (link.peak <= 0 && device_copy) return std::max<uint64_t>(bytes, 1);
  const double direct = link.peak * absl::ToDoubleSeconds(options_.direct_piece_time);
  return std::max<uint64_t>(options_.chunk_bytes, static_cast<uint64_t>(direct));
}

TransferEngine::Link* TransferEngine::GetLinkLocked(int src, int dst) {
  const int n = static_cast<int>(devices_.size()) + 1;
  const int key = (src + 1) * n + (dst + 1);
  auto it = links_.find(key);
  if (it != links_.end()) return it->second.get();
  auto link = std::make_unique<Link>(metrics_->ForLinkOp(LinkName(src, dst), CommOp::kTransfer));
  Link* l = link.get();
  l->src = src;
  l->dst = dst;
  l->name = LinkName(src, dst);
  l->kind = KindOf(src, dst);
  for (int s : options_.stream_indices) {
    if (src != kHostEndpoint) {
      l->src_dev = devices_[src];
      l->src_streams.push_back(&l->src_dev->stream(s % l->src_dev->num_streams()));
    }
    if (dst != kHostEndpoint) {
      l->dst_dev = devices_[dst];
      l->dst_streams.push_back(&l->dst_dev->stream(s % l->dst_dev->num_streams()));
    }
  }
  l->peak = peaks_[l->kind];
  l->slot_bytes = std::max(options_.chunk_bytes, options_.overlap_threshold_bytes);
  if (options_.bandwidth_limit < 1 && l->peak > 0) {
    const double burst =
        static_cast<double>(std::max(options_.chunk_bytes, PieceBytes(*l, false, ~uint64_t{0})));
    l->bucket = std::make_unique<TokenBucket>(clock_, options_.bandwidth_limit * l->peak, burst);
  }
  l->bandwidth_gauge = &metrics_->Bandwidth(l->name);
  metrics_->Peak(l->name).Set(l->peak);
  l->worker = std::thread([this, l] { LinkLoop(l); });
  links_.emplace(key, std::move(link));
  return l;
}

absl::StatusOr<TransferId> TransferEngine::AsyncTransfer(TransferRequest request) {
  auto t = std::make_unique<Transfer>();
  t->priority = request.priority;
  t->move = request.move;
  if (static_cast<int>(request.priority) >= kNumTransferPriorities) {
    return absl::InvalidArgumentError("priority is out of range");
  }
  const int dst = request.dst_device;
  if (dst != kHostEndpoint) RETURN_IF_ERROR(FindDevice(dst, "dst_device").status());
  int src = kHostEndpoint;
  DataType dtype = request.dtype;
  std::vector<int64_t> shape = std::move(request.shape);
  std::string owner = std::move(request.owner);
  absl::Duration lease = request.lease;
  if (request.source_tensor.valid()) {
    ASSIGN_OR_RETURN(t->src_pin, memory_->Pin(request.source_tensor));
    ASSIGN_OR_RETURN(TensorInfo info, memory_->GetTensorInfo(request.source_tensor));
    t->source_tensor = request.source_tensor;
    src = t->src_pin.device();
    t->bytes = t->src_pin.byte_size();
    dtype = info.dtype;
    shape = std::move(info.shape);
    if (owner.empty()) owner = std::move(info.owner);
    if (lease <= absl::ZeroDuration()) lease = info.lease;
    if (request.move && dst == src) {
      return absl::InvalidArgumentError(absl::StrCat(
          "move: tensor ", FormatTensorId(t->source_tensor), " already lives on device ", dst));
    }
  } else {
    if (dst == kHostEndpoint) {
      return absl::InvalidArgumentError("a transfer from the host must name a dst_device");
    }
    if (request.move) return absl::InvalidArgumentError("move needs a source tensor");
    if (dtype == DataType::kInvalid) return absl::InvalidArgumentError("dtype must be set");
    if (request.host_source.data == nullptr && request.host_source.size > 0) {
      return absl::InvalidArgumentError("host_source.data is null");
    }
    t->bytes = request.host_source.size;
    if (dtype == DataType::kBytes) {
      uint64_t elements = 0;
      if (!ShapeElementCount(shape, &elements)) {
        return absl::InvalidArgumentError("shape has a negative dimension or its size overflows");
      }
      if (absl::Status st = CheckBytesFraming(
              absl::MakeConstSpan(static_cast<const uint8_t*>(request.host_source.data), t->bytes),
              elements);
          !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("data: ", st.message()));
      }
    } else {
      uint64_t elements, expected;
      if (!ShapeElementCount(shape, &elements) ||
          !CheckedMul(elements, DataTypeSize(dtype), &expected)) {
        return absl::InvalidArgumentError("shape has a negative dimension or its size overflows");
      }
      if (expected != t->bytes) {
        return absl::InvalidArgumentError(absl::StrCat("data holds ", t->bytes, " bytes; a ",
                                                       DataTypeName(dtype),
                                                       " tensor of that shape has ", expected));
      }
    }
    t->host_src = std::move(request.host_source);
  }
  if (dst == kHostEndpoint && request.host_destination.data != nullptr &&
      request.host_destination.size != t->bytes) {
    return absl::InvalidArgumentError(absl::StrCat("host_destination holds ",
                                                   request.host_destination.size,
                                                   " bytes; the tensor has ", t->bytes));
  }
  t->host_dst = std::move(request.host_destination);
  const bool host_result = dst == kHostEndpoint && t->host_dst.data == nullptr;
  if (host_result && options_.max_host_result_bytes > 0 &&
      t->bytes > options_.max_host_result_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dst_device: a result of ", t->bytes, " bytes for the host exceeds the limit of ",
        options_.max_host_result_bytes,
        " bytes a reply may carry (server.max_send_message_bytes); download it in chunks"));
  }
  if (dst != kHostEndpoint) {
    TensorRequest alloc;
    alloc.device = dst;
    alloc.dtype = dtype;
    alloc.shape = std::move(shape);
    alloc.byte_size = dtype == DataType::kBytes ? t->bytes : 0;
    alloc.owner = std::move(owner);
    alloc.lease = lease;
    // The copy of a pinned (so usable) tensor or of host bytes checked above.
    alloc.layout_checked = true;
    ASSIGN_OR_RETURN(TensorInfo out, memory_->AllocateTensor(alloc));
    t->dst_tensor = out.id;
  }
  t->id = NewTensorId();
  const TransferId id = t->id;
  Transfer* const raw = t.get();
  Link* link = nullptr;
  bool no_room = false;
  {
    absl::MutexLock lock(&mu_);
    if (host_result && !stopping_) no_room = !HoldHostBytesLocked(raw);
    if (!stopping_ && !no_room) {
      link = GetLinkLocked(src, dst);
      t->link = link;
      switch (link->kind) {
        case LinkKind::kStaged:
          t->staged = true;
          break;
        case LinkKind::kHostToDevice:
          t->staged = !t->host_src.pinned;
          break;
        case LinkKind::kDeviceToHost:
          t->staged = t->host_dst.data == nullptr || !t->host_dst.pinned;
          break;
        default:
          t->staged = false;
      }
      t->piece_bytes = PieceBytes(*link, t->staged, t->bytes);
      t->pieces = t->piece_bytes == 0
                      ? 0
                      : static_cast<uint32_t>((t->bytes + t->piece_bytes - 1) / t->piece_bytes);
      t->seq = next_seq_++;
      t->enqueued = clock_->Now();
      ++active_;
      if (MayIssueFromCallerLocked(link, *t)) {
        t->by_caller = true;
        t->state = TransferState::kRunning;
        t->started_at = t->enqueued;
        t->started = true;
        ++link->caller_active;
        ++link->caller_issued;
        if (!link->spare_events.empty()) {
          t->caller_event = std::move(link->spare_events.back());
          link->spare_events.pop_back();
        }
      } else {
        link->queue.push_back(raw);
        SetQueueDepthLocked(t->priority, +1);
      }
      transfers_.emplace(id, std::move(t));
    }
  }
  if (link == nullptr) {  // refused: `t` still owns the transfer
    if (raw->dst_tensor.valid()) memory_->FreeTensor(raw->dst_tensor).IgnoreError();
    if (no_room) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "limits.max_host_transfer_bytes: results in flight to the host fill the ",
          options_.max_held_host_bytes, " bytes held for clients; retry once they are fetched"));
    }
    return absl::UnavailableError("the transfer engine is shutting down");
  }
  if (!raw->by_caller) return id;
  if (absl::Status st = IssueFromCaller(link, raw); !st.ok()) {
    raw->error = std::move(st);
    Finish(link, raw);
    return id;
  }
  // The waiter's head start: the copy's expected time at the link's peak,
  // half again, plus the wake-up of a waiting thread.
  const double expected_s = link->peak > 0 ? static_cast<double>(raw->bytes) / link->peak : 0;
  const absl::Duration grace =
      std::min(absl::Seconds(1.5 * expected_s) + absl::Microseconds(50), absl::Milliseconds(5));
  absl::MutexLock lock(&mu_);
  raw->claimable = true;
  raw->claim_after = absl::Now() + grace;
  link->unclaimed.push_back(raw);
  return id;
}

bool TransferEngine::HoldHostBytesLocked(Transfer* t) {
  const uint64_t limit = options_.max_held_host_bytes;
  if (limit > 0 && t->bytes > limit) return false;
  // Oldest finished first; each unfetched result dropped frees its bytes.
  for (size_t i = 0; limit > 0 && held_host_bytes_ > limit - t->bytes &&
                     i < finished_order_.size();
       ++i) {
    auto it = transfers_.find(finished_order_[(finished_head_ + i) % finished_order_.size()]);
    if (it == transfers_.end() || it->second->held_host_bytes == 0) continue;
    Transfer* old = it->second.get();
    INFERD_LOG(kDebug, "transfer ", FormatTensorId(old->id), ": unfetched host result of ",
               old->bytes, " bytes dropped (limits.max_host_transfer_bytes)");
    old->host_data.reset();
    old->host_data_released = true;
    ReleaseHostBytesLocked(old);
  }
  if (limit > 0 && held_host_bytes_ > limit - t->bytes) return false;
  t->held_host_bytes = t->bytes;
  held_host_bytes_ += t->bytes;
  return true;
}

void TransferEngine::ReleaseHostBytesLocked(Transfer* t) {
  held_host_bytes_ -= t->held_host_bytes;
  t->held_host_bytes = 0;
}

// The device whose events mark a link's copies done: the destination's, or
// the source's for copies to the host.
Device* TransferEngine::EventDevice(const Link& link) {
  return link.dst_dev != nullptr ? link.dst_dev : link.src_dev;
}

// After a failed enqueue part of a copy may still be queued on the link's
// streams: waits for it, so buffers and pins may be released.
void TransferEngine::LetEnqueuedLand(Stream* ss, Stream* ds) {
  if (ss != nullptr) ss->Synchronize().IgnoreError();
  if (ds != nullptr) ds->Synchronize().IgnoreError();
}

bool TransferEngine::MayIssueFromCallerLocked(Link* link, const Transfer& t) {
  if (t.staged || t.pieces != 1) return false;
  if (!link->queue.empty() || link->worker_busy || link->caller_active > 0) return false;
  // Last: taking the tokens commits to the fast path.
  return link->bucket == nullptr || link->bucket->TryTake(t.bytes);
}

absl::Status TransferEngine::IssueFromCaller(Link* link, Transfer* t) {
  RETURN_IF_ERROR(PinEndpoints(t));
  Stream* ds = link->dst_streams.empty() ? nullptr : link->dst_streams[0];
  Stream* ss = link->src_streams.empty() ? nullptr : link->src_streams[0];
  if (t->caller_event == nullptr) {
    t->caller_event = EventDevice(*link)->CreateEvent();
  }
  absl::Status st = EnqueueDirect(link, ds, ss, t->dst_ptr, t->src_ptr, t->bytes, *t->caller_event);
  if (!st.ok()) {
    LetEnqueuedLand(ss, ds);  // before the pins go
    return st;
  }
  t->offset = t->bytes;
  t->issued = 1;
  t->issuing_done = true;
  return absl::OkStatus();
}

TransferEngine::Transfer* TransferEngine::ClaimLocked(Link* link) {
  if (link->unclaimed.empty()) return nullptr;
  Transfer* t = link->unclaimed.front();
  link->unclaimed.erase(link->unclaimed.begin());
  t->claimable = false;
  return t;
}

void TransferEngine::CompleteClaimed(Link* link, Transfer* t, TransferInfo* info,
                                     bool release_host_data) {
  absl::Status st = t->caller_event->Synchronize();
  if (!st.ok() && t->error.ok()) t->error = std::move(st);
  t->done_pieces.fetch_add(1, std::memory_order_relaxed);
  Finish(link, t, info, release_host_data);
}

void TransferEngine::SetQueueDepthLocked(TransferPriority p, int delta) {
  uint64_t& q = queued_[static_cast<int>(p)];
  q = delta < 0 ? q - 1 : q + 1;
  metrics_->QueueDepth(p).Set(static_cast<double>(q));
}

TransferEngine::Transfer* TransferEngine::PickLocked(Link* link) {
  Transfer* best = nullptr;
  for (Transfer* t : link->queue) {
    if (best == nullptr || t->priority < best->priority ||
        (t->priority == best->priority && t->seq < best->seq)) {
      best = t;
    }
  }
  return best;
}

void TransferEngine::LinkLoop(Link* link) {
  auto has_work = [link]() {
    return link->stopping || !link->queue.empty() || !link->unclaimed.empty();
  };
  auto remove = [this, link](Transfer* t) {
    absl::MutexLock lock(&mu_);
    auto& q = link->queue;
    q.erase(std::remove(q.begin(), q.end(), t), q.end());
  };
  auto give_up = [&](Transfer* t, absl::Status st) {
    if (t->error.ok()) t->error = std::move(st);
    t->issuing_done = true;
    remove(t);
    if (t->in_flight == 0) Finish(link, t);
  };
  while (true) {
    Transfer* t = nullptr;
    Transfer* claimed = nullptr;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      if (link->in_flight.empty()) {
        link->worker_busy = false;
        mu_.Await(absl::Condition(&has_work));
        // A caller-issued copy is the waiter's to complete (its thread
        // wakes on the copy's event, the cheapest way): the worker takes
        // it only once the copy should long be over and nobody came — a
        // client polling GetTransfer, or one waiting with a deadline.
        while (link->queue.empty() && !link->stopping && !link->unclaimed.empty()) {
          const Transfer* front = link->unclaimed.front();
          const absl::Time due = front->claim_after;
          if (absl::Now() >= due) break;
          auto changed = [link, front]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            return link->stopping || !link->queue.empty() || link->unclaimed.empty() ||
                   link->unclaimed.front() != front;
          };
          mu_.AwaitWithDeadline(absl::Condition(&changed), due);
        }
        if (!has_work()) continue;
      }
      stopping = link->stopping;
      if (!stopping) {
        t = PickLocked(link);
        if (t != nullptr) link->worker_busy = true;
        // Where the worker would wait for a piece, it completes a
        // caller-issued transfer first: those were issued on an idle link,
        // so before any piece in flight.
        const bool would_wait =
            t == nullptr || static_cast<int>(link->in_flight.size()) >= options_.window;
        if (would_wait) claimed = ClaimLocked(link);
        if (claimed == nullptr && t != nullptr && t->state == TransferState::kQueued) {
          t->state = TransferState::kRunning;
          t->started_at = clock_->Now();
          SetQueueDepthLocked(t->priority, -1);
        }
      }
    }
    if (stopping) break;
    if (claimed != nullptr) {
      CompleteClaimed(link, claimed, nullptr, false);
      continue;
    }
    if (t == nullptr) {
      CompleteOldest(link);
      continue;
    }
    if (!t->started) {
      t->started = true;
      if (absl::Status st = Start(link, t); !st.ok()) {
        give_up(t, std::move(st));
        continue;
      }
    }
    if (!t->error.ok()) {
      give_up(t, t->error);
      continue;
    }
    if (t->issued == t->pieces) {  // an empty tensor
      give_up(t, absl::OkStatus());
      continue;
    }
    if (static_cast<int>(link->in_flight.size()) >= options_.window) {
      CompleteOldest(link);
      continue;
    }
    if (absl::Status st = IssuePiece(link, t); !st.ok()) {
      give_up(t, std::move(st));
      continue;
    }
    if (t->issued == t->pieces) {
      t->issuing_done = true;
      remove(t);
    }
  }
  // Shutting down: let the pieces in flight land, and the caller-issued
  // copies (completing those nobody else does), then cancel the rest.
  while (!link->in_flight.empty()) CompleteOldest(link);
  auto claimable_or_none = [link]() {
    return !link->unclaimed.empty() || link->caller_active == 0;
  };
  while (true) {
    Transfer* claimed = nullptr;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&claimable_or_none));
      claimed = ClaimLocked(link);
    }
    if (claimed == nullptr) break;
    CompleteClaimed(link, claimed, nullptr, false);
  }
  std::vector<Transfer*> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(link->queue);
    for (Transfer* t : left) {
      if (t->state == TransferState::kQueued) SetQueueDepthLocked(t->priority, -1);
    }
  }
  for (Transfer* t : left) {
    if (t->error.ok()) t->error = absl::CancelledError("the transfer engine shut down");
    t->issuing_done = true;
    Finish(link, t);
  }
}

absl::Status TransferEngine::PinEndpoints(Transfer* t) {
  if (t->src_pin.valid()) {
    t->src_ptr = static_cast<const char*>(t->src_pin.device_ptr());
  } else {
    t->src_ptr = static_cast<const char*>(t->host_src.data);
  }
  if (t->dst_tensor.valid()) {
    // Waits for the new tensor's initialization (zeroing), if any.
    ASSIGN_OR_RETURN(t->dst_pin, memory_->Pin(t->dst_tensor));
    t->dst_ptr = static_cast<char*>(t->dst_pin.device_ptr());
  } else if (t->host_dst.data != nullptr) {
    t->dst_ptr = static_cast<char*>(t->host_dst.data);
  } else {
    t->host_result = std::make_shared<std::string>();
    t->host_result->resize(t->bytes);
    t->dst_ptr = t->host_result->data();
  }
  return absl::OkStatus();
}

absl::Status TransferEngine::Start(Link* link, Transfer* t) {
  RETURN_IF_ERROR(PinEndpoints(t));
  Device* event_device = EventDevice(*link);
  if (link->done_events.empty()) {
    for (int i = 0; i < options_.window; ++i) {
      link->done_events.push_back(event_device->CreateEvent());
      link->staged_events.push_back(event_device->CreateEvent());
    }
  }
  if (t->staged && link->slots.empty()) {
    link->slot_device = link->kind == LinkKind::kHostToDevice ? link->dst_dev : link->src_dev;
    for (int i = 0; i < options_.window; ++i) {
      ASSIGN_OR_RETURN(void* p, link->slot_device->AllocatePinnedHost(link->slot_bytes));
      link->slots.push_back(p);
    }
  }
  return absl::OkStatus();
}

absl::Status TransferEngine::IssuePiece(Link* link, Transfer* t) {
  const uint64_t n = std::min(t->piece_bytes, t->bytes - t->offset);
  if (link->bucket != nullptr) {
    const absl::Duration wait = link->bucket->Reserve(n);
    if (wait > absl::ZeroDuration()) waiter_->WaitFor(wait);
  }
  const int slot = static_cast<int>(link->next_slot++ % options_.window);
  Stream* ds =
      link->dst_streams.empty() ? nullptr : link->dst_streams[t->issued % link->dst_streams.size()];
  Stream* ss =
      link->src_streams.empty() ? nullptr : link->src_streams[t->issued % link->src_streams.size()];
  Event& done = *link->done_events[slot];
  const char* src = t->src_ptr + t->offset;
  char* dst = t->dst_ptr + t->offset;
  void* buf = link->slots.empty() ? nullptr : link->slots[slot];
  char* copy_out = nullptr;
  absl::Status st;
  if (!t->staged) {
    st = EnqueueDirect(link, ds, ss, dst, src, n, done);
  } else if (link->kind == LinkKind::kStaged) {
    st = ss->CopyDeviceToHost(buf, src, n);
    if (st.ok()) st = ss->RecordEvent(*link->staged_events[slot]);
    if (st.ok()) st = ds->WaitEvent(*link->staged_events[slot]);
    if (st.ok()) st = ds->CopyHostToDevice(dst, buf, n);
    if (st.ok()) st = ds->RecordEvent(done);
  } else if (link->kind == LinkKind::kHostToDevice) {
    copier_.Copy(buf, src, n);
    st = ds->CopyHostToDevice(dst, buf, n);
    if (st.ok()) st = ds->RecordEvent(done);
  } else {  // device to host through a slot
    st = ss->CopyDeviceToHost(buf, src, n);
    copy_out = dst;
    if (st.ok()) st = ss->RecordEvent(done);
  }
  if (!st.ok()) {
    LetEnqueuedLand(ss, ds);  // before the buffers go
    return st;
  }
  link->in_flight.push_back(Link::Piece{t, slot, copy_out, n});
  t->offset += n;
  ++t->issued;
  ++t->in_flight;
  return absl::OkStatus();
}

absl::Status TransferEngine::EnqueueDirect(Link* link, Stream* ds, Stream* ss, char* dst,
                                           const char* src, uint64_t n, Event& done) {
  absl::Status st;
  switch (link->kind) {
    case LinkKind::kLocal:
      st = ds->CopyDeviceToDevice(dst, src, n);
      if (st.ok()) st = ds->RecordEvent(done);
      return st;
    case LinkKind::kPeer:
      st = ds->CopyFromPeer(dst, *link->src_dev, src, n);
      if (st.ok()) st = ds->RecordEvent(done);
      return st;
    case LinkKind::kHostToDevice:
      st = ds->CopyHostToDevice(dst, src, n);
      if (st.ok()) st = ds->RecordEvent(done);
      return st;
    case LinkKind::kDeviceToHost:
      st = ss->CopyDeviceToHost(dst, src, n);
      if (st.ok()) st = ss->RecordEvent(done);
      return st;
    case LinkKind::kStaged:
      break;
  }
  return absl::InternalError(absl::StrCat("link ", link->name, " has no direct path"));
}

void TransferEngine::CompleteOldest(Link* link) {
  const Link::Piece piece = link->in_flight.front();
  link->in_flight.pop_front();
  absl::Status st = link->done_events[piece.slot]->Synchronize();
  if (st.ok() && piece.copy_out != nullptr) {
    copier_.Copy(piece.copy_out, link->slots[piece.slot], piece.n);
  }
  Transfer* t = piece.t;
  --t->in_flight;
  t->done_pieces.fetch_add(1, std::memory_order_relaxed);
  if (!st.ok() && t->error.ok()) t->error = st;
  if (t->issuing_done && t->in_flight == 0) Finish(link, t);
}

void TransferEngine::Finish(Link* link, Transfer* t, TransferInfo* info, bool release_host_data) {
  const bool ok = t->error.ok();
  t->dst_pin.Reset();
  t->src_pin.Reset();
  bool source_freed = false;
  std::string source_free_error;
  std::optional<TensorInfo> result;
  if (ok) {
    if (t->move && t->source_tensor.valid()) {
      absl::Status st = memory_->FreeTensor(t->source_tensor);
      source_freed = st.ok();
      if (!st.ok()) source_free_error = std::string(st.message());
    }
    if (t->dst_tensor.valid()) {
      absl::StatusOr<TensorInfo> info = memory_->GetTensorInfo(t->dst_tensor);
      if (info.ok()) result = *std::move(info);
    }
  } else if (t->dst_tensor.valid()) {
    memory_->FreeTensor(t->dst_tensor).IgnoreError();
  }
  const absl::Time now = clock_->Now();
  std::vector<std::pair<WaitCallback, TransferInfo>> calls;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time started = t->started_at == absl::InfinitePast() ? now : t->started_at;
    const double seconds = absl::ToDoubleSeconds(now - started);
    t->state = ok ? TransferState::kSucceeded : TransferState::kFailed;
    t->status = t->error;
    t->finished_at = now;
    t->started_at = started;
    t->result = std::move(result);
    t->source_freed = source_freed;
    t->source_free_error = std::move(source_free_error);
    if (ok && t->host_result != nullptr) t->host_data = std::move(t->host_result);
    t->host_result.reset();
    if (t->host_data == nullptr) ReleaseHostBytesLocked(t);
    --active_;
    if (t->by_caller) {
      --link->caller_active;
      if (t->caller_event != nullptr) link->spare_events.push_back(std::move(t->caller_event));
    } else if (link->in_flight.empty() && link->queue.empty()) {
      // On the worker's thread: idle from here on, so that a transfer the
      // waiters of this one start may take the fast path.
      link->worker_busy = false;
    }
    if (ok) {
      link->bytes += t->bytes;
      ++link->transfers;
      totals_.operations++;
      totals_.bytes += t->bytes;
      totals_.total_seconds += seconds;
      if (seconds > 0 && t->bytes > 0) {
        const double bw = static_cast<double>(t->bytes) / seconds;
        link->bandwidth = link->bandwidth == 0
                              ? bw
                              : kBandwidthAlpha * bw + (1 - kBandwidthAlpha) * link->bandwidth;
        link->bandwidth_gauge->Set(link->bandwidth);
      }
      link->metrics.bytes_total.Increment(static_cast<double>(t->bytes));
      link->metrics.operations_total.Increment();
      metrics_->Duration(CommOp::kTransfer).Observe(seconds);
    } else {
      ++link->errors;
      totals_.errors++;
      metrics_->Errors(CommOp::kTransfer).Increment();
      INFERD_LOG(kDebug, "transfer ", FormatTensorId(t->id), " on ", link->name,
                 " failed: ", t->error.ToString());
    }
    for (uint64_t w : t->waiters) {
      auto it = waiters_.find(w);
      if (it == waiters_.end()) continue;
      Waiter& waiter = *it->second;
      auto range = deadlines_.equal_range(waiter.deadline);
      for (auto d = range.first; d != range.second; ++d) {
        if (d->second == w) {
          deadlines_.erase(d);
          break;
        }
      }
      calls.emplace_back(std::move(waiter.done), InfoLocked(t, waiter.release_host_data));
      waiters_.erase(it);
    }
    t->waiters.clear();
    if (info != nullptr) *info = InfoLocked(t, release_host_data);
    const TransferId id = t->id;
    if (finished_order_.size() < options_.max_finished_transfers) {
      finished_order_.push_back(id);
    } else {
      auto forgotten = transfers_.find(finished_order_[finished_head_]);
      if (forgotten != transfers_.end()) {
        ReleaseHostBytesLocked(forgotten->second.get());
        transfers_.erase(forgotten);
      }
      finished_order_[finished_head_] = id;
      finished_head_ = (finished_head_ + 1) % finished_order_.size();
    }
  }
  for (auto& [done, info] : calls) std::move(done)(std::move(info));
}


}  // namespace inferd
