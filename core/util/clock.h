// Clock: the one source of time for core/ code, injected so that time logic
// (leases, cooldowns, timeouts, aging) is tested without sleeping.
#ifndef INFERD_CORE_UTIL_CLOCK_H_
#define INFERD_CORE_UTIL_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace inferd {

// Thread-safe. Implementations must be monotonic for the life of a process.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Returns the process-wide real clock (never null, never destroyed).
  static Clock* Real();
};

// A manually advanced clock for tests. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch() + absl::Hours(24))
      : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_UTIL_CLOCK_H_
