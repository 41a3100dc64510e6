#include "core/util/worker_thread.h"

#include <pthread.h>

#include <utility>

namespace inferd {

WorkerThread::WorkerThread(const std::string& name) : thread_([this] { Loop(); }) {
  pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
}

WorkerThread::~WorkerThread() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

absl::Status WorkerThread::Call(absl::FunctionRef<absl::Status()> fn) {
  absl::MutexLock turn(&turn_);
  absl::MutexLock lock(&mu_);
  fn_ = &fn;
  done_ = false;
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; };
  mu_.Await(absl::Condition(&done));
  fn_ = nullptr;
  return std::move(result_);
}

void WorkerThread::Loop() {
  while (true) {
    const absl::FunctionRef<absl::Status()>* fn;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || (fn_ != nullptr && !done_);
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_ && (fn_ == nullptr || done_)) return;
      fn = fn_;
    }
    absl::Status result = (*fn)();
    absl::MutexLock lock(&mu_);
    result_ = std::move(result);
    done_ = true;
  }
}

}  // namespace inferd
