#include "core/comm/token_bucket.h"

#include <algorithm>

namespace inferd {

TokenBucket::TokenBucket(Clock* clock, double rate, double burst)
    : clock_(clock),
      rate_(rate > 0 ? rate : 1),
      burst_(burst >= 1 ? burst : 1),
      tokens_(burst_),
      last_(clock->Now()) {}

void TokenBucket::RefillLocked() {
  const absl::Time now = clock_->Now();
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * rate_);
    last_ = now;
  }
}

absl::Duration TokenBucket::Reserve(uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  RefillLocked();
  tokens_ -= static_cast<double>(bytes);
  if (tokens_ >= 0) return absl::ZeroDuration();
  return absl::Seconds(-tokens_ / rate_);
}

bool TokenBucket::TryTake(uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  RefillLocked();
  if (tokens_ < static_cast<double>(bytes)) return false;
  tokens_ -= static_cast<double>(bytes);
  return true;
}

void CondVarTokenWaiter::WaitFor(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&cancelled_), delay);
}

void CondVarTokenWaiter::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

}  // namespace inferd
