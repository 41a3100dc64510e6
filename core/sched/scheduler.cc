// The Scheduler proper: admission, placement, dispatch, retries and
// preemption, and finishing jobs. Devices are in device_lane.*, batching in
// batching_stage.*, tasks in task_graph.* and scheduler_tasks.cc; health,
// timers, sweeping and stats in scheduler_upkeep.cc.
#include "core/sched/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "core/infer/device_execution.h"
#include "core/infer/infer_request.h"
#include "core/sched/batching_stage.h"
#include "core/sched/device_lane.h"
#include "core/sched/job.h"
#include "core/sched/scheduler_metrics.h"
#include "core/sched/task_graph.h"
#include "core/util/logging.h"

namespace inferd {
namespace {

constexpr int kMaxDevices = 64;

// Errors another device (or a later attempt) may not repeat: device faults,
// aborts and memory pressure. A model's own error (an exception in its
// code) would repeat anywhere.
bool IsRetryable(const absl::Status& s) {
  return IsDeviceFault(s) || (!IsModelError(s) && (s.code() == absl::StatusCode::kAborted ||
                                                   s.code() == absl::StatusCode::kResourceExhausted));
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

// Dispatch trampoline: device work that completes inline (idle host
// streams) re-enters the scheduler; instead of recursing, lanes to dispatch
// are deferred to the outermost dispatch on this thread.
thread_local bool tls_dispatching = false;

// Round-robin position and tie-break rotation, per submitting thread (a
// shared counter would bounce one cache line between every submitter).
thread_local uint64_t tls_rotation = 0;
thread_local absl::InlinedVector<void*, 4> tls_deferred;

std::vector<int> DeviceIndexes(const std::vector<Device*>& devices) {
  std::vector<int> out;
  for (Device* d : devices) out.push_back(d->index());
  return out;
}

}  // namespace

bool IsDeviceFault(const absl::Status& s) {
  if (IsModelError(s)) return false;
  switch (s.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// Job: the responder ExecuteOnDevice reports to.

void* Job::AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc) {
  if (batch != nullptr) {
    BatchData& b = *batch;
    if (static_cast<size_t>(index) >= b.outputs.size()) return nullptr;
    BatchData::Output& out = b.outputs[index];
    out.desc = desc;
    out.present = true;
    const uint64_t bytes = std::max<uint64_t>(desc.byte_size, 1);
    if (out.pinned.size() < bytes && b.allocator != nullptr) {
      out.pinned.Reset();
      out.pinned = StagingBlock(*b.allocator, *b.device, bytes);
    }
    if (out.pinned.size() >= bytes) {
      out.data = out.pinned.data();
    } else {
      if (out.heap_bytes < bytes) {
        out.heap.reset(new uint8_t[bytes]);
        out.heap_bytes = bytes;
      }
      out.data = out.heap.get();
    }
    return out.data;
  }
  if (static_cast<size_t>(index) >= host_outputs.size()) {
    host_outputs.resize(index + 1, nullptr);
    host_output_asked.resize(index + 1, false);
  }
  if (!host_output_asked[index]) {
    host_outputs[index] = sink->AllocateOutput(index, spec, desc);
    host_output_asked[index] = true;
  }
  return host_outputs[index];
}

void* Job::AllocateDeviceOutput(int index, const TensorSpec& spec, const TensorDesc& desc,
                                Device& device) {
  if (batch != nullptr || sink == nullptr) return nullptr;
  return sink->AllocateDeviceOutput(index, spec, desc, device);
}

void Job::Complete(absl::Status status) { scheduler->OnExecuted(this, std::move(status)); }

absl::Status Job::SendResponse(absl::Span<const HostTensor> outputs) {
  if (batch != nullptr || sink == nullptr) return InferResponder::SendResponse(outputs);
  return sink->SendResponse(outputs);
}

// ---------------------------------------------------------------------------
// Construction.

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(SchedulerOptions options,
                                                             std::vector<Device*> devices,
                                                             DeviceAllocator* allocator,
                                                             const ModelRegistry* models,
                                                             TensorAccess* tensors, Clock* clock,
                                                             prometheus::Registry& registry) {
  if (devices.empty() || devices.size() > kMaxDevices) {
    return absl::InvalidArgumentError(absl::StrCat("devices: the scheduler needs 1 to ",
                                                   kMaxDevices, " devices, got ", devices.size()));
  }
  for (Device* d : devices) {
    if (d == nullptr) return absl::InvalidArgumentError("devices: null device");
  }
  if (allocator == nullptr || models == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError("scheduler: allocator, models and clock are required");
  }
  // Invariants the engine needs to run; the config key table
  // (core/config/config_keys.cc) holds each key's operator range.
  if (options.max_tasks_per_device < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("device.multi_gpu.performance_optimization.max_tasks_per_device: must be "
                     "at least 1, got ",
                     options.max_tasks_per_device));
  }
  if (options.default_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "device.multi_gpu.performance_optimization.task_timeout: must be > 0");
  }
  if (options.max_queue_depth < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scheduler.max_queue_depth: must be at least 1, got ", options.max_queue_depth));
  }
  if (options.unhealthy_threshold < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scheduler.unhealthy_threshold: must be at least 1, got ", options.unhealthy_threshold));
  }
  if (options.default_max_retries < 0 || options.default_max_retries > kMaxRetriesLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("scheduler.default_max_retries: must be within [0, ", kMaxRetriesLimit,
                     "] (a retry count fits a job's bookkeeping), got ",
                     options.default_max_retries));
  }
  if (options.first_stream < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("first_stream: ", options.first_stream, " must be >= 0"));
  }
  if (options.watch_buffer_events == 0) options.watch_buffer_events = 1024;
  if (options.timeout_sweep_interval <= absl::ZeroDuration()) {
    options.timeout_sweep_interval = absl::Milliseconds(50);
  }
  if (options.sample_interval <= absl::ZeroDuration()) options.sample_interval = absl::Seconds(1);
  return std::unique_ptr<Scheduler>(new Scheduler(std::move(options), std::move(devices), allocator,
                                                  models, tensors, clock, registry));
}

