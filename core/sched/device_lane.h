// DeviceLane and DeviceLanes: the scheduler's view of its devices.
//
// Contract. A DeviceLane is one device: its run queue (a priority queue
// with aging), its running slots (max_tasks_per_device, one stream each,
// plus one spare slot lent to a CRITICAL job that preempts a running
// BACKGROUND job), the list of jobs running there, and lock-free counters
// (queued, running, reserved memory, health) that placement and stats read
// without taking the lane's lock. Queue and slot operations (the *Locked
// methods) keep those counters in step; the caller holds `mu`.
//
// A lane is *eligible* for new work when it is active (the scaler's set)
// and healthy: Eligible() is the one test for that, used by placement,
// pushing, stealing, batching and preemption alike. A lane takes no
// decisions: what runs where and when is the Scheduler's (scheduler.cc).
//
// DeviceLanes is the fixed set of lanes (1 to 64 devices, built once) and
// the questions asked across all of them: is any slot free, where could a
// CRITICAL job preempt, which lane has the most to steal, the load vector
// placement chooses from. Thread-safe as described per member.
#ifndef INFERD_CORE_SCHED_DEVICE_LANE_H_
#define INFERD_CORE_SCHED_DEVICE_LANE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/device/device.h"
#include "core/sched/job.h"
#include "core/sched/placement.h"
#include "core/sched/priority_queue.h"
#include "core/sched/task.h"

namespace inferd {

class Scheduler;

// Whether a running job may be preempted at all: a BACKGROUND execution of
// a preemptible model (every member BACKGROUND for a batch), never
// preempted before.
bool IsPreemptible(const Job& job);

// True when `job`'s task (or one of its batch members' tasks) is a
// dependency of `task`.
bool FeedsTask(const Job& job, const TaskRecord* task);

struct DeviceLane {
  // `owner` is the scheduler dispatching this lane (its dispatch loop
  // defers lanes across schedulers by this pointer).
  DeviceLane(Scheduler* owner, int position, Device* device, int slots, const AgingOptions& aging,
             bool can_preempt);

  // Placement may use the device: active (the scaler's set) and healthy.
  bool Eligible() const {
    return active.load(std::memory_order_relaxed) && healthy.load(std::memory_order_relaxed);
  }
  // One of its max_tasks_per_device slots is free (the spare not counted).
  bool OwnSlotFree(int max_tasks) const {
    return running.load(std::memory_order_relaxed) - borrowed.load(std::memory_order_relaxed) <
           max_tasks;
  }
  // A new job would find a slot: running and queued work leave one free.
  bool SlotFreeForNew(int max_tasks) const {
    return running.load(std::memory_order_relaxed) + queued.load(std::memory_order_relaxed) <
           max_tasks;
  }
  // Queued work that runs before a new `priority` entry (same or more urgent).
  int QueuedAhead(Priority priority) const;

