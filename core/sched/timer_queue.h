// TimerQueue: callbacks due at points in (injected-clock) time — batch
// flushes, retry backoffs, WaitTask deadlines, dependency-wait timeouts,
// health probes. It keeps no thread: the scheduler's timer thread (or a
// test, after advancing a FakeClock) calls RunDue(now).
//
// Thread-safe. Callbacks run on the RunDue caller's thread with no lock
// held, so they may schedule or cancel timers.
#ifndef INFERD_CORE_SCHED_TIMER_QUEUE_H_
#define INFERD_CORE_SCHED_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace inferd {

class TimerQueue {
 public:
  using Callback = absl::AnyInvocable<void() &&>;

  // Runs `fn` once RunDue is called with now >= `when`. Returns an id for
  // Cancel (never 0).
  uint64_t Schedule(absl::Time when, Callback fn);
  // Drops the timer; returns false when it already ran or was cancelled.
  bool Cancel(uint64_t id);
  // Runs every timer due at `now`, earliest first; returns how many ran.
  int RunDue(absl::Time now);
  // The earliest pending time, or InfiniteFuture.
  absl::Time NextDue() const;
  size_t size() const;

 private:
  struct Entry {
    absl::Time when;
    uint64_t id;
    bool operator>(const Entry& o) const { return when != o.when ? when > o.when : id > o.id; }
  };

  mutable absl::Mutex mu_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Callback> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_TIMER_QUEUE_H_
