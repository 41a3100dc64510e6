// AgingPriorityQueue: the per-device run queue. Five FIFO lists, one per
// priority, with aging so that low priorities never starve.
//
// Aging rule: an entry that has waited `w` competes at effective level
//   max(0, level - floor(w / aging_interval))
// (CRITICAL = 0 ... BACKGROUND = 4), so a BACKGROUND entry competes as
// CRITICAL after 4 aging intervals. Pop takes the entry with the lowest
// effective level; ties go to the one that has waited longest, so at equal
// effective level an aged entry runs before a fresh one and the order is
// FIFO within a priority. Only list heads matter (they have waited longest
// in their list), so Pop is O(levels). An aging_interval <= 0 disables aging
// (strict priority). With `critical_first` (enable_task_preemption) a queued
// CRITICAL entry always goes first, whatever lower entries have aged to.
//
// Entries are intrusive (QueueNode), so push, pop and removal allocate
// nothing. Thread-compatible: the owning device lane locks around it.
#ifndef INFERD_CORE_SCHED_PRIORITY_QUEUE_H_
#define INFERD_CORE_SCHED_PRIORITY_QUEUE_H_

#include <array>
#include <cstddef>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "core/infer/infer_request.h"

namespace inferd {

// Embedded in whatever is queued. A node is in at most one list at a time.
struct QueueNode {
  QueueNode* prev = nullptr;
  QueueNode* next = nullptr;
  Priority priority = Priority::kNormal;
  absl::Time enqueue_time;
  bool linked = false;
};

struct AgingOptions {
  absl::Duration aging_interval = absl::Seconds(2);  // <= 0: no aging
  bool critical_first = false;
};

// Returns the level `priority` competes at after waiting `waited`.
int EffectiveLevel(Priority priority, absl::Duration waited, absl::Duration aging_interval);

class AgingPriorityQueue {
 public:
  explicit AgingPriorityQueue(AgingOptions options = {}) : options_(options) {}
  AgingPriorityQueue(const AgingPriorityQueue&) = delete;
  AgingPriorityQueue& operator=(const AgingPriorityQueue&) = delete;

  // Appends `node` (not linked) to its priority's list; keeps the node's
  // enqueue_time, which the caller sets.
  void Push(QueueNode* node);
  // Removes and returns the entry to run next at `now`; null when empty.
  QueueNode* Pop(absl::Time now) { return PopIf(now, nullptr); }
  // As Pop, but only among list heads for which `eligible` is true (null:
  // all). Used by work stealing, which must skip device-pinned entries.
  QueueNode* PopIf(absl::Time now, bool (*eligible)(const QueueNode*));
  // Unlinks `node`, which must be in this queue.
  void Remove(QueueNode* node);
  // Returns the oldest entry of `p` (the next of its list to run), or null.
  QueueNode* Front(Priority p) const { return lists_[static_cast<int>(p)].head; }
  // Unlinks every entry for which `fn` returns true and passes it to `out`
  // (in queue order per level). For timeout sweeps and drains.
  void RemoveIf(absl::FunctionRef<bool(const QueueNode*)> fn,
                absl::FunctionRef<void(QueueNode*)> out);

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  size_t size(Priority p) const { return counts_[static_cast<int>(p)]; }
  const AgingOptions& options() const { return options_; }
  void set_options(const AgingOptions& options) { options_ = options; }

 private:
  struct List {
    QueueNode* head = nullptr;
    QueueNode* tail = nullptr;
  };

  AgingOptions options_;
  std::array<List, kNumPriorities> lists_{};
  std::array<size_t, kNumPriorities> counts_{};
  size_t size_ = 0;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_PRIORITY_QUEUE_H_