  // Slots.
  // Takes a free slot for `job` (free_slots must not be empty): the most
  // recently freed one whose stream no running execution's model is on.
  void TakeSlotLocked(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Marks `job` as running in `slot`, counting it when it may be preempted;
  // its model runs on SharedStreamSlotLocked's stream when there is one.
  void StartRunningLocked(Job* job, int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void UncountPreemptibleLocked(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The slot whose stream `job`'s model runs on (Job::stream_slot), -1
  // when it is the job's own: a running execution's of the same model when
  // the model's executions do not overlap (ModelSignature::
  // overlap_executions), so they queue on one stream.
  int SharedStreamSlotLocked(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The events an execution in `slot` orders its copy stream and its
  // model's stream with (ModelStream): [0] inputs copied, [1] started,
  // [2] computed. Only the slot's running job uses them.
  Event* SlotEvent(int slot, int which) const {
    return slot_events[static_cast<size_t>(slot) * 3 + static_cast<size_t>(which)].get();
  }
  // Returns `job`'s slot: to the spare while it is lent (the device ran one
  // execution over its limit), else to the free slots.
  void ReturnSlotLocked(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The queued CRITICAL job that may take a running job's slot now, or
  // null: preemption possible here, the spare not lent, no slot free.
  Job* PreemptorLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The running job `preemptor` may take the slot of (the most recently
  // started candidate), or null. Never a job already preempted, cancelled
  // or timed out, nor one producing an input of `preemptor`'s task.
  Job* VictimLocked(const Job& preemptor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Hands `victim`'s place to `job` (taken out of the queue): `job` runs
  // in the spare slot until the next execution here ends.
  void PreemptLocked(Job* job, Job* victim) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void LinkRunning(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void UnlinkRunning(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Queue operations keep the lock-free counters placement reads in step.
  void PushLocked(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  Job* PopLocked(absl::Time now, bool (*eligible)(const QueueNode*) = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void RemoveLocked(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Unlinks every queued job `pred` accepts (null: all), marks it kNew and
  // appends it to *out.
  void RemoveIfLocked(bool (*pred)(const QueueNode*, absl::Time), absl::Time now,
                      std::vector<Job*>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // No execution, probe or completion in progress (Shutdown waits on it).
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return running_head == nullptr && !probing && completing == 0;
  }

  // Adds `job`'s memory requirement to this lane's reservation.
  void Reserve(Job* job);
  // Drops `job`'s reservation here, if it holds one.
  void Unreserve(Job* job);

  // Constant after construction.
  Scheduler* const owner;
  const int position;
  Device* const device;
  // enable_task_preemption and a stream beyond the slots' for the spare.
  const bool can_preempt;
  // SlotEvent's: three per slot, the spare's included.
  const std::vector<std::unique_ptr<Event>> slot_events;

  absl::Mutex mu;
  AgingPriorityQueue queue ABSL_GUARDED_BY(mu);
  std::vector<int> free_slots ABSL_GUARDED_BY(mu);
  // Slots held by groupable work (SchedulerOptions::group_slots).
  int light_running ABSL_GUARDED_BY(mu) = 0;
  Job* running_head ABSL_GUARDED_BY(mu) = nullptr;
  bool probing ABSL_GUARDED_BY(mu) = false;
  int completing ABSL_GUARDED_BY(mu) = 0;  // OnExecuted calls in progress
  // Preemption: one slot beyond max_tasks_per_device (its own stream), lent
  // to a CRITICAL job that takes a running job's place; the next execution
  // to end here gives a slot back to it. A device so runs at most
  // max_tasks_per_device + 1 executions, and one preemption at a time.
  int spare_slot ABSL_GUARDED_BY(mu);
  bool spare_out ABSL_GUARDED_BY(mu) = false;

  // Read without the lock by placement and stats.
  std::atomic<int> queued{0};
  std::array<std::atomic<int>, kNumPriorities> queued_by_priority{};
  std::atomic<int> running{0};
  std::atomic<int> borrowed{0};     // 1 while the spare slot is lent
  std::atomic<int> preemptible{0};  // running jobs a CRITICAL job may preempt
  std::atomic<bool> active{true};
  std::atomic<bool> healthy{true};
  std::atomic<int> consecutive_failures{0};
  std::atomic<uint64_t> reserved{0};
  std::atomic<uint64_t> total_memory{0};
  std::atomic<uint64_t> free_memory{0};
  std::atomic<int> utilization_permille{0};
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> failures{0};

 private:
  void Counted(const Job* job, int delta);
};

// The scheduler's lanes, by position (the order of the device list).
class DeviceLanes {
 public:
  // One lane per device; preemption is possible on a device when
  // `enable_preemption` and it has a stream past the slots' streams
  // (first_stream + max_tasks), else a warning is logged.
  DeviceLanes(Scheduler* owner, absl::Span<Device* const> devices, int max_tasks,
              int first_stream, const AgingOptions& aging, bool enable_preemption);

  int size() const { return static_cast<int>(lanes_.size()); }
  DeviceLane& operator[](int position) const { return *lanes_[position]; }
  auto begin() const { return lanes_.begin(); }
  auto end() const { return lanes_.end(); }
  int max_tasks() const { return max_tasks_; }

  // The position of the device with DeviceInfo::index `device_index`; -1
  // when none has it.
  int PositionOf(int device_index) const;

  // True when some eligible lane has a slot its queue will not fill, or no
  // lane is eligible (work then fails at placement rather than waiting for
  // a slot that never frees).
  bool AnySlotFree() const;
  // True when an eligible lane other than `lane` has a free slot.
  bool SlotFreeElsewhere(const DeviceLane& lane) const;
  // For a CRITICAL job that may preempt: when no eligible lane it may run
  // on has a free slot, the position of one where it can take a running
  // job's slot (fewest CRITICAL jobs queued first); -1 for ordinary
  // placement.
  int PreemptionTarget(const Job& job) const;
  // The lane (other than `thief`) with the most queued work, or null.
  DeviceLane* MostQueued(const DeviceLane& thief) const;
  // Fills `loads` (one per lane) for placing a `priority` job.
  void Loads(Priority priority, absl::Span<DeviceLoad> loads) const;
  // Reads each device's memory and utilization into its lane.
  void RefreshDevices();

 private:
  const int max_tasks_;
  std::vector<std::unique_ptr<DeviceLane>> lanes_;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_DEVICE_LANE_H_
