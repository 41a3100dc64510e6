// TransferEngine's queries: state snapshots, waits (blocking and
// asynchronous, with the deadline timer) and statistics.
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/comm/transfer_engine.h"
#include "core/comm/transfer_engine_internal.h"

namespace inferd {

const char* TransferStateName(TransferState s) {
  switch (s) {
    case TransferState::kQueued:
      return "queued";
    case TransferState::kRunning:
      return "running";
    case TransferState::kSucceeded:
      return "succeeded";
    case TransferState::kFailed:
      return "failed";
  }
  return "queued";
}

TransferInfo TransferEngine::InfoLocked(Transfer* t, bool release_host_data) {
  TransferInfo info;
  info.id = t->id;
  info.state = t->state;
  info.status = t->status;
  info.src = t->link->src;
  info.dst = t->link->dst;
  info.link = t->link->name;
  info.kind = t->link->kind;
  info.priority = t->priority;
  info.move = t->move;
  info.source_tensor = t->source_tensor;
  info.result = t->result;
  info.host_data = t->host_data;
  info.host_data_released = t->host_data_released;
  if (release_host_data && Terminal(t->state) && t->host_data != nullptr) {
    t->host_data.reset();
    ReleaseHostBytesLocked(t);
    t->host_data_released = true;
  }
  info.bytes = t->bytes;
  info.chunks = t->pieces;
  info.chunks_done = t->done_pieces.load(std::memory_order_relaxed);
  info.source_freed = t->source_freed;
  info.source_free_error = t->source_free_error;
  info.enqueued = t->enqueued;
  info.started = t->started_at;
  info.finished = t->finished_at;
  return info;
}

absl::StatusOr<TransferInfo> TransferEngine::GetTransfer(const TransferId& id,
                                                         bool release_host_data) {
  absl::MutexLock lock(&mu_);
  auto it = transfers_.find(id);
  if (it == transfers_.end()) {
    return absl::NotFoundError(absl::StrCat("transfer ", FormatTensorId(id), " not found"));
  }
  return InfoLocked(it->second.get(), release_host_data);
}

absl::StatusOr<TransferInfo> TransferEngine::WaitTransfer(const TransferId& id, absl::Time deadline,
                                                          bool release_host_data) {
  if (deadline == absl::InfiniteFuture()) {
    // Complete a caller-issued transfer here if no thread does yet: the
    // copy's event wakes this thread directly, with no hand-off.
    Transfer* claimed = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto it = transfers_.find(id);
      if (it != transfers_.end() && it->second->claimable) {
        claimed = it->second.get();
        auto& u = claimed->link->unclaimed;
        u.erase(std::find(u.begin(), u.end(), claimed));
        claimed->claimable = false;
      }
    }
    if (claimed != nullptr) {
      TransferInfo info;
      CompleteClaimed(claimed->link, claimed, &info, release_host_data);
      return info;
    }
  }
  absl::MutexLock lock(&mu_);
  auto done = [this, &id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = transfers_.find(id);
    return it == transfers_.end() || Terminal(it->second->state);
  };
  mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  auto it = transfers_.find(id);
  if (it == transfers_.end()) {
    return absl::NotFoundError(absl::StrCat("transfer ", FormatTensorId(id), " not found"));
  }
  return InfoLocked(it->second.get(), release_host_data);
}

void TransferEngine::NotifyWhenDone(const TransferId& id, absl::Time deadline,
                                    bool release_host_data, WaitCallback done) {
  absl::StatusOr<TransferInfo> now;
  {
    absl::MutexLock lock(&mu_);
    auto it = transfers_.find(id);
    if (it == transfers_.end()) {
      now = absl::NotFoundError(absl::StrCat("transfer ", FormatTensorId(id), " not found"));
    } else if (Terminal(it->second->state) || deadline <= absl::Now() || timer_stop_) {
      now = InfoLocked(it->second.get(), release_host_data);
    } else {
      const uint64_t w = next_waiter_++;
      if (deadlines_.empty() || deadline < deadlines_.begin()->first) timer_kick_ = true;
      deadlines_.emplace(deadline, w);
      it->second->waiters.push_back(w);
      waiters_.emplace(
          w, std::make_unique<Waiter>(Waiter{id, deadline, release_host_data, std::move(done)}));
      return;
    }
  }
  std::move(done)(std::move(now));
}

void TransferEngine::TimerLoop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    const absl::Time next = deadlines_.empty() ? absl::InfiniteFuture() : deadlines_.begin()->first;
    mu_.AwaitWithDeadline(absl::Condition(&timer_kick_), next);
    timer_kick_ = false;
    // On stop every transfer has finished (and answered its waiters); any
    // waiter left is answered now.
    const bool stop = timer_stop_;
    std::vector<std::pair<WaitCallback, absl::StatusOr<TransferInfo>>> calls;
    const absl::Time now = absl::Now();
    while (!deadlines_.empty() && (stop || deadlines_.begin()->first <= now)) {
      const uint64_t w = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      auto it = waiters_.find(w);
      if (it == waiters_.end()) continue;
      Waiter& waiter = *it->second;
      auto t = transfers_.find(waiter.transfer);
      if (t == transfers_.end()) {
        calls.emplace_back(std::move(waiter.done), absl::NotFoundError("transfer not found"));
      } else {
        auto& ws = t->second->waiters;
        ws.erase(std::remove(ws.begin(), ws.end(), w), ws.end());
        calls.emplace_back(std::move(waiter.done),
                           InfoLocked(t->second.get(), waiter.release_host_data));
      }
      waiters_.erase(it);
    }
    if (!calls.empty()) {
      mu_.Unlock();
      for (auto& [done, info] : calls) std::move(done)(std::move(info));
      mu_.Lock();
    }
    if (stop) return;
  }
}

void TransferEngine::FillStats(CommStats* stats) {
  absl::MutexLock lock(&mu_);
  for (auto& [key, l] : links_) {
    LinkStats s;
    s.link = l->name;
    s.src = l->src;
    s.dst = l->dst;
    s.kind = l->kind;
    s.bytes = l->bytes;
    s.transfers = l->transfers;
    s.errors = l->errors;
    s.queued = l->queue.size();
    s.caller_issued = l->caller_issued;
    s.bandwidth_bytes_per_second = l->bandwidth;
    s.peak_bytes_per_second = l->peak;
    s.limit_bytes_per_second = l->bucket != nullptr ? l->bucket->rate() : 0;
    stats->links.push_back(std::move(s));
  }
  std::sort(stats->links.begin(), stats->links.end(), [](const LinkStats& a, const LinkStats& b) {
    return std::pair(a.src, a.dst) < std::pair(b.src, b.dst);
  });
  stats->ops[static_cast<int>(CommOp::kTransfer)] = totals_;
  stats->queue_depth = queued_;
  stats->active_transfers = active_;
  stats->peaks = peaks_;
  stats->chunk_bytes = options_.chunk_bytes;
  stats->overlap_threshold_bytes = options_.overlap_threshold_bytes;
  stats->bandwidth_limit = options_.bandwidth_limit;
}

}  // namespace inferd
