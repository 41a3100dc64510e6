// TokenBucket: the bandwidth limiter of one link. Tokens are bytes; they
// refill at `rate` bytes per second up to `burst`. Reserve takes the bytes at
// once, going into debt when the bucket is short, and says how long the
// caller must wait before it uses them, so that callers queue behind each
// other's debt and the long-run rate never exceeds `rate`. Time comes from
// the injected Clock, so tests drive it with a FakeClock.
//
// TokenWaiter is how a rate-limited worker waits out that delay: the real
// one waits on a condition variable with a timeout (never a sleep loop) and
// wakes early on Cancel; tests inject one that advances a FakeClock.
#ifndef INFERD_CORE_COMM_TOKEN_BUCKET_H_
#define INFERD_CORE_COMM_TOKEN_BUCKET_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/util/clock.h"

namespace inferd {

// Thread-safe. The clock is borrowed.
class TokenBucket {
 public:
  // `rate` > 0 bytes per second; `burst` >= 1 byte. Starts full.
  TokenBucket(Clock* clock, double rate, double burst);

  // Takes `bytes` tokens and returns how long to wait before using them:
  // zero when the bucket held them, else the time the refill needs to pay
  // the debt.
  absl::Duration Reserve(uint64_t bytes);
  // Takes `bytes` tokens and returns true when the bucket holds them now;
  // otherwise takes none and returns false (the caller then goes the way
  // that Reserves and waits). Never goes into debt.
  bool TryTake(uint64_t bytes);

  double rate() const { return rate_; }
  double burst() const { return burst_; }

 private:
  void RefillLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  Clock* const clock_;
  const double rate_;
  const double burst_;

  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

// Waits for a limiter delay. Thread-safe.
class TokenWaiter {
 public:
  virtual ~TokenWaiter() = default;
  // Returns after `delay`, or earlier once cancelled.
  virtual void WaitFor(absl::Duration delay) = 0;
  // Wakes current waits and makes later ones return at once (the engine
  // calls it when it shuts down).
  virtual void Cancel() = 0;
};

// Waits in real time on a condition variable; Cancel wakes every waiter now
// and makes later waits return at once. Thread-safe.
class CondVarTokenWaiter final : public TokenWaiter {
 public:
  void WaitFor(absl::Duration delay) override;
  void Cancel() override;

 private:
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace inferd

#endif  // INFERD_CORE_COMM_TOKEN_BUCKET_H_
