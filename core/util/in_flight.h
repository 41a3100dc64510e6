// InFlight: counts pieces of work handed elsewhere (to another thread) and
// lets a shutdown wait until every one has come back. Begin and End cost
// one atomic operation each; only the End that reaches zero takes the
// lock, so that a waiter looks again. Thread-safe.
#ifndef INFERD_CORE_UTIL_IN_FLIGHT_H_
#define INFERD_CORE_UTIL_IN_FLIGHT_H_

#include <atomic>
#include <cstdint>

#include "absl/synchronization/mutex.h"

namespace inferd {

class InFlight {
 public:
  void Begin() { pending_.fetch_add(1, std::memory_order_relaxed); }
  void End() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      absl::MutexLock lock(&mu_);  // its release makes AwaitNone look again
    }
  }
  // Blocks until every Begin has had its End.
  void AwaitNone() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::atomic<int64_t>* pending) {
          return pending->load(std::memory_order_acquire) == 0;
        },
        &pending_));
  }

 private:
  std::atomic<int64_t> pending_{0};
  absl::Mutex mu_;
};

}  // namespace inferd

#endif  // INFERD_CORE_UTIL_IN_FLIGHT_H_
