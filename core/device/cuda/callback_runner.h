// CallbackRunner: one thread that runs posted closures in post order. Each
// CudaStream owns one: a ThenCallback closure waits there for its event and
// then runs, outside CUDA's own threads, so it may enqueue more device work.
#ifndef INFERD_CORE_DEVICE_CUDA_CALLBACK_RUNNER_H_
#define INFERD_CORE_DEVICE_CUDA_CALLBACK_RUNNER_H_

#include <cstdint>
#include <deque>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace inferd {

// Thread-safe. Closures run one at a time on the runner's thread.
class CallbackRunner {
 public:
  CallbackRunner();
  // Runs every closure already posted, then joins the thread.
  ~CallbackRunner();
  CallbackRunner(const CallbackRunner&) = delete;
  CallbackRunner& operator=(const CallbackRunner&) = delete;

  // Queues `fn` to run after every closure posted before it. Never blocks on
  // running closures; takes ownership of `fn`.
  void Post(absl::AnyInvocable<void() &&> fn);

  // Blocks until every closure posted before this call has finished. Returns
  // at once when called from a closure (it would wait for itself).
  void WaitIdle();

  // True when every closure posted so far has finished (none queued or
  // running). A snapshot: another thread may post right after.
  bool Idle();

  // True on the runner's own thread.
  bool InRunnerThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t posted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t finished_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  // Started last in the constructor, so every field above exists first.
  std::thread thread_;
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_CUDA_CALLBACK_RUNNER_H_
