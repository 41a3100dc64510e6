#include "core/sched/timer_queue.h"

#include <utility>

namespace inferd {

uint64_t TimerQueue::Schedule(absl::Time when, Callback fn) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  heap_.push(Entry{when, id});
  pending_.emplace(id, std::move(fn));
  return id;
}

bool TimerQueue::Cancel(uint64_t id) {
  absl::MutexLock lock(&mu_);
  if (pending_.erase(id) == 0) return false;
  // Rebuild when cancelled entries dominate, so far-future cancelled timers
  // (WaitTask deadlines) do not pile up.
  if (heap_.size() > 1024 && heap_.size() > 4 * pending_.size()) {
    std::vector<Entry> live;
    live.reserve(pending_.size());
    while (!heap_.empty()) {
      if (pending_.contains(heap_.top().id)) live.push_back(heap_.top());
      heap_.pop();
    }
    for (const Entry& e : live) heap_.push(e);
  }
  return true;
}

int TimerQueue::RunDue(absl::Time now) {
  int ran = 0;
  while (true) {
    Callback fn;
    {
      absl::MutexLock lock(&mu_);
      // Drop heap entries of cancelled timers.
      while (!heap_.empty() && !pending_.contains(heap_.top().id)) heap_.pop();
      if (heap_.empty() || heap_.top().when > now) break;
      auto it = pending_.find(heap_.top().id);
      fn = std::move(it->second);
      pending_.erase(it);
      heap_.pop();
    }
    std::move(fn)();
    ++ran;
  }
  return ran;
}

absl::Time TimerQueue::NextDue() const {
  absl::MutexLock lock(&mu_);
  // Cancelled entries may sit on top; reporting them early only costs a
  // spurious wake-up.
  return heap_.empty() ? absl::InfiniteFuture() : heap_.top().when;
}

size_t TimerQueue::size() const {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

}  // namespace inferd
