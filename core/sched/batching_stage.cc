#include "core/sched/batching_stage.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/check.h"
#include "core/util/checked_math.h"
#include "core/util/logging.h"

namespace inferd {
namespace {

// Rule 6: requests of up to this many bytes are copied into their batch's
// arrival block as they join; larger ones are gathered when the batch
// runs (GatherBatchInputs, by several threads).
constexpr uint64_t kArrivalCopyMaxBytes = 64 << 10;
// An arrival block holds twice the batch's target rows, up to this size.
constexpr uint64_t kArrivalBlockMaxBytes = 8 << 20;

// The bytes of all of `request`'s inputs together.
uint64_t InputBytes(const InferRequest& request) {
  uint64_t bytes = 0;
  for (const InferInput& in : request.inputs) bytes += in.desc.byte_size;
  return bytes;
}

}  // namespace

int64_t BatchRows(const InferRequest& request) {
  if (request.model == nullptr || request.model->signature().max_batch_size <= 0) return -1;
  if (request.inputs.empty()) return -1;
  int64_t rows = -1;
  for (const InferInput& in : request.inputs) {
    if (in.device != nullptr || in.desc.dtype == DataType::kBytes || in.desc.shape.empty()) {
      return -1;
    }
    if (rows < 0) rows = in.desc.shape[0];
    if (in.desc.shape[0] != rows) return -1;
  }
  return rows > 0 && rows <= request.model->signature().max_batch_size ? rows : -1;
}

bool CanMerge(const InferRequest& a, const InferRequest& b) {
  if (a.model != b.model || a.inputs.size() != b.inputs.size()) return false;
  if (a.params.has_factor != b.params.has_factor ||
      (a.params.has_factor && a.params.factor != b.params.factor)) {
    return false;
  }
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const TensorDesc& x = a.inputs[i].desc;
    const TensorDesc& y = b.inputs[i].desc;
    if (x.dtype != y.dtype || x.shape.size() != y.shape.size()) return false;
    if (!std::equal(x.shape.begin() + 1, x.shape.end(), y.shape.begin() + 1)) return false;
  }
  return true;
}

absl::StatusOr<InferRequest> MergeRequests(absl::Span<const InferRequest* const> requests) {
  if (requests.empty()) return absl::InvalidArgumentError("batch: no requests");
  const InferRequest& first = *requests[0];
  int64_t total_rows = 0;
  for (const InferRequest* r : requests) {
    if (r != requests[0] && !CanMerge(first, *r)) {
      return absl::InvalidArgumentError("batch: requests differ in model, params or shape");
    }
    const int64_t rows = BatchRows(*r);
    if (rows <= 0) return absl::InvalidArgumentError("batch: request is not batchable");
    total_rows += rows;
  }
  InferRequest merged;
  merged.model = first.model;
  merged.params = first.params;
  merged.priority = first.priority;
  uint64_t total_bytes = 0;
  for (size_t i = 0; i < first.inputs.size(); ++i) {
    InferInput in = first.inputs[i];
    in.data = nullptr;
    in.desc.shape[0] = total_rows;
    in.desc.byte_size = 0;
    for (const InferRequest* r : requests) {
      if (!CheckedAdd(in.desc.byte_size, r->inputs[i].desc.byte_size, &in.desc.byte_size)) {
        return absl::InvalidArgumentError("batch: input bytes overflow");
      }
    }
    if (!CheckedAdd(total_bytes, in.desc.byte_size, &total_bytes)) {
      return absl::InvalidArgumentError("batch: input bytes overflow");
    }
    merged.inputs.push_back(std::move(in));
  }
  return merged;
}

void GatherInputs(absl::Span<const InferRequest* const> requests, uint8_t* dst, bool pinned,
                  InferRequest* merged, ParallelCopy* copier) {
  absl::InlinedVector<ParallelCopy::Piece, 32> pieces;
  for (size_t i = 0; i < merged->inputs.size(); ++i) {
    InferInput& in = merged->inputs[i];
    in.data = dst;
    in.pinned = pinned;
    for (const InferRequest* r : requests) {
      const InferInput& part = r->inputs[i];
      if (part.desc.byte_size > 0) {
        if (copier != nullptr) {
          pieces.push_back({dst, part.data, part.desc.byte_size});
        } else {
          std::memcpy(dst, part.data, part.desc.byte_size);
        }
      }
      dst += part.desc.byte_size;
    }
  }
  if (!pieces.empty()) copier->Gather(pieces);
}