Scheduler::Scheduler(SchedulerOptions options, std::vector<Device*> devices,
                     DeviceAllocator* allocator, const ModelRegistry* models, TensorAccess* tensors,
                     Clock* clock, prometheus::Registry& registry)
    : options_(std::move(options)),
      group_slots_(options_.max_requests_per_slot > 1 && options_.group_slots > 0 &&
                           options_.group_slots < options_.max_tasks_per_device
                       ? options_.group_slots
                       : 0),
      allocator_(allocator),
      models_(models),
      tensors_(tensors),
      clock_(clock),
      metrics_(std::make_unique<SchedulerMetrics>(registry, DeviceIndexes(devices))),
      lanes_(std::make_unique<DeviceLanes>(
          this, devices, options_.max_tasks_per_device, options_.first_stream,
          AgingOptions{options_.aging_interval, options_.enable_preemption},
          options_.enable_preemption)) {
  if (options_.batch_gather_threads > 1) {
    for (int i = 0; i < lanes_->size(); ++i) {
      gather_copiers_.push_back(std::make_unique<ParallelCopy>(options_.batch_gather_threads));
    }
  }
  batching_ = std::make_unique<BatchingStage>(
      options_, *lanes_, *metrics_, clock_,
      BatchingHooks{
          .place = [this](Job* job, absl::Time now) { PlaceAndPush(job, now); },
          .schedule = [this](absl::Time when,
                             TimerQueue::Callback fn) { ScheduleTimer(when, std::move(fn)); },
          .staging =
              [this](size_t bytes) {
                // Pinned blocks are portable: the first device's pool serves
                // a batch that runs on any.
                return lanes_->size() == 0 ? StagingBlock()
                                           : StagingBlock(*allocator_, *(*lanes_)[0].device, bytes);
              },
      });
  graph_ = std::make_unique<TaskGraph>(
      options_, models_, tensors_, clock_, lanes_->size(),
      TaskGraphHooks{
          .admit = [this](const std::array<int64_t, kNumPriorities>& n) { return AdmitTasks(n); },
          .unadmit =
              [this](Priority p) {
                admitted_[static_cast<int>(p)].fetch_sub(1, std::memory_order_relaxed);
              },
          .run = [this](const std::shared_ptr<TaskRecord>& record) { RunReadyTask(record); },
          .unqueue = [this](Job* job) { return TryUnqueue(job); },
          .drop = [this](Job* job, absl::Status st) { FinishJob(job, std::move(st)); },
          .has_device = [this](int device) { return lanes_->PositionOf(device) >= 0; },
          .schedule = [this](absl::Time when,
                             TimerQueue::Callback fn) { return ScheduleTimer(when, std::move(fn)); },
          .cancel_timer = [this](uint64_t timer) { timers_.Cancel(timer); },
      });
  lanes_->RefreshDevices();
  {
    absl::MutexLock lock(&sample_mu_);
    last_sample_ = clock_->Now();
  }
  if (options_.start_timer_thread) thread_ = std::thread([this] { TimerLoop(); });
}

