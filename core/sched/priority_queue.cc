#include "core/sched/priority_queue.h"

#include <algorithm>
#include <cstdint>

#include "core/util/check.h"

namespace inferd {

int EffectiveLevel(Priority priority, absl::Duration waited, absl::Duration aging_interval) {
  const int level = static_cast<int>(priority);
  if (aging_interval <= absl::ZeroDuration() || waited <= absl::ZeroDuration()) return level;
  const int64_t steps = absl::IDivDuration(waited, aging_interval, &waited);
  return steps >= level ? 0 : level - static_cast<int>(steps);
}

void AgingPriorityQueue::Push(QueueNode* node) {
  INFERD_CHECK(!node->linked);
  List& list = lists_[static_cast<int>(node->priority)];
  node->prev = list.tail;
  node->next = nullptr;
  if (list.tail != nullptr) {
    list.tail->next = node;
  } else {
    list.head = node;
  }
  list.tail = node;
  node->linked = true;
  ++counts_[static_cast<int>(node->priority)];
  ++size_;
}

void AgingPriorityQueue::Remove(QueueNode* node) {
  INFERD_CHECK(node->linked);
  List& list = lists_[static_cast<int>(node->priority)];
  if (node->prev != nullptr) {
    node->prev->next = node->next;
  } else {
    list.head = node->next;
  }
  if (node->next != nullptr) {
    node->next->prev = node->prev;
  } else {
    list.tail = node->prev;
  }
  node->prev = node->next = nullptr;
  node->linked = false;
  --counts_[static_cast<int>(node->priority)];
  --size_;
}

QueueNode* AgingPriorityQueue::PopIf(absl::Time now, bool (*eligible)(const QueueNode*)) {
  if (size_ == 0) return nullptr;
  QueueNode* best = nullptr;
  int best_level = kNumPriorities;
  for (int p = 0; p < kNumPriorities; ++p) {
    QueueNode* head = lists_[p].head;
    while (head != nullptr && eligible != nullptr && !eligible(head)) head = head->next;
    if (head == nullptr) continue;
    if (p == 0 && options_.critical_first) {
      best = head;
      break;
    }
    const int level =
        EffectiveLevel(head->priority, now - head->enqueue_time, options_.aging_interval);
    if (best == nullptr || level < best_level ||
        (level == best_level && head->enqueue_time < best->enqueue_time)) {
      best = head;
      best_level = level;
    }
  }
  if (best != nullptr) Remove(best);
  return best;
}

void AgingPriorityQueue::RemoveIf(absl::FunctionRef<bool(const QueueNode*)> fn,
                                  absl::FunctionRef<void(QueueNode*)> out) {
  for (List& list : lists_) {
    QueueNode* node = list.head;
    while (node != nullptr) {
      QueueNode* next = node->next;
      if (fn(node)) {
        Remove(node);
        out(node);
      }
      node = next;
    }
  }
}

}  // namespace inferd
