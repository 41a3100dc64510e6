// Groups (docs/SCHEDULER.md, "Groups"): when a device's last free slot is
// taken, queued requests of unbatched models run with it side by side
// through ExecuteGroupOnDevice, each keeping its own outcome and retry.
#include <algorithm>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "core/infer/device_execution.h"
#include "core/sched/device_lane.h"
#include "core/sched/job.h"
#include "core/sched/scheduler.h"

namespace inferd {

// A queued job that may run in a group (Scheduler::FormGroup): a
// ModelInfer request of an unbatched device model, not BACKGROUND (so a
// group is never a preemption victim).
bool Scheduler::Groupable(const QueueNode* node) {
  const auto* j = static_cast<const Job*>(node);
  if (j->batch != nullptr || j->task != nullptr || j->sink == nullptr ||
      j->emitted_by != nullptr || j->priority == Priority::kBackground) {
    return false;
  }
  const ModelSignature& sig = j->request.model->signature();
  return !sig.decoupled && !sig.host_execution;
}

bool Scheduler::GroupSlotsFull(const DeviceLane& lane) const {
  lane.mu.AssertHeld();
  return group_slots_ > 0 && lane.light_running >= group_slots_;
}

bool Scheduler::GroupNow(const DeviceLane& lane, const Job& job) const {
  lane.mu.AssertHeld();
  if (lane.free_slots.size() == 1) return true;
  return group_slots_ > 0 && lane.light_running + 1 >= group_slots_ && Groupable(&job);
}

Job* Scheduler::FormGroup(DeviceLane& lane, Job* job, absl::Time now) {
  lane.mu.AssertHeld();
  // At most the slot's share of the queue, so the other slots, once free,
  // find work too.
  const int slots = group_slots_ > 0 ? group_slots_ : options_.max_tasks_per_device;
  const int64_t share = std::min<int64_t>(options_.max_requests_per_slot - 1,
                                          lane.queued.load(std::memory_order_relaxed) / slots);
  if (share <= 0 || !Groupable(job)) return job;
  auto data = std::make_unique<BatchData>();
  data->grouped = true;
  data->members.push_back(job);
  while (static_cast<int64_t>(data->members.size()) <= share) {
    Job* next = lane.PopLocked(now, &Groupable);
    if (next == nullptr) break;
    data->members.push_back(next);
  }
  if (data->members.size() == 1) return job;
  auto* group = new Job;
  group->scheduler = job->scheduler;
  group->priority = job->priority;
  group->submit_time = job->submit_time;
  group->queued_time = job->queued_time;
  for (Job* m : data->members) {
    group->priority = std::min(group->priority, m->priority);
    group->submit_time = std::min(group->submit_time, m->submit_time);
    group->queued_time = std::min(group->queued_time, m->queued_time);
    m->parent = group;
    m->where.store(Job::Where::kInBatch);
  }
  group->lane.store(lane.position);
  groups_.fetch_add(1, std::memory_order_relaxed);
  grouped_requests_.fetch_add(data->members.size(), std::memory_order_relaxed);
  group->batch = std::move(data);
  return group;
}

void Scheduler::StartGroup(DeviceLane& lane, Job* group, Stream& stream, absl::Time now) {
  BatchData& g = *group->batch;
  group->start_time = now;
  ++group->attempts;
  // The group times out (Sweep) with the first of its running members.
  group->deadline = absl::InfiniteFuture();
  g.requests.resize(g.members.size());
  for (size_t i = 0; i < g.members.size(); ++i) {
    Job* m = g.members[i];
    GroupedRequest& r = g.requests[i];
    r.request = &m->request;
    r.responder = m;
    r.status = absl::OkStatus();
    if (!BeginMember(lane, m, now)) {
      r.status = absl::CancelledError("task cancelled");
    } else if (now >= m->deadline) {
      m->timed_out.store(true);
      r.status = absl::DeadlineExceededError("timeout: the deadline passed while queued");
    } else {
      group->deadline = std::min(group->deadline, m->deadline);
    }
  }
  // May complete (and delete the group) before it returns.
  ExecuteGroupOnDevice(absl::MakeSpan(g.requests), stream, *allocator_,
                       [group](absl::Status st) { group->Complete(std::move(st)); });
}

void Scheduler::SettleGroup(DeviceLane& lane, Job* group, const absl::Status& shared,
                            absl::Time now) {
  BatchData& g = *group->batch;
  const bool timed_out = group->timed_out.load();
  for (size_t i = 0; i < g.members.size(); ++i) {
    Job* m = g.members[i];
    absl::Status st = i < g.requests.size() ? std::move(g.requests[i].status) : shared;
    if (st.ok()) st = shared;
    if (st.ok() && timed_out) {
      st = absl::DeadlineExceededError("timeout: the deadline passed while running");
    }
    m->parent = nullptr;
    if (m->start_time != absl::InfinitePast() && RetryLater(lane, m, st, now)) continue;
    FinishJob(m, std::move(st));
  }
  delete group;
}

absl::Status Scheduler::GroupDeviceResult(const BatchData& group,
                                          const absl::Status& shared) {
  if (!shared.ok()) return shared;
  for (const GroupedRequest& r : group.requests) {
    if (IsDeviceFault(r.status)) return r.status;
  }
  return absl::OkStatus();
}

}  // namespace inferd