Scheduler::~Scheduler() { Shutdown(); }

int Scheduler::num_devices() const { return lanes_->size(); }

std::optional<BatchingPolicy> Scheduler::BatchingFor(const ModelSignature& sig) const {
  return batching_->PolicyFor(sig);
}

// ---------------------------------------------------------------------------
// Submission.

void Scheduler::Submit(InferRequest request, InferResponder* responder) {
  if (shutting_down_.load(std::memory_order_acquire)) {
    responder->Complete(absl::UnavailableError("scheduler: shutting down"));
    return;
  }
  auto* job = new Job;
  job->scheduler = this;
  job->sink = responder;
  job->request = std::move(request);
  job->priority = job->request.priority;
  const absl::Time now = clock_->Now();
  job->submit_time = now;
  job->queued_time = now;
  job->deadline = now + options_.default_timeout;
  job->max_retries = options_.default_max_retries;
  job->rows = BatchRows(job->request);
  if (absl::Status st = Admit(job); !st.ok()) {
    delete job;
    responder->Complete(std::move(st));
    return;
  }
  submitted_.fetch_add(1, std::memory_order_relaxed);
  job->Track(*metrics_);
  Enqueue(job, now);
}

absl::Status Scheduler::Admit(Job* job) {
  const int p = static_cast<int>(job->priority);
  const int64_t n = admitted_[p].fetch_add(1, std::memory_order_relaxed) + 1;
  if (n > options_.max_queue_depth) {
    admitted_[p].fetch_sub(1, std::memory_order_relaxed);
    rejected_.fetch_add(1, std::memory_order_relaxed);
    metrics_->rejected(job->priority).Increment();
    return absl::ResourceExhaustedError(
        absl::StrCat("scheduler.max_queue_depth: the ", PriorityName(job->priority),
                     " queue is full (", options_.max_queue_depth, " queued)"));
  }
  job->admitted = true;
  return absl::OkStatus();
}

void Scheduler::Unadmit(Job* job) {
  if (!job->admitted) return;
  job->admitted = false;
  admitted_[static_cast<int>(job->priority)].fetch_sub(1, std::memory_order_relaxed);
}

void Scheduler::Enqueue(Job* job, absl::Time now) {
  DynamicBatcher* batcher = batching_->BatcherFor(*job);
  if (batcher == nullptr) {
    PlaceAndPush(job, now);
    return;
  }
  // The job must not be touched once Add returns: another thread may
  // flush, run and finish it.
  DynamicBatcher::AddResult added;
  bool terminal = false;
  if (job->task != nullptr) {
    TaskRecord& rec = *job->task;
    absl::MutexLock lock(&rec.mu);
    if (IsTerminal(rec.state)) {
      terminal = true;
    } else {
      if (rec.queued_time == absl::InfinitePast()) rec.queued_time = now;
      graph_->SetStateLocked(rec, TaskState::kQueued, now);
      added = batching_->Add(*batcher, job, now);
    }
  } else {
    added = batching_->Add(*batcher, job, now);
  }
  if (terminal) {
    job->cancelled.store(true);
    FinishJob(job, absl::CancelledError("task cancelled"));
    return;
  }
  batching_->Follow(*batcher, std::move(added), now);
}