void GatherBatchInputs(Job& batch, DeviceAllocator& allocator, Device& device,
                       ParallelCopy* copier) {
  BatchData& b = *batch.batch;
  b.allocator = &allocator;
  b.device = &device;
  if (b.gathered) return;
  b.gathered = true;
  const uint64_t bytes = std::max<uint64_t>(InputBytes(batch.request), 1);
  b.pinned_inputs = StagingBlock(allocator, device, bytes);
  uint8_t* dst = b.pinned_inputs.data();
  if (dst == nullptr) {
    b.heap_inputs.reset(new uint8_t[bytes]);
    dst = b.heap_inputs.get();
  }
  absl::InlinedVector<const InferRequest*, 16> requests;
  for (const Job* m : b.members) requests.push_back(&m->request);
  GatherInputs(requests, dst, !b.pinned_inputs.empty(), &batch.request, copier);
}

absl::StatusOr<TensorDesc> SliceDesc(const TensorDesc& batched, int64_t total_rows, int64_t rows) {
  if (batched.shape.empty() || batched.shape[0] != total_rows || total_rows <= 0 ||
      batched.dtype == DataType::kBytes || batched.byte_size % static_cast<uint64_t>(total_rows)) {
    return absl::InternalError(absl::StrCat(
        "batched output does not have dim 0 equal to the batch's ", total_rows, " rows"));
  }
  TensorDesc slice = batched;
  slice.shape[0] = rows;
  slice.byte_size =
      batched.byte_size / static_cast<uint64_t>(total_rows) * static_cast<uint64_t>(rows);
  return slice;
}

DynamicBatcher::DynamicBatcher(const BatchingPolicy& policy, int model_max_batch_size) {
  INFERD_CHECK(model_max_batch_size > 0);
  max_rows_ = policy.max_batch_size > 0 ? std::min(policy.max_batch_size, model_max_batch_size)
                                        : model_max_batch_size;
  for (int size : policy.preferred_batch_sizes) preferred_.push_back(std::clamp(size, 1, max_rows_));
  std::sort(preferred_.begin(), preferred_.end());
  preferred_.erase(std::unique(preferred_.begin(), preferred_.end()), preferred_.end());
  target_rows_ = preferred_.empty() ? max_rows_ : preferred_.back();
  max_delay_ = std::max(policy.max_queue_delay, absl::ZeroDuration());
  dispatch_when_idle_ = policy.dispatch_when_idle;
  estimate_ = ExecutionEstimate(preferred_);
}

DynamicBatcher::~DynamicBatcher() {
  absl::MutexLock lock(&mu_);
  INFERD_CHECK(count_ == 0);
}

int DynamicBatcher::MaxRowsLocked() const {
  return row_limit_ > 0 && row_limit_ < max_rows_ ? static_cast<int>(row_limit_) : max_rows_;
}

int DynamicBatcher::TargetRowsLocked() const { return std::min(target_rows_, MaxRowsLocked()); }

int DynamicBatcher::max_rows() const {
  absl::MutexLock lock(&mu_);
  return MaxRowsLocked();
}

int DynamicBatcher::target_rows() const {
  absl::MutexLock lock(&mu_);
  return TargetRowsLocked();
}

void DynamicBatcher::SetRowLimit(int64_t rows) {
  absl::MutexLock lock(&mu_);
  row_limit_ = std::max<int64_t>(rows, 0);
}

bool DynamicBatcher::UnderExecutionLimit() const {
  const int limit = execution_limit_.load(std::memory_order_relaxed);
  return limit <= 0 || unfinished_.load(std::memory_order_seq_cst) < limit;
}

size_t DynamicBatcher::pending() const {
  absl::MutexLock lock(&mu_);
  return count_;
}

std::vector<Job*> DynamicBatcher::TakeLocked() {
  return TakePrefixLocked(std::numeric_limits<int64_t>::max());
}

