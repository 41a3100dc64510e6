// The Scheduler's upkeep: device health (failures, probes, the scaler's
// active set), timers and the timer thread, the timeout sweep, load
// samples, stats and shutdown.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/infer/device_execution.h"
#include "core/sched/batching_stage.h"
#include "core/sched/device_lane.h"
#include "core/sched/job.h"
#include "core/sched/scheduler.h"
#include "core/sched/scheduler_metrics.h"
#include "core/sched/task_graph.h"
#include "core/util/logging.h"

namespace inferd {

// ---------------------------------------------------------------------------
// Devices and health.

void Scheduler::MoveQueuedOff(DeviceLane& lane, absl::string_view why) {
  std::vector<Job*> moved;
  {
    absl::MutexLock lock(&lane.mu);
    lane.RemoveIfLocked(nullptr, absl::InfinitePast(), &moved);
  }
  const absl::Time now = clock_->Now();
  for (Job* job : moved) {
    lane.Unreserve(job);
    if (job->device_constraint == lane.device->index()) {
      Finish(job, absl::UnavailableError(absl::StrCat("device: device ", lane.device->index(),
                                                      " was ", why, " while the work was queued")));
    } else {
      PlaceAndPush(job, now);
    }
  }
  if (!moved.empty()) {
    INFERD_LOG(kInfo, "device ", lane.device->index(), " ", why, ": moved ", moved.size(),
               " queued item(s)");
  }
}

// ---------------------------------------------------------------------------
// Devices and health.

absl::Status Scheduler::SetDeviceActive(int device, bool active) {
  const int pos = lanes_->PositionOf(device);
  if (pos < 0) return absl::NotFoundError(absl::StrCat("device: no device ", device));
  DeviceLane& lane = (*lanes_)[pos];
  if (lane.active.exchange(active) == active) return absl::OkStatus();
  INFERD_LOG(kInfo, "scheduler: device ", device, active ? " activated" : " deactivated");
  if (!active) {
    MoveQueuedOff(lane, "deactivated");
  } else {
    Dispatch(lane);
  }
  return absl::OkStatus();
}

absl::Status Scheduler::SetDeviceHealthy(int device, bool healthy) {
  const int pos = lanes_->PositionOf(device);
  if (pos < 0) return absl::NotFoundError(absl::StrCat("device: no device ", device));
  SetHealthy((*lanes_)[pos], healthy, healthy ? "marked healthy" : "marked unhealthy");
  return absl::OkStatus();
}

void Scheduler::SetHealthy(DeviceLane& lane, bool healthy, const std::string& reason) {
  if (lane.healthy.exchange(healthy) == healthy) return;
  metrics_->device_healthy(lane.position).Set(healthy ? 1 : 0);
  if (healthy) {
    lane.consecutive_failures.store(0);
    INFERD_LOG(kInfo, "scheduler: device ", lane.device->index(), " healthy again: ", reason);
  } else {
    INFERD_LOG(kWarning, "scheduler: device ", lane.device->index(), " marked unhealthy: ", reason);
  }
  if (options_.on_device_health) {
    // Delivered from the timer thread, never from inside a dispatch: the
    // listener (the scaler) may call back into SetDeviceActive.
    const int device = lane.device->index();
    ScheduleTimer(clock_->Now(), [this, device, healthy, reason] {
      options_.on_device_health(device, healthy, reason);
    });
  }
  if (!healthy) {
    MoveQueuedOff(lane, "marked unhealthy");
    if (options_.unhealthy_probe_interval > absl::ZeroDuration()) {
      const int pos = lane.position;
      ScheduleTimer(clock_->Now() + options_.unhealthy_probe_interval, [this, pos] { Probe(pos); });
    }
  } else {
    Dispatch(lane);
  }
}

void Scheduler::Probe(int position) {
  DeviceLane& lane = (*lanes_)[position];
  if (lane.healthy.load() || shutting_down_.load()) return;
  auto reschedule = [this, position] {
    if (shutting_down_.load()) return;
    ScheduleTimer(clock_->Now() + options_.unhealthy_probe_interval,
                  [this, position] { Probe(position); });
  };
  Stream& stream = lane.device->stream(0);
  absl::StatusOr<void*> buffer = allocator_->Allocate(*lane.device, stream, 256);
  if (!buffer.ok()) {
    reschedule();
    return;
  }
  void* ptr = *buffer;
  absl::Status st = stream.Memset(ptr, 0, 256);
  if (!st.ok()) {
    allocator_->Free(*lane.device, stream, ptr);
    reschedule();
    return;
  }
  {
    absl::MutexLock lock(&lane.mu);
    lane.probing = true;
  }
  st = stream.ThenCallback([this, &lane, &stream, ptr, reschedule](absl::Status result) {
    allocator_->Free(*lane.device, stream, ptr);
    if (result.ok()) {
      SetHealthy(lane, true, "probe succeeded");
    } else {
      reschedule();
    }
    absl::MutexLock lock(&lane.mu);
    lane.probing = false;
  });
  if (!st.ok()) {
    // No callback will run: free once the memset is done.
    stream.Synchronize().IgnoreError();
    allocator_->Free(*lane.device, stream, ptr);
    {
      absl::MutexLock lock(&lane.mu);
      lane.probing = false;
    }
    reschedule();
  }
}

// ---------------------------------------------------------------------------
// Timers, sweeps, samples.

uint64_t Scheduler::ScheduleTimer(absl::Time when, TimerQueue::Callback fn) {
  const uint64_t id = timers_.Schedule(when, std::move(fn));
  absl::MutexLock lock(&thread_mu_);
  if (when < thread_wake_at_) wake_ = true;
  return id;
}

void Scheduler::RunTimers() {
  const absl::Time now = clock_->Now();
  timers_.RunDue(now);
  bool sweep = false;
  bool sample = false;
  {
    absl::MutexLock lock(&sample_mu_);
    if (now >= next_sweep_) {
      sweep = true;
      next_sweep_ = now + options_.timeout_sweep_interval;
    }
    if (now >= next_sample_) {
      sample = true;
      next_sample_ = now + options_.sample_interval;
    }
  }
  bool batch_limits = false;
  if (options_.optimal_batch_size) {
    absl::MutexLock lock(&sample_mu_);
    if (now >= next_batch_limits_) {
      // The first pass only arms the refresh: BatcherFor set each cap.
      batch_limits = next_batch_limits_ != absl::InfinitePast();
      next_batch_limits_ = now + options_.batch_limit_refresh;
    }
  }
  if (sweep) Sweep(now);
  if (sample) {
    lanes_->RefreshDevices();
    Sample(now);
  }
  if (batch_limits) batching_->RefreshRowLimits();
}

void Scheduler::Sweep(absl::Time now) {
  for (auto& lane_ptr : *lanes_) {
    DeviceLane& lane = *lane_ptr;
    std::vector<Job*> expired;
    std::vector<std::shared_ptr<TaskRecord>> running_expired;
    {
      absl::MutexLock lock(&lane.mu);
      lane.RemoveIfLocked([](const QueueNode* n,
                             absl::Time t) { return static_cast<const Job*>(n)->deadline <= t; },
                          now, &expired);
      for (Job* j = lane.running_head; j != nullptr; j = static_cast<Job*>(j->next)) {
        if (j->deadline > now || j->timed_out.load()) continue;
        j->timed_out.store(true);
        if (j->task != nullptr) running_expired.push_back(j->task);
        if (j->batch != nullptr) {
          for (Job* m : j->batch->members) {
            if (m->task != nullptr) running_expired.push_back(m->task);
          }
        }
      }
    }
    for (Job* job : expired) {
      job->timed_out.store(true);
      Finish(job, absl::DeadlineExceededError("timeout: the deadline passed while queued"));
    }
    for (auto& rec : running_expired) {
      bool terminal = false;
      {
        absl::MutexLock lock(&rec->mu);
        terminal = graph_->SetTerminalLocked(
            *rec, absl::DeadlineExceededError("timeout: the deadline passed while running"), now);
      }
      if (terminal) graph_->AfterTerminal(rec);
    }
  }
}

void Scheduler::Sample(absl::Time now) {
  // Gauges are set here rather than per request (shared atomics on the hot
  // path); Prometheus scrapes no faster anyway.
  for (int p = 0; p < kNumPriorities; ++p) {
    metrics_->queue_length(static_cast<Priority>(p)).Set(static_cast<double>(admitted_[p].load()));
  }
  for (const auto& lane : *lanes_) {
    metrics_->running(lane->position).Set(lane->running.load(std::memory_order_relaxed));
  }
  // The series of unloaded models leave the scrape once no job holds them.
  if (models_ != nullptr) {
    metrics_->RemoveUnloaded(
        [this](absl::string_view model) { return models_->Find(model).ok(); });
  }
  SchedulerLoadSample sample;
  for (const auto& a : admitted_) sample.queue_length += static_cast<double>(a.load());
  uint64_t completed = 0;
  for (const auto& c : completed_) completed += c.load();
  const int64_t exec_ns = exec_ns_.load();
  const uint64_t exec_count = exec_count_.load();
  {
    absl::MutexLock lock(&sample_mu_);
    const double elapsed = absl::ToDoubleSeconds(now - last_sample_);
    if (elapsed > 0) {
      sample.throughput_tasks_per_second =
          static_cast<double>(completed - last_completed_) / elapsed;
    }
    if (exec_count > last_exec_count_) {
      sample.processing_time_seconds = static_cast<double>(exec_ns - last_exec_ns_) / 1e9 /
                                       static_cast<double>(exec_count - last_exec_count_);
    }
    last_sample_ = now;
    last_completed_ = completed;
    last_exec_ns_ = exec_ns;
    last_exec_count_ = exec_count;
  }
  if (options_.on_load_sample) options_.on_load_sample(sample);
}

void Scheduler::TimerLoop() {
  absl::MutexLock lock(&thread_mu_);
  while (!stop_) {
    // While running, any newly scheduled timer sets wake_ (wake-at is
    // "infinite future"), so none is missed between NextDue and the wait.
    thread_wake_at_ = absl::InfiniteFuture();
    wake_ = false;
    thread_mu_.Unlock();
    RunTimers();
    absl::Time next = timers_.NextDue();
    {
      absl::MutexLock sample_lock(&sample_mu_);
      next = std::min({next, next_sweep_, next_sample_});
    }
    thread_mu_.Lock();
    if (stop_ || wake_) continue;
    thread_wake_at_ = next;
    const absl::Duration wait = std::max(next - clock_->Now(), absl::ZeroDuration());
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(thread_mu_) { return stop_ || wake_; };
    thread_mu_.AwaitWithTimeout(absl::Condition(&woken), wait);
  }
}

void Scheduler::Shutdown() {
  if (shutting_down_.exchange(true)) return;
  graph_->CloseWatchers();
  {
    absl::MutexLock lock(&thread_mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();

  const absl::Status down = absl::UnavailableError("scheduler: shutting down");
  for (Job* job : batching_->TakeAll()) FinishJob(job, down);
  for (auto& lane : *lanes_) {
    std::vector<Job*> queued;
    {
      absl::MutexLock lock(&lane->mu);
      lane->RemoveIfLocked(nullptr, absl::InfinitePast(), &queued);
    }
    for (Job* job : queued) Finish(job, down);
  }
  graph_->FailWithoutJob(down);
  for (auto& lane : *lanes_) {
    absl::MutexLock lock(&lane->mu);
    lane->mu.Await(absl::Condition(lane.get(), &DeviceLane::IdleLocked));
  }
  // Retry waits fail now (shutting down); WaitTask waits answer.
  timers_.RunDue(absl::InfiniteFuture());
  for (auto& lane : *lanes_) {
    absl::MutexLock lock(&lane->mu);
    lane->mu.Await(absl::Condition(lane.get(), &DeviceLane::IdleLocked));
  }
  timers_.RunDue(absl::InfiniteFuture());
  // Members of finished batches handed to their calls' threads: every
  // call submitted is answered when Shutdown returns.
  delivering_.AwaitNone();
}

// ---------------------------------------------------------------------------
// Stats.

SchedulerStats Scheduler::GetStats() const {
  SchedulerStats s;
  s.strategy = std::string(PlacementStrategyName(options_.strategy));
  for (int p = 0; p < kNumPriorities; ++p) {
    s.queued_by_priority[p] = admitted_[p].load();
    s.queued += s.queued_by_priority[p];
  }
  s.waiting_deps = graph_->waiting_deps();
  s.submitted = submitted_.load();
  for (int o = 0; o < kNumOutcomes; ++o) s.completed[o] = completed_[o].load();
  s.rejected = rejected_.load();
  s.retries = retries_.load();
  s.preemptions = preemptions_.load();
  s.batches = batching_->batches();
  s.batched_requests = batching_->batched_requests();
  s.groups = groups_.load(std::memory_order_relaxed);
  s.grouped_requests = grouped_requests_.load(std::memory_order_relaxed);
  s.tasks_retained = graph_->retained();
  s.task_records = graph_->live_records();
  const uint64_t qn = queue_count_.load();
  const uint64_t en = exec_count_.load();
  if (qn > 0) s.mean_queue_seconds = static_cast<double>(queue_ns_.load()) / 1e9 / qn;
  if (en > 0) s.mean_execution_seconds = static_cast<double>(exec_ns_.load()) / 1e9 / en;
  for (const auto& lane : *lanes_) {
    DeviceSchedulerStats d;
    d.device = lane->device->index();
    d.active = lane->active.load();
    d.healthy = lane->healthy.load();
    d.queued = lane->queued.load();
    d.running = lane->running.load();
    d.consecutive_failures = lane->consecutive_failures.load();
    d.completed = lane->completed.load();
    d.failures = lane->failures.load();
    d.reserved_bytes = lane->reserved.load();
    s.running += d.running;
    s.devices.push_back(d);
  }
  s.pending_batch = batching_->pending();
  return s;
}

}  // namespace inferd