void Scheduler::PlaceAndPush(Job* job, absl::Time now) {
  auto fail = [&](absl::Status st) { Finish(job, std::move(st)); };
  if (shutting_down_.load(std::memory_order_acquire)) {
    fail(absl::UnavailableError("scheduler: shutting down"));
    return;
  }
  // A retried or preempted job leaves its old device's reservation.
  if (job->reserved_memory) (*lanes_)[job->lane.load()].Unreserve(job);
  const bool may_preempt = options_.enable_preemption && job->priority == Priority::kCritical &&
                           job->device_constraint < 0;
  PlacementRequest request;
  request.memory_requirement_bytes = job->memory_requirement;
  request.device = job->device_constraint;
  request.excluded_mask = job->failed_mask;
  request.preferred = job->preferred_device;
  const int n = lanes_->size();
  for (int tries = 0; tries <= n; ++tries) {
    int chosen = may_preempt ? lanes_->PreemptionTarget(*job) : -1;
    absl::InlinedVector<DeviceLoad, 8> loads(chosen < 0 ? n : 0);
    for (int i = 0; i < n && chosen < 0; ++i) {
      const DeviceLane& l = (*lanes_)[i];
      DeviceLoad& d = loads[i];
      d.index = l.device->index();
      d.eligible =
          l.active.load(std::memory_order_relaxed) && l.healthy.load(std::memory_order_relaxed);
      d.queued = l.queued.load(std::memory_order_relaxed);
      d.queued_ahead = l.QueuedAhead(job->priority);
      d.running = l.running.load(std::memory_order_relaxed);
      d.max_running = options_.max_tasks_per_device;
      d.total_memory_bytes = l.total_memory.load(std::memory_order_relaxed);
      d.free_memory_bytes = l.free_memory.load(std::memory_order_relaxed);
      d.reserved_bytes = l.reserved.load(std::memory_order_relaxed);
      d.utilization = l.utilization_permille.load(std::memory_order_relaxed) / 1000.0;
    }
    if (chosen < 0) {
      request.rotation = tls_rotation++;
      absl::StatusOr<int> pos =
          PlaceTask(options_.strategy, loads, request, options_.balanced_weights);
      if (!pos.ok()) {
        fail(pos.status());
        return;
      }
      chosen = *pos;
    }
    DeviceLane& lane = (*lanes_)[chosen];
    bool pushed = false;
    bool cancelled = false;
    auto push = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane.mu) {
      job->lane.store(lane.position, std::memory_order_relaxed);
      job->where.store(Job::Where::kQueued);
      job->enqueue_time = job->queued_time;
      lane.PushLocked(job);
      lane.Reserve(job);
      pushed = true;
    };
    if (job->task != nullptr) {
      TaskRecord& rec = *job->task;
      absl::MutexLock record_lock(&rec.mu);
      if (IsTerminal(rec.state)) {
        cancelled = true;
      } else {
        absl::MutexLock lock(&lane.mu);
        if (lane.Eligible()) {
          if (rec.queued_time == absl::InfinitePast()) rec.queued_time = now;
          rec.device = lane.device->index();
          graph_->SetStateLocked(rec, TaskState::kQueued, now);
          push();
        }
      }
    } else {
      absl::MutexLock lock(&lane.mu);
      if (lane.Eligible()) push();
    }
    if (cancelled) {
      job->cancelled.store(true);
      FinishJob(job, absl::CancelledError("task cancelled"));
      return;
    }
    if (pushed) {
      Dispatch(lane);
      return;
    }
  }
  fail(absl::UnavailableError("no active healthy device accepted the work"));
}

// ---------------------------------------------------------------------------
// Dispatch and execution.

void Scheduler::Dispatch(DeviceLane& lane) {
  if (tls_dispatching) {
    if (std::find(tls_deferred.begin(), tls_deferred.end(), &lane) == tls_deferred.end()) {
      tls_deferred.push_back(&lane);
    }
    return;
  }
  tls_dispatching = true;
  DispatchLoop(lane);
  while (!tls_deferred.empty()) {
    auto* next = static_cast<DeviceLane*>(tls_deferred.back());
    tls_deferred.pop_back();
    next->owner->DispatchLoop(*next);
  }
  tls_dispatching = false;
}

