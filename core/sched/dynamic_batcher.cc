#include "core/sched/dynamic_batcher.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/check.h"
#include "core/util/checked_math.h"

namespace inferd {

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

absl::StatusOr<InferRequest> MergeRequests(absl::Span<const InferRequest* const> requests,
                                           std::unique_ptr<uint8_t[]>* staging) {
  if (requests.empty()) return absl::InvalidArgumentError("batch: no requests");
  const InferRequest& first = *requests[0];
  uint64_t total_bytes = 0;
  int64_t total_rows = 0;
  for (const InferRequest* r : requests) {
    if (r != requests[0] && !CanMerge(first, *r)) {
      return absl::InvalidArgumentError("batch: requests differ in model, params or shape");
    }
    const int64_t rows = BatchRows(*r);
    if (rows <= 0) return absl::InvalidArgumentError("batch: request is not batchable");
    total_rows += rows;
    for (const InferInput& in : r->inputs) {
      if (!CheckedAdd(total_bytes, in.desc.byte_size, &total_bytes)) {
        return absl::InvalidArgumentError("batch: input bytes overflow");
      }
    }
  }
  staging->reset(new uint8_t[std::max<uint64_t>(total_bytes, 1)]);
  InferRequest merged;
  merged.model = first.model;
  merged.params = first.params;
  merged.priority = first.priority;
  uint8_t* cursor = staging->get();
  for (size_t i = 0; i < first.inputs.size(); ++i) {
    InferInput in = first.inputs[i];
    in.data = cursor;
    in.desc.shape[0] = total_rows;
    in.desc.byte_size = 0;
    for (const InferRequest* r : requests) {
      const InferInput& part = r->inputs[i];
      if (part.desc.byte_size > 0) std::memcpy(cursor, part.data, part.desc.byte_size);
      cursor += part.desc.byte_size;
      in.desc.byte_size += part.desc.byte_size;
    }
    merged.inputs.push_back(std::move(in));
  }
  return merged;
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
  target_rows_ = max_rows_;
  if (!policy.preferred_batch_sizes.empty()) {
    const int largest =
        *std::max_element(policy.preferred_batch_sizes.begin(), policy.preferred_batch_sizes.end());
    target_rows_ = std::clamp(largest, 1, max_rows_);
  }
  max_delay_ = std::max(policy.max_queue_delay, absl::ZeroDuration());
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

size_t DynamicBatcher::pending() const {
  absl::MutexLock lock(&mu_);
  return count_;
}

std::vector<Job*> DynamicBatcher::TakeLocked() {
  std::vector<Job*> out;
  out.reserve(count_);
  for (QueueNode* n = head_; n != nullptr;) {
    QueueNode* next = n->next;
    n->prev = n->next = nullptr;
    n->linked = false;
    out.push_back(static_cast<Job*>(n));
    n = next;
  }
  head_ = tail_ = nullptr;
  count_ = 0;
  rows_ = 0;
  parked_ = false;
  ++generation_;
  return out;
}

DynamicBatcher::AddResult DynamicBatcher::Add(Job* job, absl::Time now) {
  AddResult result;
  absl::MutexLock lock(&mu_);
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
  if (rows_ >= TargetRowsLocked() || job->priority == Priority::kCritical ||
      max_delay_ == absl::ZeroDuration()) {
    result.ready.push_back(TakeLocked());
  } else if (first) {
    result.arm_timer = true;
    result.generation = generation_;
    result.flush_at = now + max_delay_;
  }
  return result;
}

std::vector<Job*> DynamicBatcher::FlushExpired(uint64_t generation) {
  absl::MutexLock lock(&mu_);
  if (generation != generation_ || head_ == nullptr) return {};
  return TakeLocked();
}

bool DynamicBatcher::Park(uint64_t generation) {
  absl::MutexLock lock(&mu_);
  if (generation != generation_ || head_ == nullptr) return false;
  parked_ = true;
  return true;
}

std::vector<Job*> DynamicBatcher::TakeParked() {
  absl::MutexLock lock(&mu_);
  if (!parked_ || head_ == nullptr) return {};
  return TakeLocked();
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
    }
    return true;
  }
  return false;
}

std::vector<Job*> DynamicBatcher::TakeAll() {
  absl::MutexLock lock(&mu_);
  return TakeLocked();
}

}  // namespace inferd