std::vector<Job*> DynamicBatcher::TakePrefixLocked(int64_t rows) {
  std::vector<Job*> out;
  out.reserve(count_);
  int64_t taken = 0;
  while (head_ != nullptr) {
    Job* job = static_cast<Job*>(head_);
    if (!out.empty() && taken + job->rows > rows) break;
    head_ = job->next;
    if (head_ != nullptr) head_->prev = nullptr;
    job->prev = job->next = nullptr;
    job->linked = false;
    out.push_back(job);
    taken += job->rows;
    --count_;
  }
  rows_ -= taken;
  HandOverArrivalLocked(out);
  if (head_ == nullptr) {
    tail_ = nullptr;
    parked_ = false;
    ++generation_;
    DropArrivalLocked();
  } else {
    parked_ = true;  // past its delay: runs at the next chance
  }
  return out;
}

size_t DynamicBatcher::ArrivalBlockBytes(const Job& job) const {
  if (!gather_on_arrival_ || !wants_arrival_.load(std::memory_order_relaxed) || job.rows <= 0) {
    return 0;
  }
  const uint64_t bytes = InputBytes(job.request);
  if (bytes == 0 || bytes > kArrivalCopyMaxBytes) return 0;
  const uint64_t row = bytes / static_cast<uint64_t>(job.rows);
  const uint64_t rows = std::min<uint64_t>(2 * static_cast<uint64_t>(target_rows_),
                                           kArrivalBlockMaxBytes / std::max<uint64_t>(row, 1));
  return rows < static_cast<uint64_t>(job.rows) || row == 0 ? 0 : rows * row;
}

void DynamicBatcher::GatherOnArrivalLocked(Job* job, StagingBlock* spare) {
  job->arrival_row = -1;
  if (!gather_on_arrival_) return;
  // Pending requests now: a block comes only with the next empty batch.
  wants_arrival_.store(false, std::memory_order_relaxed);
  const auto& inputs = job->request.inputs;
  const uint64_t rows = static_cast<uint64_t>(job->rows);
  if (arrival_ == nullptr) {
    // Only a batch's first request starts a block: the others before it
    // were not copied, so the batch is gathered when it runs.
    if (head_ != job || spare == nullptr || spare->empty()) return;
    auto block = std::make_shared<ArrivalBlock>();
    uint64_t row_total = 0;
    for (const InferInput& in : inputs) {
      if (in.desc.byte_size % rows != 0) return;
      block->row_bytes.push_back(in.desc.byte_size / rows);
      row_total += in.desc.byte_size / rows;
    }
    if (row_total == 0) return;
    block->capacity = static_cast<int64_t>(spare->size() / row_total);
    uint8_t* region = spare->data();
    for (uint64_t row_bytes : block->row_bytes) {
      block->region.push_back(region);
      region += row_bytes * static_cast<uint64_t>(block->capacity);
    }
    block->block = std::move(*spare);
    arrival_ = std::move(block);
    arrival_next_ = 0;
  }
  const ArrivalBlock& a = *arrival_;
  if (inputs.size() != a.row_bytes.size() || arrival_next_ + job->rows > a.capacity ||
      InputBytes(job->request) > kArrivalCopyMaxBytes) {
    return;
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].desc.byte_size != a.row_bytes[i] * rows) return;
  }
  const uint64_t at = static_cast<uint64_t>(arrival_next_);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].desc.byte_size == 0) continue;
    std::memcpy(a.region[i] + at * a.row_bytes[i], inputs[i].data, inputs[i].desc.byte_size);
  }
  job->arrival_row = arrival_next_;
  arrival_next_ += job->rows;
}

void DynamicBatcher::HandOverArrivalLocked(std::vector<Job*>& out) {
  if (arrival_ == nullptr || out.size() < 2 || out[0]->arrival_row < 0) return;
  int64_t next = out[0]->arrival_row;
  for (const Job* j : out) {
    if (j->arrival_row != next) return;
    next += j->rows;
  }
  out[0]->arrival = arrival_;
}

void DynamicBatcher::DropArrivalLocked() {
  arrival_.reset();
  arrival_next_ = 0;
  wants_arrival_.store(true, std::memory_order_relaxed);
}

std::vector<Job*> DynamicBatcher::TakeReadyLocked(absl::Time now) {
  if (head_ == nullptr) return {};
  if (preferred_.empty()) return TakeLocked();
  // Rule 5a: the largest preferred size the pending rows reach.
  const int max_rows = MaxRowsLocked();
  int64_t size = 0;
  for (int p : preferred_) {
    if (p <= rows_ && p <= max_rows) size = p;
  }
  if (size == 0) {
    // Rule 5b: below every preferred size; wait while the model is busy
    // (until its last unfinished job finishes, 5d: or is about to).
    const int64_t unfinished = unfinished_.load(std::memory_order_seq_cst);
    if (unfinished > 1 || (unfinished == 1 && now < ReleaseAtLocked())) {
      parked_ = true;
      return {};
    }
    return TakeLocked();
  }
  return size >= rows_ ? TakeLocked() : TakePrefixLocked(size);
}