void Scheduler::DispatchLoop(DeviceLane& lane) {
  while (true) {
    absl::Time now;  // read only when there is something to start
    Job* job = nullptr;
    bool try_steal = false;
    bool preempted = false;
    {
      absl::MutexLock lock(&lane.mu);
      if (lane.free_slots.empty()) {
        // No slot: a queued CRITICAL job may take a running BACKGROUND
        // job's (docs/SCHEDULER.md, Preemption), unless another device
        // it may run on has a free slot.
        if (lane.preemptible.load(std::memory_order_relaxed) == 0) return;
        now = clock_->Now();
        job = lane.PreemptorLocked(now);
        if (job == nullptr || (job->device_constraint < 0 && lanes_->SlotFreeElsewhere(lane))) return;
        Job* victim = lane.VictimLocked(*job);
        if (victim == nullptr) return;
        lane.PreemptLocked(job, victim);
        preempted = true;
      } else {
        if (!lane.queue.empty()) {
          now = clock_->Now();
          // With the group slots held, groupable requests wait for the
          // next group; other work still takes the free slots.
          job = GroupSlotsFull(lane) ? lane.PopLocked(now, &NotGroupable) : lane.PopLocked(now);
        }
        if (job != nullptr) {
          if (GroupNow(lane, *job)) job = FormGroup(lane, job, now);
          if (job->IsGroup() || Groupable(job)) {
            job->light_slot = true;
            ++lane.light_running;
          }
          lane.TakeSlotLocked(job);
        } else {
          try_steal = options_.enable_migration && lane.Eligible();
        }
      }
    }
    if (preempted) {
      preemptions_.fetch_add(1, std::memory_order_relaxed);
      metrics_->preemptions().Increment();
      INFERD_LOG(kDebug, "device ", lane.device->index(),
                 ": a CRITICAL job took a running BACKGROUND job's slot");
    }
    if (job == nullptr) {
      if (!try_steal) return;
      now = clock_->Now();
      job = Steal(lane, now);
      if (job == nullptr) return;
      absl::MutexLock lock(&lane.mu);
      if (lane.free_slots.empty()) {
        // A concurrent dispatch took the slot meanwhile: queue it here.
        job->where.store(Job::Where::kQueued);
        lane.PushLocked(job);
        return;
      }
      lane.TakeSlotLocked(job);
    }
    StartJob(lane, job, now);
  }
}

Job* Scheduler::Steal(DeviceLane& thief, absl::Time now) {
  DeviceLane* victim = lanes_->MostQueued(thief);
  if (victim == nullptr) return nullptr;
  Job* job = nullptr;
  {
    absl::MutexLock lock(&victim->mu);
    job = victim->PopLocked(
        now, [](const QueueNode* n) { return static_cast<const Job*>(n)->device_constraint < 0; });
    if (job == nullptr) return nullptr;
    job->where.store(Job::Where::kNew);
    victim->Unreserve(job);
  }
  job->lane.store(thief.position, std::memory_order_relaxed);
  thief.Reserve(job);
  return job;
}

bool Scheduler::BeginMember(DeviceLane& lane, Job* job, absl::Time now) {
  if (job->attempts == 0) {
    const absl::Duration waited = now - job->queued_time;
    metrics_->queue_duration(job->priority).Observe(Seconds(waited));
    queue_ns_.fetch_add(absl::ToInt64Nanoseconds(waited), std::memory_order_relaxed);
    queue_count_.fetch_add(1, std::memory_order_relaxed);
  }
  Unadmit(job);
  job->start_time = now;
  ++job->attempts;
  if (job->task == nullptr) {
    // A ModelInfer request whose client has gone (a cancelled stream) is
    // dropped instead of run.
    if (job->sink != nullptr && job->sink->IsCancelled()) {
      job->cancelled.store(true);
      return false;
    }
    return true;
  }
  TaskRecord& rec = *job->task;
  absl::MutexLock lock(&rec.mu);
  if (IsTerminal(rec.state)) {
    job->cancelled.store(true);
    return false;
  }
  ++rec.attempts;
  rec.start_time = now;
  rec.device = lane.device->index();
  rec.batched = job->parent != nullptr;
  graph_->SetStateLocked(rec, TaskState::kRunning, now);
  return true;
}

