#include "core/sched/task_watcher.h"

#include <algorithm>
#include <utility>

namespace inferd {

void TaskWatcher::Offer(const TaskEvent& event) {
  if (!options_.task_ids.empty() && !options_.task_ids.contains(event.id)) return;
  if (!options_.model_name.empty() && options_.model_name != event.model_name) return;
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    if (overflowed_ || closed_) return;
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

bool TaskWatcher::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

void TaskWatcher::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
  }
  if (notify_) notify_();
}

std::shared_ptr<TaskWatcher> WatcherSet::Add(WatchOptions options, std::function<void()> notify) {
  auto watcher = std::make_shared<TaskWatcher>(std::move(options), std::move(notify));
  absl::MutexLock lock(&mu_);
  if (count_.load(std::memory_order_relaxed) >= max_watchers_) return nullptr;
  const WatchOptions& o = watcher->options();
  if (!o.task_ids.empty()) {
    for (const TaskId& id : o.task_ids) by_task_[id].push_back(watcher);
  } else if (!o.model_name.empty()) {
    by_model_[o.model_name].push_back(watcher);
  } else {
    unfiltered_.push_back(watcher);
  }
  count_.fetch_add(1, std::memory_order_release);
  if (closed_) watcher->Close();
  return watcher;
}

void WatcherSet::Erase(List& list, const std::shared_ptr<TaskWatcher>& watcher) {
  auto it = std::find(list.begin(), list.end(), watcher);
  if (it != list.end()) list.erase(it);
}

void WatcherSet::Remove(const std::shared_ptr<TaskWatcher>& watcher) {
  if (watcher == nullptr) return;
  absl::MutexLock lock(&mu_);
  const WatchOptions& o = watcher->options();
  bool found = false;
  if (!o.task_ids.empty()) {
    for (const TaskId& id : o.task_ids) {
      auto it = by_task_.find(id);
      if (it == by_task_.end()) continue;
      const size_t before = it->second.size();
      Erase(it->second, watcher);
      found |= it->second.size() != before;
      if (it->second.empty()) by_task_.erase(it);
    }
  } else {
    List& list = o.model_name.empty() ? unfiltered_ : by_model_[o.model_name];
    const size_t before = list.size();
    Erase(list, watcher);
    found = list.size() != before;
    if (!o.model_name.empty() && list.empty()) by_model_.erase(o.model_name);
  }
  if (found) count_.fetch_sub(1, std::memory_order_release);
}

void WatcherSet::Publish(const TaskEvent& event) {
  if (empty()) return;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& w : unfiltered_) w->Offer(event);
  if (!by_task_.empty()) {
    auto it = by_task_.find(event.id);
    if (it != by_task_.end()) {
      for (const auto& w : it->second) w->Offer(event);
    }
  }
  if (!by_model_.empty()) {
    auto it = by_model_.find(event.model_name);
    if (it != by_model_.end()) {
      for (const auto& w : it->second) w->Offer(event);
    }
  }
}

void WatcherSet::CloseAll() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (const auto& w : unfiltered_) w->Close();
  for (const auto& [id, list] : by_task_) {
    for (const auto& w : list) w->Close();
  }
  for (const auto& [model, list] : by_model_) {
    for (const auto& w : list) w->Close();
  }
}

}  // namespace inferd