void DynamicBatcher::SetInOrder(bool in_order, absl::Duration lead) {
  absl::MutexLock lock(&mu_);
  lead_ = lead;
  in_order_.store(in_order, std::memory_order_relaxed);
}

void DynamicBatcher::CountEmitted(int64_t rows, absl::Time now) {
  if (!in_order_.load(std::memory_order_relaxed)) {  // no lock: rule 5d only needs it
    unfinished_.fetch_add(1, std::memory_order_seq_cst);
    return;
  }
  absl::MutexLock lock(&mu_);
  unfinished_rows_ += rows;
  if (unfinished_.fetch_add(1, std::memory_order_seq_cst) != 0) {
    drain_at_ = absl::InfiniteFuture();  // 5d: only with one unfinished
    return;
  }
  // Into an idle model: it starts about now.
  const std::optional<absl::Duration> takes = estimate_.For(rows);
  drain_at_ = takes.has_value() ? now + *takes : absl::InfiniteFuture();
}

void DynamicBatcher::CountFinished(const FinishedExecution& finished, absl::Time now) {
  // Rule 5c: stored before the count falls (seq_cst), so an Add that sees
  // the model idle also sees the batch that just finished.
  if (finished.batch && !preferred_.empty() && finished.rows >= preferred_.front()) {
    preferred_finished_ns_.store(absl::ToUnixNanos(now), std::memory_order_relaxed);
  }
  if (!in_order_.load(std::memory_order_relaxed)) {
    unfinished_.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  absl::MutexLock lock(&mu_);
  if (finished.infer > absl::ZeroDuration()) estimate_.Learn(finished.rows, finished.infer);
  unfinished_rows_ = std::max<int64_t>(unfinished_rows_ - finished.rows, 0);
  drain_at_ = absl::InfiniteFuture();
  if (unfinished_.fetch_sub(1, std::memory_order_seq_cst) != 2) return;
  // 5d: one left, which the device starts now, after this one.
  if (std::optional<absl::Duration> takes = estimate_.For(unfinished_rows_); takes.has_value()) {
    drain_at_ = now + *takes;
  }
}

absl::Time DynamicBatcher::ReleaseAtLocked() const {
  if (unfinished_.load(std::memory_order_seq_cst) != 1 || drain_at_ == absl::InfiniteFuture()) {
    return absl::InfiniteFuture();
  }
  return drain_at_ - lead_;
}

absl::Time DynamicBatcher::ReleaseAt() const {
  if (!in_order_.load(std::memory_order_relaxed)) return absl::InfiniteFuture();
  absl::MutexLock lock(&mu_);
  return ReleaseAtLocked();
}

std::vector<Job*> DynamicBatcher::TakeReleased(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (head_ == nullptr || now < ReleaseAtLocked()) return {};
  return TakeReadyLocked(now);
}

bool DynamicBatcher::CallersReturning(absl::Time now) const {
  const int64_t ns = preferred_finished_ns_.load(std::memory_order_relaxed);
  return ns != 0 && now < absl::FromUnixNanos(ns) + max_delay_;
}

DynamicBatcher::AddResult DynamicBatcher::Add(Job* job, absl::Time now, bool slot_free,
                                              StagingBlock* spare) {
  AddResult result;
  absl::MutexLock lock(&mu_);
  // The model has nothing running that a request could join next (rule
  // 5b); always so without preferred sizes.
  const bool model_idle = preferred_.empty() || unfinished_.load(std::memory_order_seq_cst) == 0;
  if (head_ == nullptr && slot_free && dispatch_when_idle_ && model_idle &&
      (preferred_.empty() || !CallersReturning(now))) {
    // Rule 1: nothing to wait for, a slot to run on (rule 5c: and no
    // batch's callers on their way back).
    result.ready.push_back({job});
    return result;
  }
  const int max_rows = MaxRowsLocked();
  if (head_ != nullptr && (rows_ + job->rows > max_rows ||
                           !CanMerge(static_cast<Job*>(head_)->request, job->request))) {
    result.ready.push_back(TakeLocked());
  }
  const bool first = head_ == nullptr;
  job->prev = tail_;
  job->next = nullptr;
  job->linked = true;
  if (tail_ != nullptr) {
    tail_->next = job;
  } else {
    head_ = job;
  }
  tail_ = job;
  ++count_;
  rows_ += job->rows;
  GatherOnArrivalLocked(job, spare);
  if (rows_ >= TargetRowsLocked() || job->priority == Priority::kCritical ||
      max_delay_ == absl::ZeroDuration()) {
    result.ready.push_back(TakeLocked());
  } else if ((parked_ || (dispatch_when_idle_ && model_idle)) && slot_free && !preferred_.empty() &&
             rows_ >= preferred_.front()) {
    // Rule 5b: a waiting batch reached the smallest preferred size (5c:
    // or one collecting on an idle model).
    result.ready.push_back(TakeReadyLocked(now));
  } else if (first) {
    result.arm_timer = true;
    result.generation = generation_;
    // Rule 5d: no later than the batch's release.
    result.flush_at = std::min(now + max_delay_, std::max(now, ReleaseAtLocked()));
  }
  return result;
}

std::vector<Job*> DynamicBatcher::FlushExpired(uint64_t generation, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (generation != generation_ || head_ == nullptr) return {};
  return TakeReadyLocked(now);
}

bool DynamicBatcher::Park(uint64_t generation) {
  absl::MutexLock lock(&mu_);
  if (generation != generation_ || head_ == nullptr) return false;
  parked_ = true;
  return true;
}

std::vector<Job*> DynamicBatcher::TakeParked(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (!parked_ || head_ == nullptr) return {};
  return TakeReadyLocked(now);
}

bool DynamicBatcher::parked() const {
  absl::MutexLock lock(&mu_);
  return parked_;
}

bool DynamicBatcher::Remove(Job* job) {
  absl::MutexLock lock(&mu_);
  for (QueueNode* n = head_; n != nullptr; n = n->next) {
    if (n != job) continue;
    if (n->prev != nullptr) {
      n->prev->next = n->next;
    } else {
      head_ = n->next;
    }
    if (n->next != nullptr) {
      n->next->prev = n->prev;
    } else {
      tail_ = n->prev;
    }
    n->prev = n->next = nullptr;
    n->linked = false;
    --count_;
    rows_ -= job->rows;
    if (head_ == nullptr) {
      ++generation_;
      parked_ = false;
      DropArrivalLocked();
    }
    return true;
  }
  return false;
}

std::vector<Job*> DynamicBatcher::TakeAll() {
  absl::MutexLock lock(&mu_);
  return TakeLocked();
}

// ---------------------------------------------------------------------------
// BatchingStage

std::optional<BatchingPolicy> ModelBatchingPolicy(const ModelConfigSpec& spec,
                                                  const BatchingPolicy& defaults) {
  if (!spec.has_dynamic_batching) return std::nullopt;
  BatchingPolicy policy = defaults;
  policy.enabled = true;
  policy.preferred_batch_sizes = spec.dynamic_batching.preferred_batch_sizes;
  policy.max_queue_delay = absl::Microseconds(spec.dynamic_batching.max_queue_delay_us);
  return policy;
}

BatchingStage::BatchingStage(const SchedulerOptions& options, const DeviceLanes& lanes,
                             SchedulerMetrics& metrics, Clock* clock, BatchingHooks hooks)
    : options_(options), lanes_(lanes), metrics_(metrics), clock_(clock), hooks_(std::move(hooks)) {}

BatchingStage::~BatchingStage() = default;

std::optional<BatchingPolicy> BatchingStage::PolicyFor(const ModelSignature& sig) const {
  if (sig.max_batch_size <= 0 || sig.decoupled) return std::nullopt;
  std::optional<BatchingPolicy> policy;
  if (options_.batching_lookup) policy = options_.batching_lookup(sig);
  if (!policy.has_value()) policy = options_.default_batching;
  if (!policy->enabled) return std::nullopt;
  return policy;
}

BatchingStage::ModelBatcher* BatchingStage::For(const std::shared_ptr<const Model>& model) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = batchers_.find(model.get());
    // An expired entry under this address was another model's.
    if (it != batchers_.end() && !it->second->model.expired()) return it->second.get();
  }
  const ModelSignature& sig = model->signature();
  ModelBatcher* made = nullptr;
  {
    absl::MutexLock lock(&mu_);
    auto& slot = batchers_[model.get()];
    if (slot != nullptr && !slot->model.expired()) return slot.get();
    slot = std::make_shared<ModelBatcher>();
    slot->model = model;
    if (std::optional<BatchingPolicy> p = PolicyFor(sig); p.has_value()) {
      slot->batcher = std::make_shared<DynamicBatcher>(*p, sig.max_batch_size);
    }
    made = slot.get();
    // Unloaded models' entries go with the next model's arrival.
    absl::erase_if(batchers_, [](const auto& entry) { return entry.second->model.expired(); });
  }
  if (made->batcher == nullptr) return made;
  made->batcher->SetExecutionLimit(ExecutionLimit(sig));
  made->batcher->SetInOrder(!sig.overlap_executions, absl::Microseconds(sig.next_batch_lead_us));
  made->batcher->SetGatherOnArrival(options_.batch_gather_on_arrival &&
                                    static_cast<bool>(hooks_.staging));
  // Asked outside the lock: the memory engine may reclaim expired tensors.
  // Requests that raced ahead of the cap merely ran a larger batch once.
  if (options_.optimal_batch_size) made->batcher->SetRowLimit(RowLimit(sig));
  return made;
}