void Scheduler::StartJob(DeviceLane& lane, Job* job, absl::Time now) {
  if (job->batch != nullptr && !job->IsGroup()) {
    bool any_live = false;
    for (Job* m : job->batch->members) any_live |= BeginMember(lane, m, now);
    job->start_time = now;
    ++job->attempts;
    if (!any_live) {
      // Every member was cancelled while queued: nothing to run.
      job->start_time = absl::InfinitePast();
      job->Complete(absl::CancelledError("every request of the batch was cancelled"));
      return;
    }
  } else if (!BeginMember(lane, job, now)) {
    job->start_time = absl::InfinitePast();
    job->Complete(absl::CancelledError("task cancelled"));
    return;
  }
  if (now >= job->deadline) {
    job->start_time = absl::InfinitePast();
    job->timed_out.store(true);
    job->Complete(absl::DeadlineExceededError("timeout: the deadline passed while queued"));
    return;
  }
  const int streams = lane.device->num_streams();
  Stream& stream = lane.device->stream((options_.first_stream + job->slot) % streams);
  if (job->IsGroup()) {
    StartGroup(lane, job, stream, now);
    return;
  }
  if (job->batch != nullptr) {
    ParallelCopy* copier =
        gather_copiers_.empty() ? nullptr : gather_copiers_[lane.position].get();
    GatherBatchInputs(*job, *allocator_, *lane.device, copier);
  }
  // A lone job on the device, nothing queued behind it: a GPU stream may
  // wait for it here and complete it on this thread (InlineCompletionScope).
  InlineCompletionScope lone(lane.running.load(std::memory_order_relaxed) == 1 &&
                             lane.queued.load(std::memory_order_relaxed) == 0);
  // A model whose executions queue on one stream runs on that one, its
  // copies on the job's own.
  ModelStream split;
  if (job->stream_slot != job->slot) {
    split = ModelStream{&lane.device->stream((options_.first_stream + job->stream_slot) % streams),
                        lane.SlotEvent(job->slot, 0), lane.SlotEvent(job->slot, 1),
                        lane.SlotEvent(job->slot, 2)};
  }
  // May complete (and delete the job) before it returns.
  ExecuteOnDevice(job->request, stream, *allocator_, job,
                  split.stream != nullptr ? &split : nullptr);
}

void Scheduler::OnExecuted(Job* job, absl::Status status) {
  DeviceLane& lane = (*lanes_)[job->lane.load(std::memory_order_relaxed)];
  const absl::Time now = clock_->Now();
  bool slot_freed = false;
  bool preempted = false;
  {
    absl::MutexLock lock(&lane.mu);
    lane.UnlinkRunning(job);
    lane.UncountPreemptibleLocked(job);
    slot_freed = !lane.spare_out;
    lane.ReturnSlotLocked(job);
    if (job->light_slot) {
      job->light_slot = false;
      --lane.light_running;
    }
    lane.running.fetch_sub(1, std::memory_order_relaxed);
    preempted = job->preempted.exchange(false);
    ++lane.completing;  // Shutdown waits for this call to return
  }
  // A slot is free: a parked batch (see BatchingStage) goes first, before
  // this job's results are split and delivered, so the device is not idle
  // meanwhile. (A slot given back to the spare frees none.)
  if (slot_freed) batching_->OnSlotFreed();
  const bool executed = job->start_time != absl::InfinitePast();
  if (executed) {
    lane.completed.fetch_add(1, std::memory_order_relaxed);
    const absl::Duration took = now - job->start_time;
    exec_ns_.fetch_add(absl::ToInt64Nanoseconds(took), std::memory_order_relaxed);
    exec_count_.fetch_add(1, std::memory_order_relaxed);
    auto observe = [&](Job* j) {
      j->Series(*metrics_)->execution_duration->Observe(Seconds(took));
    };
    if (job->batch != nullptr) {
      for (Job* m : job->batch->members) observe(m);
    } else {
      observe(job);
    }
    NoteDeviceResult(lane, job->IsGroup() ? GroupDeviceResult(*job->batch, status) : status);
  }
  if (job->task != nullptr && tensors_ != nullptr) {
    std::vector<AccessedTensor> pins;
    {
      absl::MutexLock lock(&job->task->mu);
      pins.swap(job->task->output_pins);
    }
    for (const AccessedTensor& t : pins) tensors_->Release(t);
  }
  if (!status.ok() && job->timed_out.load()) {
    status = absl::DeadlineExceededError(
        absl::StrCat("timeout: the deadline passed while running (", status.message(), ")"));
  }
  if (job->IsGroup()) {
    SettleGroup(lane, job, status, now);
  } else if (preempted && executed && !shutting_down_.load() && !job->cancelled.load() &&
             !job->timed_out.load() && now < job->deadline) {
    // The result is dropped whatever it was; the work runs again.
    RequeuePreempted(job, now);
  } else if (!executed || !RetryLater(lane, job, status, now)) {
    Finish(job, std::move(status));
  }
  Dispatch(lane);
  absl::MutexLock lock(&lane.mu);
  --lane.completing;
}

