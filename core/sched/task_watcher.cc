#include "core/sched/task_watcher.h"

namespace inferd {

void TaskWatcher::Offer(const TaskEvent& event) {
  if (!options_.task_ids.empty() && !options_.task_ids.contains(event.id)) return;
  if (!options_.model_name.empty() && options_.model_name != event.model_name) return;
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    if (overflowed_) return;
    if (buffer_.size() >= options_.buffer_events) {
      overflowed_ = true;
      wake = true;
    } else {
      wake = buffer_.empty();
      buffer_.push_back(event);
    }
  }
  if (wake && notify_) notify_();
}

bool TaskWatcher::Next(TaskEvent* event) {
  absl::MutexLock lock(&mu_);
  if (buffer_.empty()) return false;
  *event = std::move(buffer_.front());
  buffer_.pop_front();
  return true;
}

bool TaskWatcher::overflowed() const {
  absl::MutexLock lock(&mu_);
  return overflowed_;
}

}  // namespace inferd