DynamicBatcher* BatchingStage::BatcherFor(const Job& job) {
  if (job.rows <= 0 || job.device_constraint >= 0) return nullptr;
  return For(job.request.model)->batcher.get();
}

DynamicBatcher::AddResult BatchingStage::Add(DynamicBatcher& batcher, Job* job, absl::Time now) {
  const bool slot_free =
      (batcher.dispatch_when_idle() || batcher.has_preferred_sizes()) && MayStart(batcher);
  job->where.store(Job::Where::kBatcher);
  StagingBlock spare;
  if (const size_t bytes = batcher.ArrivalBlockBytes(*job); bytes > 0 && hooks_.staging) {
    spare = hooks_.staging(bytes);
  }
  return batcher.Add(job, now, slot_free, &spare);
}

void BatchingStage::Follow(DynamicBatcher& batcher, DynamicBatcher::AddResult added,
                           absl::Time now) {
  if (added.arm_timer) {
    DynamicBatcher* b = &batcher;
    const uint64_t generation = added.generation;
    hooks_.schedule(added.flush_at, [this, held = b->shared_from_this(), generation] {
      FlushOnDelay(held.get(), generation);
    });
  }
  for (auto& ready : added.ready) Emit(batcher, std::move(ready), now);
  // Rule 5 may have left a remainder parked; a freed slot looks for it.
  if (!added.ready.empty() && batcher.parked()) maybe_parked_.store(true);
}