bool Scheduler::RetryLater(DeviceLane& lane, Job* job, const absl::Status& status,
                           absl::Time now) {
  // Preemptions start executions that are no retries.
  const int attempts = job->attempts - job->preemptions;
  const absl::Duration backoff =
      std::min(options_.retry_backoff * (int64_t{1} << std::clamp(attempts - 1, 0, 20)),
               options_.max_retry_backoff);
  if (!IsRetryable(status) || shutting_down_.load() || job->cancelled.load() ||
      job->timed_out.load() || attempts > job->max_retries || now + backoff >= job->deadline) {
    return false;
  }
  job->failed_mask |= uint64_t{1} << lane.position;
  retries_.fetch_add(1, std::memory_order_relaxed);
  metrics_->retries().Increment();
  INFERD_LOG(kDebug, "retrying after ", status.ToString(), " on device ", lane.device->index(),
             " (attempt ", job->attempts, ")");
  job->where.store(Job::Where::kRetryWait);
  ScheduleTimer(now + backoff, [this, job] { PlaceAndPush(job, clock_->Now()); });
  return true;
}

void Scheduler::RequeuePreempted(Job* job, absl::Time now) {
  // Drops what the discarded execution wrote to a task: inline bytes,
  // tensors kept on the device. A task's next execution asks its record
  // for output memory again; a ModelInfer responder is never asked twice.
  auto reset = [&](Job* j) {
    if (j->task == nullptr) return;
    TaskRecord& rec = *j->task;
    std::vector<std::string> frees;
    {
      absl::MutexLock lock(&rec.mu);
      if (IsTerminal(rec.state)) return;
      for (size_t i = 0; i < rec.outputs.size(); ++i) {
        TaskOutput& out = rec.outputs[i];
        if (!out.tensor_handle.empty()) frees.push_back(std::move(out.tensor_handle));
        out.tensor_handle.clear();
        std::string().swap(out.data);
        rec.present[i] = false;
      }
      graph_->SetStateLocked(rec, TaskState::kQueued, now);
    }
    j->host_outputs.clear();
    j->host_output_asked.clear();
    if (tensors_ != nullptr) {
      for (const std::string& handle : frees) tensors_->Free(handle);
    }
  };
  if (job->batch != nullptr) {
    BatchData& b = *job->batch;
    for (Job* m : b.members) reset(m);
    for (BatchData::Output& out : b.outputs) out.present = false;
  } else {
    reset(job);
  }
  INFERD_LOG(kDebug, "requeueing a preempted execution (attempt ", job->attempts, ")");
  job->where.store(Job::Where::kNew);
  PlaceAndPush(job, now);
}

void Scheduler::Finish(Job* job, absl::Status status) {
  if (job->IsGroup()) {
    SettleGroup((*lanes_)[job->lane.load()], job, status, clock_->Now());
  } else if (job->batch != nullptr) {
    FinishBatch(job, std::move(status));
  } else {
    FinishJob(job, std::move(status));
  }
}

