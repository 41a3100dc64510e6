// WatchWriter: the one thread that writes WatchTasks events. The scheduler
// notifies a stream on whatever thread changed a task's state (a request
// thread, a device callback) and under that task's lock; the stream only
// posts a closure here, so a gRPC write never runs on that thread and a
// thousand watchers cost a submitter a thousand queue pushes, not writes.
#ifndef INFERD_SERVER_WATCH_WRITER_H_
#define INFERD_SERVER_WATCH_WRITER_H_

#include <deque>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace inferd {

// Thread-safe. Closures run one at a time, in post order.
class WatchWriter {
 public:
  WatchWriter();
  // Runs the closures already posted, then joins the thread.
  ~WatchWriter();
  WatchWriter(const WatchWriter&) = delete;
  WatchWriter& operator=(const WatchWriter&) = delete;

  // Queues `fn`; never blocks on running closures. Takes ownership.
  void Post(absl::AnyInvocable<void() &&> fn);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // started last
};

}  // namespace inferd

#endif  // INFERD_SERVER_WATCH_WRITER_H_