bool BatchingStage::MayStart(const DynamicBatcher& batcher) const {
  return batcher.UnderExecutionLimit() && lanes_.AnySlotFree();
}

int BatchingStage::ExecutionLimit(const ModelSignature& sig) const {
  if (sig.max_executions_per_device <= 0) return 0;
  int eligible = 0;
  for (const auto& lane : lanes_) eligible += lane->Eligible() ? 1 : 0;
  return sig.max_executions_per_device * std::max(eligible, 1);
}

int64_t BatchingStage::RowLimit(const ModelSignature& sig) const {
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

std::vector<std::shared_ptr<BatchingStage::ModelBatcher>> BatchingStage::Active() const {
  std::vector<std::shared_ptr<ModelBatcher>> out;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [key, mb] : batchers_) {
    if (mb->batcher != nullptr && !mb->model.expired()) out.push_back(mb);
  }
  return out;
}

void BatchingStage::RefreshRowLimits() {
  for (const auto& mb : Active()) {
    std::shared_ptr<const Model> model = mb->model.lock();
    if (model == nullptr) continue;  // unloaded meanwhile
    const ModelSignature& sig = model->signature();
    mb->batcher->SetExecutionLimit(ExecutionLimit(sig));
    if (options_.optimal_batch_size) mb->batcher->SetRowLimit(RowLimit(sig));
  }
}

