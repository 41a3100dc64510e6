// WorkerThread: one thread that runs the functions callers hand it, one at
// a time, each caller waiting for its own result. For libraries that keep
// state per thread: libtorch caches cuDNN execution plans per thread, so a
// model instance called from whichever thread serves a request would build
// its plans again on every new thread and batch size (tens of
// milliseconds each for a ResNet-50); called from its own WorkerThread it
// builds them once, at warmup.
//
// Thread-safety: Call may be made from any number of threads; calls take
// turns. The destructor waits for a running call and joins the thread; no
// Call may be in progress or start once it runs.
#ifndef INFERD_CORE_UTIL_WORKER_THREAD_H_
#define INFERD_CORE_UTIL_WORKER_THREAD_H_

#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace inferd {

class WorkerThread {
 public:
  // `name` names the thread (its first 15 characters) for ps/top.
  explicit WorkerThread(const std::string& name);
  ~WorkerThread();
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  // Runs `fn` on the worker thread and returns what it returned.
  absl::Status Call(absl::FunctionRef<absl::Status()> fn);

  std::thread::id id() const { return thread_.get_id(); }

 private:
  void Loop();

  absl::Mutex turn_;  // one Call at a time
  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(turn_);
  const absl::FunctionRef<absl::Status()>* fn_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Status result_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace inferd

#endif  // INFERD_CORE_UTIL_WORKER_THREAD_H_
