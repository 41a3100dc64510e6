#include "core/sched/scheduler.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/infer/device_execution.h"
#include "core/util/check.h"
#include "core/util/checked_math.h"
#include "core/util/logging.h"

namespace inferd {
namespace {

constexpr int kMaxDevices = 64;
constexpr int kMaxRetriesLimit = 16;

// Errors another device (or a later attempt) may not repeat. A model's own
// error (an exception in its code) would repeat anywhere.
bool IsRetryable(const absl::Status& s) {
  if (IsModelError(s)) return false;
  switch (s.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

// Errors that count against the device's health (memory pressure and a
// model's own errors do not).
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

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

// Dispatch trampoline: device work that completes inline (idle host
// streams) re-enters the scheduler; instead of recursing, lanes to dispatch
// are deferred to the outermost dispatch on this thread.
thread_local bool tls_dispatching = false;

// Round-robin position and tie-break rotation, per submitting thread (a
// shared counter would bounce one cache line between every submitter).
thread_local uint64_t tls_rotation = 0;
thread_local absl::InlinedVector<void*, 4> tls_deferred;

// Whether a running job may be preempted at all (its lane still checks
// cancellation, timeouts and dependencies): a BACKGROUND execution of a
// preemptible model, every member BACKGROUND for a batch, never preempted
// before.
bool IsPreemptible(const Job& job) {
  if (job.preemptions > 0 || !job.request.model->signature().preemptible) return false;
  if (job.batch != nullptr) {
    for (const Job* m : job.batch->members) {
      if (m->priority != Priority::kBackground) return false;
    }
    return true;
  }
  return job.priority == Priority::kBackground;
}

// True when `job`'s task (or one of its batch members' tasks) is a
// dependency of `task`.
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

}  // namespace

// One device: its run queue, its running slots (one stream each) and the
// counters placement reads without the lock.
struct Scheduler::Lane {
  Lane(Scheduler* owner, int position, Device* device, int slots, const AgingOptions& aging,
       bool can_preempt)
      : owner(owner),
        position(position),
        device(device),
        can_preempt(can_preempt),
        queue(aging),
        spare_slot(slots) {
    for (int s = slots - 1; s >= 0; --s) free_slots.push_back(s);
  }

  // Marks `job` as running in `slot`, counting it when it may be preempted.
  void StartRunningLocked(Job* job, int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    job->slot = slot;
    job->where.store(Job::Where::kRunning);
    LinkRunning(job);
    running.fetch_add(1, std::memory_order_relaxed);
    if (can_preempt && IsPreemptible(*job)) {
      job->preemptible_counted = true;
      preemptible.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void UncountPreemptibleLocked(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!job->preemptible_counted) return;
    job->preemptible_counted = false;
    preemptible.fetch_sub(1, std::memory_order_relaxed);
  }
  // Returns `job`'s slot: to the spare while it is lent (the device ran one
  // execution over its limit), else to the free slots.
  void ReturnSlotLocked(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (spare_out) {
      spare_slot = job->slot;
      spare_out = false;
      borrowed.store(0, std::memory_order_relaxed);
    } else {
      free_slots.push_back(job->slot);
    }
    job->slot = -1;
  }
  // The queued CRITICAL job that may take a running job's slot now, or
  // null: preemption possible here, the spare not lent, no slot free.
  Job* PreemptorLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!can_preempt || spare_out || !free_slots.empty() ||
        preemptible.load(std::memory_order_relaxed) == 0) {
      return nullptr;
    }
    auto* job = static_cast<Job*>(queue.Front(Priority::kCritical));
    if (job == nullptr || job->deadline <= now) return nullptr;
    return job;
  }
  // The running job `preemptor` may take the slot of (the most recently
  // started candidate), or null. Never a job already preempted, cancelled
  // or timed out, nor one producing an input of `preemptor`'s task.
  Job* VictimLocked(const Job& preemptor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (Job* j = running_head; j != nullptr; j = static_cast<Job*>(j->next)) {
      if (!j->preemptible_counted || j->preempted.load() || j->cancelled.load() ||
          j->timed_out.load() || FeedsTask(*j, preemptor.task.get())) {
        continue;
      }
      return j;
    }
    return nullptr;
  }
  // Hands `victim`'s place to `job` (taken out of the queue): `job` runs
  // in the spare slot until the next execution here ends.
  void PreemptLocked(Job* job, Job* victim) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
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

  // Placement may use the device: active (the scaler's set) and healthy.
  bool Eligible() const {
    return active.load(std::memory_order_relaxed) && healthy.load(std::memory_order_relaxed);
  }
  // One of its max_tasks_per_device slots is free (the spare not counted).
  bool OwnSlotFree(int max_tasks) const {
    return running.load(std::memory_order_relaxed) - borrowed.load(std::memory_order_relaxed) <
           max_tasks;
  }

  void LinkRunning(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    job->prev = nullptr;
    job->next = running_head;
    if (running_head != nullptr) running_head->prev = job;
    running_head = job;
  }
  void UnlinkRunning(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (job->prev != nullptr) {
      job->prev->next = job->next;
    } else {
      running_head = static_cast<Job*>(job->next);
    }
    if (job->next != nullptr) job->next->prev = job->prev;
    job->prev = job->next = nullptr;
  }
  // Queue operations keep the lock-free counters placement reads in step.
  void PushLocked(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    queue.Push(job);
    Counted(job, 1);
  }
  Job* PopLocked(absl::Time now, bool (*eligible)(const QueueNode*) = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto* job = static_cast<Job*>(queue.PopIf(now, eligible));
    if (job != nullptr) Counted(job, -1);
    return job;
  }
  void RemoveLocked(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    queue.Remove(job);
    Counted(job, -1);
  }
  // Unlinks every queued job `pred` accepts (null: all), marks it kNew and
  // appends it to *out.
  void RemoveIfLocked(bool (*pred)(const QueueNode*, absl::Time), absl::Time now,
                      std::vector<Job*>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    queue.RemoveIf([&](const QueueNode* n) { return pred == nullptr || pred(n, now); },
                   [&](QueueNode* n) {
                     auto* job = static_cast<Job*>(n);
                     Counted(job, -1);
                     job->where.store(Job::Where::kNew);
                     out->push_back(job);
                   });
  }
  void Counted(const Job* job, int delta) {
    queued.fetch_add(delta, std::memory_order_relaxed);
    queued_by_priority[static_cast<int>(job->priority)].fetch_add(delta, std::memory_order_relaxed);
  }
  // Queued work that runs before a new `priority` entry (same or more urgent).
  int QueuedAhead(Priority priority) const {
    int n = 0;
    for (int p = 0; p <= static_cast<int>(priority); ++p) {
      n += queued_by_priority[p].load(std::memory_order_relaxed);
    }
    return n;
  }

  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return running_head == nullptr && !probing && completing == 0;
  }

