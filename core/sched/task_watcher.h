// TaskWatcher: one subscriber to task state changes (WatchTasks). The
// scheduler offers each event without ever blocking: events go into a
// bounded buffer, and a watcher whose buffer is full is marked overflowed,
// gets no more events, and should be closed by its reader after draining
// (WatchTasks then ends the stream with RESOURCE_EXHAUSTED).
//
// Thread-safe. `notify` runs on the publishing thread whenever the buffer
// goes from empty to non-empty or the watcher overflows; it must not block
// or call into the scheduler.
#ifndef INFERD_CORE_SCHED_TASK_WATCHER_H_
#define INFERD_CORE_SCHED_TASK_WATCHER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "core/sched/task.h"

namespace inferd {

struct WatchOptions {
  absl::flat_hash_set<TaskId> task_ids;  // empty = every task
  std::string model_name;                // "" = every model
  size_t buffer_events = 1024;           // 0: the scheduler's default
};

class TaskWatcher {
 public:
  TaskWatcher(WatchOptions options, std::function<void()> notify)
      : options_(std::move(options)), notify_(std::move(notify)) {}

  // Buffers `event` if it passes the filter. Never blocks.
  void Offer(const TaskEvent& event);
  // Takes the oldest buffered event; false when none is buffered.
  bool Next(TaskEvent* event);
  // True once an event was dropped because the buffer was full.
  bool overflowed() const;
  size_t capacity() const { return options_.buffer_events; }

 private:
  // Constant after construction.
  const WatchOptions options_;
  const std::function<void()> notify_;

  mutable absl::Mutex mu_;
  std::deque<TaskEvent> buffer_ ABSL_GUARDED_BY(mu_);
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_TASK_WATCHER_H_
