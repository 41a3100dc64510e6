// TaskWatcher: one subscriber to task state changes (WatchTasks). The
// scheduler offers each event without ever blocking: events go into a
// bounded buffer, and a watcher whose buffer is full is marked overflowed,
// gets no more events, and should be closed by its reader after draining
// (WatchTasks then ends the stream with RESOURCE_EXHAUSTED). A watcher the
// scheduler closes (at shutdown) gets no more events either.
//
// WatcherSet: the scheduler's watchers, indexed by filter, so that an event
// costs only the watchers that asked for its task or model (plus the
// unfiltered ones), and bounded in number.
//
// Thread-safe. `notify` runs on the publishing thread whenever the buffer
// goes from empty to non-empty, the watcher overflows or it is closed; it
// must be cheap, must not block and must not call into the scheduler.
#ifndef INFERD_CORE_SCHED_TASK_WATCHER_H_
#define INFERD_CORE_SCHED_TASK_WATCHER_H_

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "core/sched/task.h"

namespace inferd {

// Most task ids one watch may filter on.
inline constexpr size_t kMaxWatchTaskIds = 1000;

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
  // True once the scheduler closed the watcher (see WatcherSet::CloseAll).
  bool closed() const;
  size_t capacity() const { return options_.buffer_events; }
  const WatchOptions& options() const { return options_; }

  // Stops taking events and notifies the reader.
  void Close();

 private:
  // Constant after construction.
  const WatchOptions options_;
  const std::function<void()> notify_;

  mutable absl::Mutex mu_;
  std::deque<TaskEvent> buffer_ ABSL_GUARDED_BY(mu_);
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// Thread-safe. Publish may run concurrently with itself; Add, Remove and
// CloseAll exclude it, so after Remove returns the watcher's notify is not
// running and will not run again.
class WatcherSet {
 public:
  explicit WatcherSet(size_t max_watchers) : max_watchers_(max_watchers) {}

  // Registers a watcher; null when max_watchers are registered already.
  std::shared_ptr<TaskWatcher> Add(WatchOptions options, std::function<void()> notify);
  void Remove(const std::shared_ptr<TaskWatcher>& watcher);
  // Offers `event` to the watchers whose filter it passes.
  void Publish(const TaskEvent& event);
  // Closes every watcher (they stay registered until removed); later Adds
  // return closed watchers.
  void CloseAll();

  bool empty() const { return count_.load(std::memory_order_acquire) == 0; }
  size_t max_watchers() const { return max_watchers_; }

 private:
  using List = std::vector<std::shared_ptr<TaskWatcher>>;
  static void Erase(List& list, const std::shared_ptr<TaskWatcher>& watcher);

  const size_t max_watchers_;
  std::atomic<size_t> count_{0};
  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  List unfiltered_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<TaskId, List> by_task_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, List> by_model_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_TASK_WATCHER_H_