  // Constant after construction.
  Scheduler* const owner;
  const int position;
  Device* const device;
  // enable_task_preemption and a stream beyond the slots' for the spare.
  const bool can_preempt;

  absl::Mutex mu;
  AgingPriorityQueue queue ABSL_GUARDED_BY(mu);
  std::vector<int> free_slots ABSL_GUARDED_BY(mu);
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
};

struct Scheduler::ModelBatcher {
  std::shared_ptr<const Model> model;       // keeps the key pointer unique
  std::unique_ptr<DynamicBatcher> batcher;  // null: batching off for it
};

// ---------------------------------------------------------------------------
// Job: the responder ExecuteOnDevice reports to.

void* Job::AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc) {
  if (batch != nullptr) {
    BatchData& b = *batch;
    if (static_cast<size_t>(index) >= b.outputs.size()) return nullptr;
    b.outputs[index].resize(desc.byte_size);
    b.output_descs[index] = desc;
    b.output_present[index] = true;
    return b.outputs[index].data();
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
  if (options.max_tasks_per_device < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("device.multi_gpu.performance_optimization.max_tasks_per_device: ",
                     options.max_tasks_per_device, " is out of range [1, 4096]"));
  }
  if (options.default_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "device.multi_gpu.performance_optimization.task_timeout: must be > 0");
  }
  if (options.max_queue_depth < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scheduler.max_queue_depth: ", options.max_queue_depth, " is out of range [1, inf)"));
  }
  if (options.unhealthy_threshold < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("scheduler.unhealthy_threshold: ", options.unhealthy_threshold,
                     " is out of range [1, inf)"));
  }
  if (options.default_max_retries < 0 || options.default_max_retries > kMaxRetriesLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("scheduler.default_max_retries: ", options.default_max_retries,
                     " is out of range [0, ", kMaxRetriesLimit, "]"));
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

namespace {
std::vector<int> DeviceIndexes(const std::vector<Device*>& devices) {
  std::vector<int> out;
  for (Device* d : devices) out.push_back(d->index());
  return out;
}
}  // namespace

Scheduler::Scheduler(SchedulerOptions options, std::vector<Device*> devices,
                     DeviceAllocator* allocator, const ModelRegistry* models, TensorAccess* tensors,
                     Clock* clock, prometheus::Registry& registry)
    : options_(std::move(options)),
      allocator_(allocator),
      models_(models),
      tensors_(tensors),
      clock_(clock),
      metrics_(registry, DeviceIndexes(devices)),
      tasks_(options_.max_retained_tasks),
      watchers_(static_cast<size_t>(options_.limits.max_watch_streams)) {
  const AgingOptions aging{options_.aging_interval, options_.enable_preemption};
  for (size_t i = 0; i < devices.size(); ++i) {
    // The spare slot needs a stream of its own, past the slots' streams.
    const bool spare_stream =
        options_.first_stream + options_.max_tasks_per_device < devices[i]->num_streams();
    if (options_.enable_preemption && !spare_stream) {
      INFERD_LOG(kWarning, "scheduler: device ", devices[i]->index(), " has ",
                 devices[i]->num_streams(), " streams, none past its ",
                 options_.max_tasks_per_device,
                 " slots'; running work is not preempted there (queued work still is)");
    }
    lanes_.push_back(std::make_unique<Lane>(this, static_cast<int>(i), devices[i],
                                            options_.max_tasks_per_device, aging,
                                            options_.enable_preemption && spare_stream));
  }
  RefreshDevices();
  {
    absl::MutexLock lock(&sample_mu_);
    last_sample_ = clock_->Now();
  }
  if (options_.start_timer_thread) thread_ = std::thread([this] { TimerLoop(); });
}

