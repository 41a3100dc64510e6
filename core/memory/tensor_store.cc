#include "core/memory/tensor_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/logging.h"

namespace inferd {

TensorPin& TensorPin::operator=(TensorPin&& other) noexcept {
  if (this != &other) {
    Reset();
    store_ = std::exchange(other.store_, nullptr);
    id_ = other.id_;
    ptr_ = std::exchange(other.ptr_, nullptr);
    byte_size_ = other.byte_size_;
    device_ = other.device_;
    dtype_ = other.dtype_;
  }
  return *this;
}

void TensorPin::Reset() {
  if (store_ == nullptr) return;
  std::exchange(store_, nullptr)->Unpin(id_);
  ptr_ = nullptr;
}

TensorStore::TensorStore(Clock* clock, const TensorStoreOptions& options)
    : clock_(clock), options_(options) {}

TensorStore::~TensorStore() {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : entries_) {
    if (entry.info.pin_count > 0) {
      INFERD_LOG(kWarning, "tensor store destroyed while tensor ", FormatTensorId(id),
                 " is pinned");
    }
  }
}

absl::Status TensorStore::CheckLease(absl::Duration lease) const {
  if (lease > options_.max_lease) {
    return absl::InvalidArgumentError(absl::StrCat("lease ", absl::FormatDuration(lease),
                                                   " exceeds the maximum of ",
                                                   absl::FormatDuration(options_.max_lease)));
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorInfo> TensorStore::Create(NewTensor tensor) {
  if (tensor.lease <= absl::ZeroDuration()) tensor.lease = options_.default_lease;
  if (absl::Status st = CheckLease(tensor.lease); !st.ok()) return st;
  const absl::Time now = clock_->Now();
  Entry entry;
  entry.info.dtype = tensor.dtype;
  entry.info.shape = std::move(tensor.shape);
  entry.info.device = tensor.device;
  entry.info.byte_size = tensor.byte_size;
  entry.info.owner = std::move(tensor.owner);
  entry.info.lease = tensor.lease;
  entry.info.lease_expiry = now + tensor.lease;
  entry.info.created = now;
  entry.ptr = tensor.device_ptr;
  entry.ready = std::move(tensor.ready);
  absl::MutexLock lock(&mu_);
  TensorId id;
  do {
    id = NewTensorId();
  } while (entries_.contains(id));
  entry.info.id = id;
  Usage& u = usage_[entry.info.device];
  u.tensors++;
  u.bytes += entry.info.byte_size;
  auto [it, inserted] = entries_.emplace(id, std::move(entry));
  return it->second.info;
}

absl::StatusOr<TensorInfo> TensorStore::Lookup(const TensorId& id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor ", FormatTensorId(id), " not found"));
  }
  return it->second.info;
}

absl::StatusOr<TensorPin> TensorStore::Pin(const TensorId& id) {
  TensorPin pin;
  std::shared_ptr<Event> ready;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      return absl::NotFoundError(absl::StrCat("tensor ", FormatTensorId(id), " not found"));
    }
    Entry& e = it->second;
    if (e.info.pin_count++ == 0) usage_[e.info.device].pinned++;
    e.info.lease_expiry = clock_->Now() + e.info.lease;
    if (e.ready != nullptr) {
      if (e.ready->IsComplete()) {
        e.ready.reset();
      } else {
        ready = e.ready;
      }
    }
    pin.store_ = this;
    pin.id_ = id;
    pin.ptr_ = e.ptr;
    pin.byte_size_ = e.info.byte_size;
    pin.device_ = e.info.device;
    pin.dtype_ = e.info.dtype;
  }
  if (ready != nullptr) {
    absl::Status st = ready->Synchronize();
    if (!st.ok()) return st;  // `pin` unpins on the way out
  }
  return pin;
}

void TensorStore::Unpin(const TensorId& id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.info.pin_count == 0) {
    INFERD_LOG(kError, "unpin of tensor ", FormatTensorId(id), " that is not pinned");
    return;
  }
  Entry& e = it->second;
  if (--e.info.pin_count == 0) usage_[e.info.device].pinned--;
  e.info.lease_expiry = clock_->Now() + e.info.lease;
}

