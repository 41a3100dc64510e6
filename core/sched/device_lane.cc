#include "core/sched/device_lane.h"

#include <algorithm>

#include "absl/algorithm/container.h"
#include "absl/container/inlined_vector.h"
#include "core/sched/task_table.h"
#include "core/util/logging.h"

namespace inferd {

bool IsPreemptible(const Job& job) {
  if (job.IsGroup()) return false;  // never BACKGROUND
  if (job.preemptions > 0 || !job.request.model->signature().preemptible) return false;
  if (job.batch != nullptr) {
    for (const Job* m : job.batch->members) {
      if (m->priority != Priority::kBackground) return false;
    }
    return true;
  }
  return job.priority == Priority::kBackground;
}

bool FeedsTask(const Job& job, const TaskRecord* task) {
  if (task == nullptr) return false;
  auto feeds = [task](const Job& j) {
    if (j.task == nullptr) return false;
    for (const TaskId& dep : task->dep_ids) {
      if (dep == j.task->id) return true;
    }
    return false;
  };
  if (job.batch == nullptr) return feeds(job);
  for (const Job* m : job.batch->members) {
    if (feeds(*m)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// DeviceLane

namespace {

std::vector<std::unique_ptr<Event>> SlotEvents(Device* device, int slots) {
  std::vector<std::unique_ptr<Event>> events;
  if (device == nullptr) return events;
  events.reserve(static_cast<size_t>(slots) * 3);
  for (int i = 0; i < slots * 3; ++i) events.push_back(device->CreateEvent());
  return events;
}

}  // namespace

DeviceLane::DeviceLane(Scheduler* owner, int position, Device* device, int slots,
                       const AgingOptions& aging, bool can_preempt)
    : owner(owner),
      position(position),
      device(device),
      can_preempt(can_preempt),
      slot_events(SlotEvents(device, slots + 1)),
      queue(aging),
      spare_slot(slots) {
  absl::MutexLock lock(&mu);  // not shared yet; keeps the analysis simple
  for (int s = slots - 1; s >= 0; --s) free_slots.push_back(s);
}

int DeviceLane::QueuedAhead(Priority priority) const {
  int n = 0;
  for (int p = 0; p <= static_cast<int>(priority); ++p) {
    n += queued_by_priority[p].load(std::memory_order_relaxed);
  }
  return n;
}

void DeviceLane::TakeSlotLocked(Job* job) {
  // The most recently freed slot whose stream no running execution's model
  // is on. A model whose executions do not overlap runs them all on the
  // stream of its first one still running, which may have ended and freed
  // its slot meanwhile: a job there would queue behind that model's work
  // (its own copies no longer beside the model's, another model's
  // execution waiting for it). The most recently freed when every free
  // slot's stream is in use.
  absl::InlinedVector<int, 8> in_use;  // streams lent past their slot's job
  for (const QueueNode* n = running_head; n != nullptr; n = n->next) {
    const Job* running = static_cast<const Job*>(n);
    if (running->stream_slot != running->slot) in_use.push_back(running->stream_slot);
  }
  size_t pick = free_slots.size() - 1;
  for (size_t i = free_slots.size(); !in_use.empty() && i-- > 0;) {
    if (!absl::c_linear_search(in_use, free_slots[i])) {
      pick = i;
      break;
    }
  }
  const int slot = free_slots[pick];
  free_slots.erase(free_slots.begin() + static_cast<std::ptrdiff_t>(pick));
  StartRunningLocked(job, slot);
}

void DeviceLane::StartRunningLocked(Job* job, int slot) {
  const int shared = SharedStreamSlotLocked(*job);
  job->slot = slot;
  job->stream_slot = shared >= 0 ? shared : slot;
  job->where.store(Job::Where::kRunning);
  LinkRunning(job);
  running.fetch_add(1, std::memory_order_relaxed);
  if (can_preempt && IsPreemptible(*job)) {
    job->preemptible_counted = true;
    preemptible.fetch_add(1, std::memory_order_relaxed);
  }
}

int DeviceLane::SharedStreamSlotLocked(const Job& job) const {
  const Model* model = job.request.model.get();
  if (model == nullptr || model->signature().overlap_executions) return -1;
  // The model's executions queue on one stream: the GPU runs the next as
  // soon as the running one ends, and never both at once.
  for (const QueueNode* n = running_head; n != nullptr; n = n->next) {
    const Job* running = static_cast<const Job*>(n);
    if (running != &job && running->request.model.get() == model) return running->stream_slot;
  }
  return -1;
}

void DeviceLane::UncountPreemptibleLocked(Job* job) {
  if (!job->preemptible_counted) return;
  job->preemptible_counted = false;
  preemptible.fetch_sub(1, std::memory_order_relaxed);
}

void DeviceLane::ReturnSlotLocked(Job* job) {
  if (spare_out) {
    spare_slot = job->slot;
    spare_out = false;
    borrowed.store(0, std::memory_order_relaxed);
  } else {
    free_slots.push_back(job->slot);
  }
  job->slot = -1;
  job->stream_slot = -1;
}

Job* DeviceLane::PreemptorLocked(absl::Time now) {
  if (!can_preempt || spare_out || !free_slots.empty() ||
      preemptible.load(std::memory_order_relaxed) == 0) {
    return nullptr;
  }
  auto* job = static_cast<Job*>(queue.Front(Priority::kCritical));
  if (job == nullptr || job->deadline <= now) return nullptr;
  return job;
}

Job* DeviceLane::VictimLocked(const Job& preemptor) {
  for (Job* j = running_head; j != nullptr; j = static_cast<Job*>(j->next)) {
    if (!j->preemptible_counted || j->preempted.load() || j->cancelled.load() ||
        j->timed_out.load() || FeedsTask(*j, preemptor.task.get())) {
      continue;
    }
    return j;
  }
  return nullptr;
}

void DeviceLane::PreemptLocked(Job* job, Job* victim) {
  RemoveLocked(job);
  victim->preempted.store(true);
  ++victim->preemptions;
  UncountPreemptibleLocked(victim);
  spare_out = true;
  borrowed.store(1, std::memory_order_relaxed);
  const int slot = spare_slot;
  spare_slot = -1;
  StartRunningLocked(job, slot);
}

void DeviceLane::LinkRunning(Job* job) {
  job->prev = nullptr;
  job->next = running_head;
  if (running_head != nullptr) running_head->prev = job;
  running_head = job;
}

void DeviceLane::UnlinkRunning(Job* job) {
  if (job->prev != nullptr) {
    job->prev->next = job->next;
  } else {
    running_head = static_cast<Job*>(job->next);
  }
  if (job->next != nullptr) job->next->prev = job->prev;
  job->prev = job->next = nullptr;
}

void DeviceLane::PushLocked(Job* job) {
  queue.Push(job);
  Counted(job, 1);
}

Job* DeviceLane::PopLocked(absl::Time now, bool (*eligible)(const QueueNode*)) {
  auto* job = static_cast<Job*>(queue.PopIf(now, eligible));
  if (job != nullptr) Counted(job, -1);
  return job;
}

void DeviceLane::RemoveLocked(Job* job) {
  queue.Remove(job);
  Counted(job, -1);
}

void DeviceLane::RemoveIfLocked(bool (*pred)(const QueueNode*, absl::Time), absl::Time now,
                                std::vector<Job*>* out) {
  queue.RemoveIf([&](const QueueNode* n) { return pred == nullptr || pred(n, now); },
                 [&](QueueNode* n) {
                   auto* job = static_cast<Job*>(n);
                   Counted(job, -1);
                   job->where.store(Job::Where::kNew);
                   out->push_back(job);
                 });
}

void DeviceLane::Counted(const Job* job, int delta) {
  queued.fetch_add(delta, std::memory_order_relaxed);
  queued_by_priority[static_cast<int>(job->priority)].fetch_add(delta, std::memory_order_relaxed);
}

void DeviceLane::Reserve(Job* job) {
  if (job->memory_requirement == 0) return;
  reserved.fetch_add(job->memory_requirement, std::memory_order_relaxed);
  job->reserved_memory = true;
}

void DeviceLane::Unreserve(Job* job) {
  if (!job->reserved_memory) return;
  reserved.fetch_sub(job->memory_requirement, std::memory_order_relaxed);
  job->reserved_memory = false;
}

// ---------------------------------------------------------------------------
// DeviceLanes

DeviceLanes::DeviceLanes(Scheduler* owner, absl::Span<Device* const> devices, int max_tasks,
                         int first_stream, const AgingOptions& aging, bool enable_preemption)
    : max_tasks_(max_tasks) {
  for (size_t i = 0; i < devices.size(); ++i) {
    // The spare slot needs a stream of its own, past the slots' streams.
    const bool spare_stream = first_stream + max_tasks < devices[i]->num_streams();
    if (enable_preemption && !spare_stream) {
      INFERD_LOG(kWarning, "scheduler: device ", devices[i]->index(), " has ",
                 devices[i]->num_streams(), " streams, none past its ", max_tasks,
                 " slots'; running work is not preempted there (queued work still is)");
    }
    lanes_.push_back(std::make_unique<DeviceLane>(owner, static_cast<int>(i), devices[i],
                                                  max_tasks, aging,
                                                  enable_preemption && spare_stream));
  }
}

int DeviceLanes::PositionOf(int device_index) const {
  const int n = size();
  if (device_index >= 0 && device_index < n &&
      lanes_[device_index]->device->index() == device_index) {
    return device_index;
  }
  for (int i = 0; i < n; ++i) {
    if (lanes_[i]->device->index() == device_index) return i;
  }
  return -1;
}

bool DeviceLanes::AnySlotFree() const {
  bool eligible = false;
  for (const auto& lane : lanes_) {
    if (!lane->Eligible()) continue;
    eligible = true;
    if (lane->SlotFreeForNew(max_tasks_)) return true;
  }
  return !eligible;
}

bool DeviceLanes::SlotFreeElsewhere(const DeviceLane& lane) const {
  for (const auto& l : lanes_) {
    if (l.get() != &lane && l->Eligible() && l->OwnSlotFree(max_tasks_)) return true;
  }
  return false;
}

int DeviceLanes::PreemptionTarget(const Job& job) const {
  int best = -1;
  int best_critical = 0;
  for (const auto& l : lanes_) {
    if (!l->Eligible() || (job.failed_mask >> l->position & 1)) continue;
    if (l->OwnSlotFree(max_tasks_)) return -1;  // ordinary placement
    if (!l->can_preempt || l->borrowed.load(std::memory_order_relaxed) > 0 ||
        l->preemptible.load(std::memory_order_relaxed) == 0) {
      continue;
    }
    if (job.memory_requirement > 0 &&
        l->free_memory.load(std::memory_order_relaxed) <
            l->reserved.load(std::memory_order_relaxed) + job.memory_requirement) {
      continue;
    }
    // CRITICAL work already queued there takes the candidates first.
    const int critical =
        l->queued_by_priority[static_cast<int>(Priority::kCritical)].load(std::memory_order_relaxed);
    if (best < 0 || critical < best_critical) {
      best = l->position;
      best_critical = critical;
    }
  }
  return best;
}

DeviceLane* DeviceLanes::MostQueued(const DeviceLane& thief) const {
  DeviceLane* victim = nullptr;
  int most = 0;
  for (const auto& l : lanes_) {
    if (l.get() == &thief) continue;
    const int q = l->queued.load(std::memory_order_relaxed);
    if (q > most) {
      most = q;
      victim = l.get();
    }
  }
  return victim;
}

void DeviceLanes::Loads(Priority priority, absl::Span<DeviceLoad> loads) const {
  for (size_t i = 0; i < lanes_.size() && i < loads.size(); ++i) {
    const DeviceLane& l = *lanes_[i];
    DeviceLoad& d = loads[i];
    d.index = l.device->index();
    d.eligible = l.Eligible();
    d.queued = l.queued.load(std::memory_order_relaxed);
    d.queued_ahead = l.QueuedAhead(priority);
    d.running = l.running.load(std::memory_order_relaxed);
    d.max_running = max_tasks_;
    d.total_memory_bytes = l.total_memory.load(std::memory_order_relaxed);
    d.free_memory_bytes = l.free_memory.load(std::memory_order_relaxed);
    d.reserved_bytes = l.reserved.load(std::memory_order_relaxed);
    d.utilization = l.utilization_permille.load(std::memory_order_relaxed) / 1000.0;
  }
}

void DeviceLanes::RefreshDevices() {
  for (auto& lane : lanes_) {
    absl::StatusOr<MemoryInfo> mem = lane->device->GetMemoryInfo();
    if (mem.ok()) {
      lane->total_memory.store(mem->total_bytes, std::memory_order_relaxed);
      lane->free_memory.store(mem->free_bytes, std::memory_order_relaxed);
    }
    absl::StatusOr<double> util = lane->device->GetUtilization();
    if (util.ok()) {
      lane->utilization_permille.store(static_cast<int>(std::clamp(*util, 0.0, 1.0) * 1000),
                                       std::memory_order_relaxed);
    }
  }
}

}  // namespace inferd