void BatchingStage::FlushOnDelay(DynamicBatcher* batcher, uint64_t generation) {
  if (MayStart(*batcher)) {
    std::vector<Job*> jobs = batcher->FlushExpired(generation, clock_->Now());
    if (!jobs.empty()) Emit(*batcher, std::move(jobs), clock_->Now());
    // Rule 5 may have parked all of it or the rest (5b: until its release
    // too, when that comes after the delay).
    if (!batcher->parked()) return;
    ScheduleRelease(*batcher);
  } else if (!batcher->Park(generation)) {
    return;
  }
  // Every slot is busy: queueing this batch now would only put it behind
  // running work; parked, it keeps filling until a slot frees. A slot
  // frees through the scheduler's OnExecuted, which stores `running` and
  // then reads maybe_parked_ (OnSlotFreed); this stores maybe_parked_ and
  // then reads `running`. With a fence on each side one of them sees the
  // other, so a batch is never left parked next to a free slot. The same
  // holds for a model at its execution limit: OnFinished lowers the count,
  // then reads `parked`.
  maybe_parked_.store(true);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!MayStart(*batcher)) return;
  EmitParked(*batcher);
}

void BatchingStage::EmitParked(DynamicBatcher& batcher) {
  for (;;) {
    std::vector<Job*> jobs = batcher.TakeParked(clock_->Now());
    if (jobs.empty()) return;
    Emit(batcher, std::move(jobs), clock_->Now());
    if (!batcher.parked()) return;
    // Rule 5a left a remainder: it runs with the next free slot, or now.
    maybe_parked_.store(true);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!MayStart(batcher)) return;
  }
}

void BatchingStage::OnSlotFreed() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!maybe_parked_.load(std::memory_order_relaxed) || !maybe_parked_.exchange(false)) return;
  bool left = false;
  for (const auto& mb : Active()) {
    if (mb->batcher->UnderExecutionLimit()) EmitParked(*mb->batcher);
    left |= mb->batcher->parked();
  }
  // A model at its limit, or waiting for a preferred size (rule 5b),
  // keeps its parked batch until OnFinished, which may find no slot free:
  // the flag stays for the next freed slot.
  if (left) maybe_parked_.store(true);
}

void BatchingStage::OnFinished(DynamicBatcher& batcher, const FinishedExecution& finished) {
  batcher.CountFinished(finished, clock_->Now());
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (batcher.parked() && MayStart(batcher)) EmitParked(batcher);
  ScheduleRelease(batcher);
}

void BatchingStage::ScheduleRelease(DynamicBatcher& batcher) {
  const absl::Time at = batcher.ReleaseAt();
  if (at == absl::InfiniteFuture() || batcher.pending() == 0) return;
  hooks_.schedule(at, [this, held = batcher.shared_from_this()] { ReleaseDue(*held); });
}

void BatchingStage::ReleaseDue(DynamicBatcher& batcher) {
  if (!MayStart(batcher)) return;  // parked: a freed slot emits it
  std::vector<Job*> jobs = batcher.TakeReleased(clock_->Now());
  if (jobs.empty()) return;
  Emit(batcher, std::move(jobs), clock_->Now());
  // Rule 5a may have left a remainder parked; a freed slot looks for it.
  if (batcher.parked()) maybe_parked_.store(true);
}

void BatchingStage::Place(DynamicBatcher& batcher, Job* job, absl::Time now) {
  if (batcher.counts_unfinished()) {  // rules 4 and 5 count it until it finishes
    job->emitted_by = batcher.shared_from_this();
    batcher.CountEmitted(job->batch != nullptr ? job->batch->total_rows : job->rows, now);
    ScheduleRelease(batcher);
  }
  hooks_.place(job, now);
}

