#include "core/device/cuda/callback_runner.h"

#include <utility>

namespace inferd {

CallbackRunner::CallbackRunner() { thread_ = std::thread([this] { Loop(); }); }

CallbackRunner::~CallbackRunner() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void CallbackRunner::Post(absl::AnyInvocable<void() &&> fn) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(fn));
  ++posted_;
}

bool CallbackRunner::Idle() {
  absl::MutexLock lock(&mu_);
  return finished_ == posted_;
}

void CallbackRunner::WaitIdle() {
  if (InRunnerThread()) return;
  absl::MutexLock lock(&mu_);
  const uint64_t target = posted_;
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_ >= target; };
  mu_.Await(absl::Condition(&done));
}

void CallbackRunner::Loop() {
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
  while (true) {
    absl::AnyInvocable<void() &&> fn;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping and drained
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    std::move(fn)();
    fn = nullptr;  // release what it captured before WaitIdle returns
    absl::MutexLock lock(&mu_);
    ++finished_;
  }
}

}  // namespace inferd