absl::StatusOr<RemovedTensor> TensorStore::Remove(const TensorId& id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor ", FormatTensorId(id), " not found"));
  }
  if (it->second.info.pin_count > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor ", FormatTensorId(id), " is in use (", it->second.info.pin_count,
                     " pins); free it when the work using it is done"));
  }
  RemovedTensor out{std::move(it->second.info), it->second.ptr};
  Usage& u = usage_[out.info.device];
  u.tensors--;
  u.bytes -= out.info.byte_size;
  entries_.erase(it);
  return out;
}

absl::StatusOr<absl::Time> TensorStore::RenewLease(const TensorId& id, absl::Duration lease) {
  if (lease > absl::ZeroDuration()) {
    if (absl::Status st = CheckLease(lease); !st.ok()) return st;
  }
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor ", FormatTensorId(id), " not found"));
  }
  TensorInfo& info = it->second.info;
  if (lease > absl::ZeroDuration()) info.lease = lease;
  info.lease_expiry = clock_->Now() + info.lease;
  return info.lease_expiry;
}

absl::StatusOr<TensorPage> TensorStore::List(const TensorListOptions& options) const {
  TensorId after;
  if (!options.page_token.empty()) {
    auto parsed = ParseTensorId(options.page_token, "page_token");
    if (!parsed.ok()) return parsed.status();
    after = *parsed;
  }
  const size_t page_size =
      options.page_size <= 0 ? 100 : static_cast<size_t>(std::min(options.page_size, 1000));
  TensorPage page;
  absl::MutexLock lock(&mu_);
  auto it = after.valid() ? entries_.upper_bound(after) : entries_.begin();
  for (; it != entries_.end(); ++it) {
    const TensorInfo& info = it->second.info;
    if (!options.owner.empty() && info.owner != options.owner) continue;
    if (options.device >= 0 && info.device != options.device) continue;
    if (page.tensors.size() == page_size) {
      page.next_page_token = FormatTensorId(page.tensors.back().id);
      break;
    }
    page.tensors.push_back(info);
  }
  return page;
}

std::vector<RemovedTensor> TensorStore::RemoveExpired(int device) {
  std::vector<RemovedTensor> out;
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    const TensorInfo& info = it->second.info;
    if ((device >= 0 && info.device != device) || info.pin_count > 0 || info.lease_expiry > now) {
      ++it;
      continue;
    }
    Usage& u = usage_[info.device];
    u.tensors--;
    u.bytes -= info.byte_size;
    out.push_back({std::move(it->second.info), it->second.ptr});
    it = entries_.erase(it);
  }
  return out;
}

std::vector<RemovedTensor> TensorStore::RemoveAll() {
  std::vector<RemovedTensor> out;
  absl::MutexLock lock(&mu_);
  for (auto& [id, entry] : entries_) {
    if (entry.info.pin_count > 0) {
      INFERD_LOG(kWarning, "tensor ", FormatTensorId(id), " removed while pinned");
    }
    out.push_back({std::move(entry.info), entry.ptr});
  }
  entries_.clear();
  usage_.clear();
  return out;
}

TensorStore::Usage TensorStore::DeviceUsage(int device) const {
  absl::MutexLock lock(&mu_);
  auto it = usage_.find(device);
  return it == usage_.end() ? Usage() : it->second;
}

void TensorStore::Relocate(int device, const std::shared_ptr<Event>& ready,
                           absl::FunctionRef<void(absl::FunctionRef<bool(void*)> movable,
                                                  absl::FunctionRef<void(void*, void*)> moved)>
                               fn) {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_map<void*, Entry*> by_ptr;
  for (auto& [id, entry] : entries_) {
    if (entry.info.device == device && entry.info.pin_count == 0) by_ptr[entry.ptr] = &entry;
  }
  std::vector<Entry*> moved_entries;
  fn([&](void* ptr) { return by_ptr.contains(ptr); },
     [&](void* old_ptr, void* new_ptr) {
       auto it = by_ptr.find(old_ptr);
       if (it == by_ptr.end()) return;
       it->second->ptr = new_ptr;
       moved_entries.push_back(it->second);
       by_ptr.erase(it);
     });
  for (Entry* e : moved_entries) e->ready = ready;
}

}  // namespace inferd