Scheduler::~Scheduler() { Shutdown(); }

SchedulerMetrics::Model* Scheduler::SeriesOf(Job* job) {
  if (job->series == nullptr) job->series = metrics_.ForModel(job->request.model->signature().name);
  return job->series;
}

int Scheduler::PositionOf(int device_index) const {
  const int n = static_cast<int>(lanes_.size());
  if (device_index >= 0 && device_index < n &&
      lanes_[device_index]->device->index() == device_index) {
    return device_index;
  }
  for (int i = 0; i < n; ++i) {
    if (lanes_[i]->device->index() == device_index) return i;
  }
  return -1;
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
  Enqueue(job, now);
}

absl::Status Scheduler::Admit(Job* job) {
  const int p = static_cast<int>(job->priority);
  const int64_t n = admitted_[p].fetch_add(1, std::memory_order_relaxed) + 1;
  if (n > options_.max_queue_depth) {
    admitted_[p].fetch_sub(1, std::memory_order_relaxed);
    rejected_.fetch_add(1, std::memory_order_relaxed);
    metrics_.rejected(job->priority).Increment();
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

Scheduler::ModelBatcher* Scheduler::BatcherFor(const std::shared_ptr<const Model>& model) {
  {
    absl::ReaderMutexLock lock(&batchers_mu_);
    auto it = batchers_.find(model.get());
    if (it != batchers_.end()) return it->second.get();
  }
  const ModelSignature& sig = model->signature();
  ModelBatcher* made = nullptr;
  {
    absl::MutexLock lock(&batchers_mu_);
    auto& slot = batchers_[model.get()];
    if (slot != nullptr) return slot.get();
    slot = std::make_unique<ModelBatcher>();
    slot->model = model;
    if (std::optional<BatchingPolicy> p = BatchingFor(sig); p.has_value()) {
      slot->batcher = std::make_unique<DynamicBatcher>(*p, sig.max_batch_size);
    }
    made = slot.get();
  }
  // Asked outside the lock: the memory engine may reclaim expired tensors.
  // Requests that raced ahead of the cap merely ran a larger batch once.
  if (made->batcher != nullptr && options_.optimal_batch_size) {
    made->batcher->SetRowLimit(BatchRowLimit(sig));
  }
  return made;
}

std::optional<BatchingPolicy> Scheduler::BatchingFor(const ModelSignature& sig) const {
  if (sig.max_batch_size <= 0 || sig.decoupled) return std::nullopt;
  std::optional<BatchingPolicy> policy;
  if (options_.batching_lookup) policy = options_.batching_lookup(sig);
  if (!policy.has_value()) policy = options_.default_batching;
  if (!policy->enabled) return std::nullopt;
  return policy;
}

int64_t Scheduler::BatchRowLimit(const ModelSignature& sig) const {
  int64_t limit = 0;
  for (const auto& lane : lanes_) {
    if (!lane->Eligible()) continue;
    absl::StatusOr<int64_t> rows = options_.optimal_batch_size(sig, lane->device->index());
    int64_t n = 0;
    if (rows.ok()) {
      n = *rows;
    } else if (rows.status().code() == absl::StatusCode::kResourceExhausted) {
      n = 1;
    }
    if (n <= 0) continue;
    n = std::max<int64_t>(1, n / options_.max_tasks_per_device);
    limit = limit == 0 ? n : std::min(limit, n);
  }
  return limit;
}

std::vector<Scheduler::ModelBatcher*> Scheduler::ActiveBatchers() const {
  std::vector<ModelBatcher*> out;
  absl::ReaderMutexLock lock(&batchers_mu_);
  for (const auto& [key, mb] : batchers_) {
    if (mb->batcher != nullptr) out.push_back(mb.get());
  }
  return out;
}

void Scheduler::RefreshBatchLimits() {
  for (ModelBatcher* mb : ActiveBatchers()) {
    mb->batcher->SetRowLimit(BatchRowLimit(mb->model->signature()));
  }
}

bool Scheduler::AnySlotFree() const {
  bool eligible = false;
  for (const auto& lane : lanes_) {
    if (!lane->Eligible()) continue;
    eligible = true;
    if (lane->running.load(std::memory_order_relaxed) +
            lane->queued.load(std::memory_order_relaxed) <
        options_.max_tasks_per_device) {
      return true;
    }
  }
  // With no eligible device, emit: placement fails the batch at once
  // rather than leaving it parked with no slot ever freeing.
  return !eligible;
}

bool Scheduler::SlotFreeElsewhere(const Lane& lane) const {
  for (const auto& l : lanes_) {
    if (l.get() != &lane && l->Eligible() && l->OwnSlotFree(options_.max_tasks_per_device)) {
      return true;
    }
  }
  return false;
}

int Scheduler::PreemptionTarget(const Job& job) const {
  int best = -1;
  int best_critical = 0;
  for (const auto& l : lanes_) {
    if (!l->Eligible() || (job.failed_mask >> l->position & 1)) continue;
    if (l->OwnSlotFree(options_.max_tasks_per_device)) return -1;  // ordinary placement
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

void Scheduler::FlushOnDelay(DynamicBatcher* batcher, uint64_t generation) {
  if (AnySlotFree()) {
    std::vector<Job*> jobs = batcher->FlushExpired(generation);
    if (!jobs.empty()) EmitBatch(std::move(jobs), clock_->Now());
    return;
  }
  // Every slot is busy: queueing this batch now would only put it behind
  // running work; parked, it keeps filling until a slot frees. A slot
  // frees through OnExecuted, which stores `running` and then reads
  // maybe_parked_; this stores maybe_parked_ and then reads `running`.
  // With a fence on each side one of them sees the other, so a batch is
  // never left parked next to a free slot.
  if (!batcher->Park(generation)) return;
  maybe_parked_.store(true);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!AnySlotFree()) return;
  std::vector<Job*> jobs = batcher->TakeParked();
  if (!jobs.empty()) EmitBatch(std::move(jobs), clock_->Now());
}

void Scheduler::FlushParked() {
  const absl::Time now = clock_->Now();
  for (ModelBatcher* mb : ActiveBatchers()) {
    std::vector<Job*> jobs = mb->batcher->TakeParked();
    if (!jobs.empty()) EmitBatch(std::move(jobs), now);
  }
}

void Scheduler::Enqueue(Job* job, absl::Time now) {
  if (job->rows > 0 && job->device_constraint < 0) {
    ModelBatcher* mb = BatcherFor(job->request.model);
    if (mb->batcher != nullptr) {
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
          SetStateLocked(rec, TaskState::kQueued, now);
          job->where.store(Job::Where::kBatcher);
          added = mb->batcher->Add(job, now);
        }
      } else {
        job->where.store(Job::Where::kBatcher);
        added = mb->batcher->Add(job, now);
      }
      if (terminal) {
        job->cancelled.store(true);
        FinishJob(job, absl::CancelledError("task cancelled"));
        return;
      }
      if (added.arm_timer) {
        DynamicBatcher* batcher = mb->batcher.get();
        const uint64_t generation = added.generation;
        ScheduleTimer(added.flush_at,
                      [this, batcher, generation] { FlushOnDelay(batcher, generation); });
      }
      for (auto& ready : added.ready) EmitBatch(std::move(ready), now);
      return;
    }
  }
  PlaceAndPush(job, now);
}

void Scheduler::EmitBatch(std::vector<Job*> jobs, absl::Time now) {
  SeriesOf(jobs[0])->batch_size->Observe(static_cast<double>(jobs.size()));
  if (jobs.size() == 1) {
    jobs[0]->where.store(Job::Where::kNew);
    PlaceAndPush(jobs[0], now);
    return;
  }
  absl::InlinedVector<const InferRequest*, 16> requests;
  for (Job* j : jobs) requests.push_back(&j->request);
  auto merged_batch = std::make_unique<BatchData>();
  absl::StatusOr<InferRequest> merged = MergeRequests(requests, &merged_batch->staging);
  if (!merged.ok()) {
    INFERD_LOG(kWarning, "batch of ", jobs.size(), " not merged: ", merged.status().ToString());
    for (Job* j : jobs) {
      j->where.store(Job::Where::kNew);
      PlaceAndPush(j, now);
    }
    return;
  }
  auto* batch = new Job;
  batch->scheduler = this;
  batch->request = *std::move(merged);
  batch->priority = jobs[0]->priority;
  batch->submit_time = jobs[0]->submit_time;
  batch->queued_time = jobs[0]->queued_time;
  batch->deadline = jobs[0]->deadline;
  batch->max_retries = jobs[0]->max_retries;
  const size_t num_outputs = batch->request.model->signature().outputs.size();
  merged_batch->outputs.resize(num_outputs);
  merged_batch->output_descs.resize(num_outputs);
  merged_batch->output_present.assign(num_outputs, false);
  for (Job* j : jobs) {
    batch->priority = std::min(batch->priority, j->priority);
    batch->submit_time = std::min(batch->submit_time, j->submit_time);
    batch->queued_time = std::min(batch->queued_time, j->queued_time);
    batch->deadline = std::min(batch->deadline, j->deadline);
    batch->max_retries = std::min(batch->max_retries, j->max_retries);
    batch->memory_requirement += j->memory_requirement;
    merged_batch->rows.push_back(j->rows);
    merged_batch->total_rows += j->rows;
    j->parent = batch;
    j->where.store(Job::Where::kInBatch);
  }
  merged_batch->members = std::move(jobs);
  batch->batch = std::move(merged_batch);
  batches_.fetch_add(1, std::memory_order_relaxed);
  batched_requests_.fetch_add(batch->batch->members.size(), std::memory_order_relaxed);
  PlaceAndPush(batch, now);
}

void Scheduler::PlaceAndPush(Job* job, absl::Time now) {
  auto fail = [&](absl::Status st) {
    if (job->batch != nullptr) {
      FinishBatch(job, std::move(st));
    } else {
      FinishJob(job, std::move(st));
    }
  };
  if (shutting_down_.load(std::memory_order_acquire)) {
    fail(absl::UnavailableError("scheduler: shutting down"));
    return;
  }
  // A retried or preempted job leaves its old device's reservation.
  if (job->reserved_memory) {
    lanes_[job->lane.load()]->reserved.fetch_sub(job->memory_requirement,
                                                 std::memory_order_relaxed);
    job->reserved_memory = false;
  }
  const bool may_preempt = options_.enable_preemption && job->priority == Priority::kCritical &&
                           job->device_constraint < 0;
  PlacementRequest request;
  request.memory_requirement_bytes = job->memory_requirement;
  request.device = job->device_constraint;
  request.excluded_mask = job->failed_mask;
  request.preferred = job->preferred_device;
  const int n = static_cast<int>(lanes_.size());
  for (int tries = 0; tries <= n; ++tries) {
    int chosen = may_preempt ? PreemptionTarget(*job) : -1;
    absl::InlinedVector<DeviceLoad, 8> loads(chosen < 0 ? n : 0);
    for (int i = 0; i < n && chosen < 0; ++i) {
      const Lane& l = *lanes_[i];
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
    Lane& lane = *lanes_[chosen];
    bool pushed = false;
    bool cancelled = false;
    auto push = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane.mu) {
      job->lane.store(lane.position, std::memory_order_relaxed);
      job->where.store(Job::Where::kQueued);
      job->enqueue_time = job->queued_time;
      lane.PushLocked(job);
      if (job->memory_requirement > 0) {
        lane.reserved.fetch_add(job->memory_requirement, std::memory_order_relaxed);
        job->reserved_memory = true;
      }
      pushed = true;
    };
    if (job->task != nullptr) {
      TaskRecord& rec = *job->task;
      absl::MutexLock record_lock(&rec.mu);
      if (IsTerminal(rec.state)) {
        cancelled = true;
      } else {
        absl::MutexLock lock(&lane.mu);
        if (lane.active.load() && lane.healthy.load()) {
          if (rec.queued_time == absl::InfinitePast()) rec.queued_time = now;
          rec.device = lane.device->index();
          SetStateLocked(rec, TaskState::kQueued, now);
          push();
        }
      }
    } else {
      absl::MutexLock lock(&lane.mu);
      if (lane.active.load() && lane.healthy.load()) push();
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

void Scheduler::Dispatch(Lane& lane) {
  if (tls_dispatching) {
    if (std::find(tls_deferred.begin(), tls_deferred.end(), &lane) == tls_deferred.end()) {
      tls_deferred.push_back(&lane);
    }
    return;
  }
  tls_dispatching = true;
  DispatchLoop(lane);
  while (!tls_deferred.empty()) {
    auto* next = static_cast<Lane*>(tls_deferred.back());
    tls_deferred.pop_back();
    next->owner->DispatchLoop(*next);
  }
  tls_dispatching = false;
}

void Scheduler::DispatchLoop(Lane& lane) {
  while (true) {
    absl::Time now;  // read only when there is something to start
    Job* job = nullptr;
    bool try_steal = false;
    bool preempted = false;
    auto take_slot = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane.mu) {
      const int slot = lane.free_slots.back();
      lane.free_slots.pop_back();
      lane.StartRunningLocked(job, slot);
    };
    {
      absl::MutexLock lock(&lane.mu);
      if (lane.free_slots.empty()) {
        // No slot: a queued CRITICAL job may take a running BACKGROUND
        // job's (docs/SCHEDULER.md, Preemption), unless another device
        // it may run on has a free slot.
        if (lane.preemptible.load(std::memory_order_relaxed) == 0) return;
        now = clock_->Now();
        job = lane.PreemptorLocked(now);
        if (job == nullptr || (job->device_constraint < 0 && SlotFreeElsewhere(lane))) return;
        Job* victim = lane.VictimLocked(*job);
        if (victim == nullptr) return;
        lane.PreemptLocked(job, victim);
        preempted = true;
      } else {
        if (!lane.queue.empty()) {
          now = clock_->Now();
          job = lane.PopLocked(now);
        }
        if (job != nullptr) {
          take_slot();
        } else {
          try_steal = options_.enable_migration && lane.active.load() && lane.healthy.load();
        }
      }
    }
    if (preempted) {
      preemptions_.fetch_add(1, std::memory_order_relaxed);
      metrics_.preemptions().Increment();
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
      take_slot();
    }
    StartJob(lane, job, now);
  }
}

Job* Scheduler::Steal(Lane& thief, absl::Time now) {
  Lane* victim = nullptr;
  int most = 0;
  for (auto& l : lanes_) {
    if (l.get() == &thief) continue;
    const int q = l->queued.load(std::memory_order_relaxed);
    if (q > most) {
      most = q;
      victim = l.get();
    }
  }
  if (victim == nullptr) return nullptr;
  Job* job = nullptr;
  {
    absl::MutexLock lock(&victim->mu);
    job = victim->PopLocked(
        now, [](const QueueNode* n) { return static_cast<const Job*>(n)->device_constraint < 0; });
    if (job == nullptr) return nullptr;
    job->where.store(Job::Where::kNew);
    if (job->reserved_memory) {
      victim->reserved.fetch_sub(job->memory_requirement, std::memory_order_relaxed);
      job->reserved_memory = false;
    }
  }
  job->lane.store(thief.position, std::memory_order_relaxed);
  if (job->memory_requirement > 0) {
    thief.reserved.fetch_add(job->memory_requirement, std::memory_order_relaxed);
    job->reserved_memory = true;
  }
  return job;
}

bool Scheduler::BeginMember(Lane& lane, Job* job, absl::Time now) {
  if (job->attempts == 0) {
    const absl::Duration waited = now - job->queued_time;
    SeriesOf(job)->queue_duration[static_cast<int>(job->priority)]->Observe(Seconds(waited));
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
  SetStateLocked(rec, TaskState::kRunning, now);
  return true;
}

void Scheduler::StartJob(Lane& lane, Job* job, absl::Time now) {
  if (job->batch != nullptr) {
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
  Stream& stream =
      lane.device->stream((options_.first_stream + job->slot) % lane.device->num_streams());
  // May complete (and delete the job) before it returns.
  ExecuteOnDevice(job->request, stream, *allocator_, job);
}

void Scheduler::OnExecuted(Job* job, absl::Status status) {
  Lane& lane = *lanes_[job->lane.load(std::memory_order_relaxed)];
  const absl::Time now = clock_->Now();
  bool slot_freed = false;
  bool preempted = false;
  {
    absl::MutexLock lock(&lane.mu);
    lane.UnlinkRunning(job);
    lane.UncountPreemptibleLocked(job);
    slot_freed = !lane.spare_out;
    lane.ReturnSlotLocked(job);
    lane.running.fetch_sub(1, std::memory_order_relaxed);
    preempted = job->preempted.exchange(false);
    ++lane.completing;  // Shutdown waits for this call to return
  }
  // A slot is free: a parked batch (see FlushOnDelay) goes first, before
  // this job's results are split and delivered, so the device is not idle
  // meanwhile. (A slot given back to the spare frees none.)
  if (slot_freed) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (maybe_parked_.load(std::memory_order_relaxed) && maybe_parked_.exchange(false)) {
      FlushParked();
    }
  }
  const bool executed = job->start_time != absl::InfinitePast();
  if (executed) {
    lane.completed.fetch_add(1, std::memory_order_relaxed);
    const absl::Duration took = now - job->start_time;
    exec_ns_.fetch_add(absl::ToInt64Nanoseconds(took), std::memory_order_relaxed);
    exec_count_.fetch_add(1, std::memory_order_relaxed);
    auto observe = [&](Job* j) {
      SeriesOf(j)->execution_duration[static_cast<int>(j->priority)]->Observe(Seconds(took));
    };
    if (job->batch != nullptr) {
      for (Job* m : job->batch->members) observe(m);
    } else {
      observe(job);
    }
    NoteDeviceResult(lane, status);
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
  // Preemptions start executions that are no retries.
  const int attempts = job->attempts - job->preemptions;
  const absl::Duration backoff =
      std::min(options_.retry_backoff * (int64_t{1} << std::clamp(attempts - 1, 0, 20)),
               options_.max_retry_backoff);
  if (preempted && executed && !shutting_down_.load() && !job->cancelled.load() &&
      !job->timed_out.load() && now < job->deadline) {
    // The result is dropped whatever it was; the work runs again.
    RequeuePreempted(job, now);
  } else if (executed && IsRetryable(status) && !shutting_down_.load() &&
             !job->cancelled.load() && !job->timed_out.load() && attempts <= job->max_retries &&
             now + backoff < job->deadline) {
    job->failed_mask |= uint64_t{1} << lane.position;
    retries_.fetch_add(1, std::memory_order_relaxed);
    metrics_.retries().Increment();
    INFERD_LOG(kDebug, "retrying after ", status.ToString(), " on device ", lane.device->index(),
               " (attempt ", job->attempts, ")");
    job->where.store(Job::Where::kRetryWait);
    ScheduleTimer(now + backoff, [this, job] { PlaceAndPush(job, clock_->Now()); });
  } else if (job->batch != nullptr) {
    FinishBatch(job, std::move(status));
  } else {
    FinishJob(job, std::move(status));
  }
  Dispatch(lane);
  absl::MutexLock lock(&lane.mu);
  --lane.completing;
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
      SetStateLocked(rec, TaskState::kQueued, now);
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
    for (size_t o = 0; o < b.outputs.size(); ++o) {
      std::string().swap(b.outputs[o]);
      b.output_present[o] = false;
    }
  } else {
    reset(job);
  }
  INFERD_LOG(kDebug, "requeueing a preempted execution (attempt ", job->attempts, ")");
  job->where.store(Job::Where::kNew);
  PlaceAndPush(job, now);
}

void Scheduler::FinishBatch(Job* batch, absl::Status status) {
  BatchData& b = *batch->batch;
  const ModelSignature& sig = batch->request.model->signature();
  const bool timed_out = batch->timed_out.load();
  int64_t row_offset = 0;
  for (size_t i = 0; i < b.members.size(); ++i) {
    Job* m = b.members[i];
    absl::Status st = status;
    if (st.ok() && timed_out) {
      st = absl::DeadlineExceededError("timeout: the deadline passed while running");
    }
    for (size_t o = 0; o < b.outputs.size() && st.ok(); ++o) {
      if (!b.output_present[o]) continue;
      absl::StatusOr<TensorDesc> slice = SliceDesc(b.output_descs[o], b.total_rows, b.rows[i]);
      if (!slice.ok()) {
        st = slice.status();
        break;
      }
      void* dst = m->AllocateOutput(static_cast<int>(o), sig.outputs[o], *slice);
      if (dst != nullptr && slice->byte_size > 0) {
        const uint64_t row_bytes =
            b.output_descs[o].byte_size / static_cast<uint64_t>(b.total_rows);
        std::memcpy(dst, b.outputs[o].data() + row_bytes * static_cast<uint64_t>(row_offset),
                    slice->byte_size);
      }
    }
    row_offset += b.rows[i];
    m->parent = nullptr;
    if (batch->start_time != absl::InfinitePast() && m->start_time == absl::InfinitePast()) {
      m->start_time = batch->start_time;
    }
    m->timing = batch->timing;
    FinishJob(m, std::move(st));
  }
  if (batch->reserved_memory) {
    lanes_[batch->lane.load()]->reserved.fetch_sub(batch->memory_requirement);
  }
  delete batch;
}

void Scheduler::FinishJob(Job* job, absl::Status status) {
  Unadmit(job);
  if (job->reserved_memory) {
    lanes_[job->lane.load()]->reserved.fetch_sub(job->memory_requirement,
                                                 std::memory_order_relaxed);
    job->reserved_memory = false;
  }
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
  SeriesOf(job)->completed[static_cast<int>(job->priority)][static_cast<int>(outcome)]->Increment();
  job->where.store(Job::Where::kDone);
  if (job->task != nullptr) {
    std::shared_ptr<TaskRecord> record = std::move(job->task);
    delete job;
    FinishTask(record.get(), std::move(status));
    return;
  }
  InferResponder* sink = job->sink;
  delete job;
  sink->Complete(std::move(status));
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

void Scheduler::NoteDeviceResult(Lane& lane, const absl::Status& status) {
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

void Scheduler::MoveQueuedOff(Lane& lane, absl::string_view why) {
  std::vector<Job*> moved;
  {
    absl::MutexLock lock(&lane.mu);
    lane.RemoveIfLocked(nullptr, absl::InfinitePast(), &moved);
  }
  const absl::Time now = clock_->Now();
  for (Job* job : moved) {
    if (job->reserved_memory) {
      lane.reserved.fetch_sub(job->memory_requirement, std::memory_order_relaxed);
      job->reserved_memory = false;
    }
    if (job->device_constraint == lane.device->index()) {
      absl::Status st = absl::UnavailableError(absl::StrCat(
          "device: device ", lane.device->index(), " was ", why, " while the work was queued"));
      if (job->batch != nullptr) {
        FinishBatch(job, std::move(st));
      } else {
        FinishJob(job, std::move(st));
      }
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
  const int pos = PositionOf(device);
  if (pos < 0) return absl::NotFoundError(absl::StrCat("device: no device ", device));
  Lane& lane = *lanes_[pos];
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
  const int pos = PositionOf(device);
  if (pos < 0) return absl::NotFoundError(absl::StrCat("device: no device ", device));
  SetHealthy(*lanes_[pos], healthy, healthy ? "marked healthy" : "marked unhealthy");
  return absl::OkStatus();
}

void Scheduler::SetHealthy(Lane& lane, bool healthy, const std::string& reason) {
  if (lane.healthy.exchange(healthy) == healthy) return;
  metrics_.device_healthy(lane.position).Set(healthy ? 1 : 0);
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
  Lane& lane = *lanes_[position];
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
    RefreshDevices();
    Sample(now);
  }
  if (batch_limits) RefreshBatchLimits();
}

void Scheduler::Sweep(absl::Time now) {
  for (auto& lane_ptr : lanes_) {
    Lane& lane = *lane_ptr;
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
      absl::Status st = absl::DeadlineExceededError("timeout: the deadline passed while queued");
      if (job->batch != nullptr) {
        FinishBatch(job, std::move(st));
      } else {
        FinishJob(job, std::move(st));
      }
    }
    for (auto& rec : running_expired) {
      bool terminal = false;
      {
        absl::MutexLock lock(&rec->mu);
        terminal = SetTerminalLocked(
            *rec, absl::DeadlineExceededError("timeout: the deadline passed while running"), now);
      }
      if (terminal) AfterTerminal(rec);
    }
  }
}

void Scheduler::Sample(absl::Time now) {
  // Gauges are set here rather than per request (shared atomics on the hot
  // path); Prometheus scrapes no faster anyway.
  for (int p = 0; p < kNumPriorities; ++p) {
    metrics_.queue_length(static_cast<Priority>(p)).Set(static_cast<double>(admitted_[p].load()));
  }
  for (const auto& lane : lanes_) {
    metrics_.running(lane->position).Set(lane->running.load(std::memory_order_relaxed));
  }
  SchedulerLoadSample sample;
  for (const auto& a : admitted_) sample.queue_length += static_cast<double>(a.load());
  uint64_t completed = 0;
  for (const auto& c : completed_) completed += c.load();
  const int64_t exec_ns = exec_ns_.load();
  const uint64_t exec_count = exec_count_.load();
  {
    absl::MutexLock lock(&sample_mu_);
    const double elapsed = Seconds(now - last_sample_);
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

void Scheduler::RefreshDevices() {
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
  watchers_.CloseAll();
  {
    absl::MutexLock lock(&thread_mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();

  std::vector<Job*> pending;
  {
    absl::MutexLock lock(&batchers_mu_);
    for (auto& [model, mb] : batchers_) {
      if (mb->batcher == nullptr) continue;
      std::vector<Job*> jobs = mb->batcher->TakeAll();
      pending.insert(pending.end(), jobs.begin(), jobs.end());
    }
  }
  const absl::Status down = absl::UnavailableError("scheduler: shutting down");
  for (Job* job : pending) FinishJob(job, down);
  for (auto& lane : lanes_) {
    std::vector<Job*> queued;
    {
      absl::MutexLock lock(&lane->mu);
      lane->RemoveIfLocked(nullptr, absl::InfinitePast(), &queued);
    }
    for (Job* job : queued) {
      if (job->batch != nullptr) {
        FinishBatch(job, down);
      } else {
        FinishJob(job, down);
      }
    }
  }
  for (const auto& rec : tasks_.All()) {
    bool terminal = false;
    {
      absl::MutexLock lock(&rec->mu);
      if (rec->job == nullptr) terminal = SetTerminalLocked(*rec, down, clock_->Now());
    }
    if (terminal) AfterTerminal(rec);
  }
  for (auto& lane : lanes_) {
    absl::MutexLock lock(&lane->mu);
    lane->mu.Await(absl::Condition(lane.get(), &Lane::IdleLocked));
  }
  // Retry waits fail now (shutting down); WaitTask waits answer.
  timers_.RunDue(absl::InfiniteFuture());
  for (auto& lane : lanes_) {
    absl::MutexLock lock(&lane->mu);
    lane->mu.Await(absl::Condition(lane.get(), &Lane::IdleLocked));
  }
  timers_.RunDue(absl::InfiniteFuture());
}

bool Scheduler::TryUnqueue(Job* job) {
  switch (job->where.load()) {
    case Job::Where::kQueued: {
      const int pos = job->lane.load();
      if (pos < 0) return false;
      Lane& lane = *lanes_[pos];
      absl::MutexLock lock(&lane.mu);
      if (job->where.load() != Job::Where::kQueued || job->lane.load() != pos) return false;
      lane.RemoveLocked(job);
      job->where.store(Job::Where::kNew);
      return true;
    }
    case Job::Where::kBatcher: {
      ModelBatcher* mb = BatcherFor(job->request.model);
      if (mb->batcher != nullptr && mb->batcher->Remove(job)) {
        job->where.store(Job::Where::kNew);
        return true;
      }
      return false;
    }
    default:
      return false;
  }
}

Device* Scheduler::DeviceAt(int position) const { return lanes_[position]->device; }

// ---------------------------------------------------------------------------
// Stats.

SchedulerStats Scheduler::GetStats() const {
  SchedulerStats s;
  s.strategy = std::string(PlacementStrategyName(options_.strategy));
  for (int p = 0; p < kNumPriorities; ++p) {
    s.queued_by_priority[p] = admitted_[p].load();
    s.queued += s.queued_by_priority[p];
  }
  s.waiting_deps = waiting_deps_.load();
  s.submitted = submitted_.load();
  for (int o = 0; o < kNumOutcomes; ++o) s.completed[o] = completed_[o].load();
  s.rejected = rejected_.load();
  s.retries = retries_.load();
  s.preemptions = preemptions_.load();
  s.batches = batches_.load();
  s.batched_requests = batched_requests_.load();
  s.tasks_retained = tasks_.size();
  s.task_records = static_cast<uint64_t>(tasks_.live_records());
  const uint64_t qn = queue_count_.load();
  const uint64_t en = exec_count_.load();
  if (qn > 0) s.mean_queue_seconds = static_cast<double>(queue_ns_.load()) / 1e9 / qn;
  if (en > 0) s.mean_execution_seconds = static_cast<double>(exec_ns_.load()) / 1e9 / en;
  for (const auto& lane : lanes_) {
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
  {
    absl::ReaderMutexLock lock(&batchers_mu_);
    for (const auto& [model, mb] : batchers_) {
      if (mb->batcher != nullptr) s.pending_batch += static_cast<int64_t>(mb->batcher->pending());
    }
  }
  return s;
}

}  // namespace inferd