void BatchingStage::Emit(DynamicBatcher& batcher, std::vector<Job*> jobs, absl::Time now) {
  jobs[0]->Series(metrics_)->batch_size->Observe(static_cast<double>(jobs.size()));
  std::shared_ptr<ArrivalBlock> arrival = std::move(jobs[0]->arrival);
  if (jobs.size() == 1) {
    jobs[0]->where.store(Job::Where::kNew);
    Place(batcher, jobs[0], now);
    return;
  }
  absl::InlinedVector<const InferRequest*, 16> requests;
  for (Job* j : jobs) requests.push_back(&j->request);
  auto merged_batch = std::make_unique<BatchData>();
  absl::StatusOr<InferRequest> merged = MergeRequests(requests);
  if (!merged.ok()) {
    INFERD_LOG(kWarning, "batch of ", jobs.size(), " not merged: ", merged.status().ToString());
    for (Job* j : jobs) {
      j->where.store(Job::Where::kNew);
      Place(batcher, j, now);
    }
    return;
  }
  if (arrival != nullptr) {
    // Rule 6: the members' inputs already lie in the arrival block.
    const uint64_t row = static_cast<uint64_t>(jobs[0]->arrival_row);
    for (size_t i = 0; i < merged->inputs.size(); ++i) {
      merged->inputs[i].data = arrival->region[i] + row * arrival->row_bytes[i];
      merged->inputs[i].pinned = true;
    }
    merged_batch->arrival = std::move(arrival);
    merged_batch->gathered = true;
  }
  auto* batch = new Job;
  batch->scheduler = jobs[0]->scheduler;
  batch->request = *std::move(merged);
  batch->priority = jobs[0]->priority;
  batch->submit_time = jobs[0]->submit_time;
  batch->queued_time = jobs[0]->queued_time;
  batch->deadline = jobs[0]->deadline;
  batch->max_retries = jobs[0]->max_retries;
  const size_t num_outputs = batch->request.model->signature().outputs.size();
  merged_batch->outputs.resize(num_outputs);
  for (Job* j : jobs) {
    batch->priority = std::min(batch->priority, j->priority);
    batch->submit_time = std::min(batch->submit_time, j->submit_time);
    batch->queued_time = std::min(batch->queued_time, j->queued_time);
    batch->deadline = std::min(batch->deadline, j->deadline);
    batch->max_retries = std::min(batch->max_retries, j->max_retries);
    batch->memory_requirement += j->memory_requirement;
    merged_batch->rows.push_back(j->rows);
    merged_batch->row_offsets.push_back(merged_batch->total_rows);
    merged_batch->total_rows += j->rows;
    j->parent = batch;
    j->where.store(Job::Where::kInBatch);
  }
  merged_batch->members = std::move(jobs);
  batch->batch = std::move(merged_batch);
  batches_.fetch_add(1, std::memory_order_relaxed);
  batched_requests_.fetch_add(batch->batch->members.size(), std::memory_order_relaxed);
  Place(batcher, batch, now);
}

absl::Status BatchingStage::SplitMember(Job* batch, size_t i, absl::Status status) {
  const BatchData& b = *batch->batch;
  Job* m = b.members[i];
  if (status.ok() && batch->timed_out.load()) {
    status = absl::DeadlineExceededError("timeout: the deadline passed while running");
  }
  const ModelSignature& sig = batch->request.model->signature();
  for (size_t o = 0; o < b.outputs.size() && status.ok(); ++o) {
    const BatchData::Output& out = b.outputs[o];
    if (!out.present) continue;
    absl::StatusOr<TensorDesc> slice = SliceDesc(out.desc, b.total_rows, b.rows[i]);
    if (!slice.ok()) {
      status = slice.status();
      break;
    }
    void* dst = m->AllocateOutput(static_cast<int>(o), sig.outputs[o], *slice);
    if (dst != nullptr && slice->byte_size > 0) {
      const uint64_t row_bytes = out.desc.byte_size / static_cast<uint64_t>(b.total_rows);
      std::memcpy(dst, out.data + row_bytes * static_cast<uint64_t>(b.row_offsets[i]),
                  slice->byte_size);
    }
  }
  m->parent = nullptr;
  if (batch->start_time != absl::InfinitePast() && m->start_time == absl::InfinitePast()) {
    m->start_time = batch->start_time;
  }
  m->timing = batch->timing;
  return status;
}

bool BatchingStage::Remove(Job* job) {
  DynamicBatcher* batcher = For(job->request.model)->batcher.get();
  return batcher != nullptr && batcher->Remove(job);
}

std::vector<Job*> BatchingStage::TakeAll() {
  std::vector<Job*> pending;
  for (const auto& mb : Active()) {
    std::vector<Job*> jobs = mb->batcher->TakeAll();
    pending.insert(pending.end(), jobs.begin(), jobs.end());
  }
  return pending;
}

int64_t BatchingStage::pending() const {
  int64_t n = 0;
  for (const auto& mb : Active()) n += static_cast<int64_t>(mb->batcher->pending());
  return n;
}

}  // namespace inferd