void Scheduler::FinishBatch(Job* batch, absl::Status status) {
  if (batch->reserved_memory) {
    (*lanes_)[batch->lane.load()].reserved.fetch_sub(batch->memory_requirement);
  }
  // A model at its execution limit has its next batch parked behind this
  // one: start it before this batch's responses are sliced and delivered
  // (one per member), so the device does not idle meanwhile. Starting it
  // only enqueues device work (no host stream runs it inline here).
  if (batch->emitted_by != nullptr) {
    AsyncOnlyScope enqueue_only;
    batching_->OnFinished(*batch->emitted_by,
                          {.rows = batch->batch->total_rows,
                           .batch = true,
                           .infer = absl::Nanoseconds(batch->timing.compute_infer_ns)});
  }
  // Each member but the last is delivered (sliced, counted, its response
  // filled and sent) on its call's own thread, the front end's, where it
  // has one: one after another on this thread, 64 responses of 16 KB took
  // ≈ 1 ms (docs/PERFORMANCE-REQUEST-PATH.md).
  BatchData& b = *batch->batch;
  const size_t n = b.members.size();
  b.status = std::move(status);
  b.deliveries.resize(n);
  b.undelivered.store(n, std::memory_order_relaxed);
  delivering_.Begin();  // until the last member is delivered
  for (size_t i = 0; i + 1 < n; ++i) {
    MemberDelivery& d = b.deliveries[i];
    d.batch = batch;
    d.index = i;
    InferResponder* sink = b.members[i]->sink;
    if (sink == nullptr || !sink->RunOnOwnThread(&d)) DeliverMember(batch, i);
  }
  DeliverMember(batch, n - 1);  // `batch` may be gone after it
}

void MemberDelivery::Run() { batch->scheduler->DeliverMember(batch, index); }

void Scheduler::DeliverMember(Job* batch, size_t i) {
  BatchData& b = *batch->batch;
  Job* m = b.members[i];
  FinishJob(m, batching_->SplitMember(batch, i, b.status));
  if (b.undelivered.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  delete batch;
  delivering_.End();
}

void Scheduler::FinishJob(Job* job, absl::Status status) {
  Unadmit(job);
  if (job->reserved_memory) (*lanes_)[job->lane.load()].Unreserve(job);
  if (tensors_ != nullptr) {
    for (const AccessedTensor& t : job->pins) tensors_->Release(t);
  }
  job->pins.clear();
  if (job->cancelled.load()) {
    status = absl::CancelledError("task cancelled");
  } else if (job->timed_out.load() && status.ok()) {
    status = absl::DeadlineExceededError("timeout: the deadline passed while running");
  }
  RecordStatistics(*job, status);
  const Outcome outcome = OutcomeOf(status);
  completed_[static_cast<int>(outcome)].fetch_add(1, std::memory_order_relaxed);
  metrics_->CountCompleted(*job->Series(*metrics_), job->priority, outcome);
  job->where.store(Job::Where::kDone);
  // A job its model's batcher emitted (a lone request dispatched at once)
  // may have the model's next batch parked behind it, as a batch may
  // (FinishBatch): start that first, so the device has it before the
  // response goes out. Only enqueued here (no host stream runs it inline).
  if (std::shared_ptr<DynamicBatcher> emitted_by = std::move(job->emitted_by)) {
    AsyncOnlyScope enqueue_only;
    batching_->OnFinished(*emitted_by,
                          {.rows = job->rows, .infer = absl::Nanoseconds(job->timing.compute_infer_ns)});
  }
  if (job->task != nullptr) {
    std::shared_ptr<TaskRecord> record = std::move(job->task);
    delete job;
    graph_->Finish(record.get(), std::move(status));
  } else {
    InferResponder* sink = job->sink;
    delete job;
    sink->Complete(std::move(status));
  }
}

void Scheduler::RecordStatistics(const Job& job, const absl::Status& status) {
  const absl::Time now = clock_->Now();
  ModelStatistics& stats = job.request.model->statistics();
  if (!status.ok()) {
    stats.RecordFailure(now - job.submit_time, now);
    return;
  }
  const absl::Duration queued = job.start_time == absl::InfinitePast()
                                    ? absl::ZeroDuration()
                                    : job.start_time - job.submit_time;
  stats.RecordSuccess(InferenceCount(job.request), now - job.submit_time, queued, job.timing, now);
}

void Scheduler::NoteDeviceResult(DeviceLane& lane, const absl::Status& status) {
  if (status.ok()) {
    lane.consecutive_failures.store(0, std::memory_order_relaxed);
    return;
  }
  if (!IsDeviceFault(status)) return;
  lane.failures.fetch_add(1, std::memory_order_relaxed);
  const int n = lane.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n >= options_.unhealthy_threshold && lane.healthy.load()) {
    SetHealthy(lane, false, absl::StrCat(n, " consecutive failures, last: ", status.message()));
  }
}

}  // namespace inferd
