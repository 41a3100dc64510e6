// TensorStore: the registry of device tensors that clients and engines name
// by TensorId. It holds each tensor's metadata, device pointer, lease and pin
// count, and nothing else: the memory engine allocates and frees the memory.
//
// Leases: every tensor has a lease length (a default when none is asked for)
// and an expiry; pinning and unpinning renew it (use renews), as does
// RenewLease. Expired tensors are taken out by RemoveExpired, never while
// pinned.
// Pins: a pinned tensor is in use by a task or transfer; it is never freed
// or moved. Remove answers FAILED_PRECONDITION while pinned (frees are not
// deferred: the client retries once the work is done).
#ifndef INFERD_CORE_MEMORY_TENSOR_STORE_H_
#define INFERD_CORE_MEMORY_TENSOR_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/device/device.h"
#include "core/memory/tensor_id.h"
#include "core/tensor/dtype.h"
#include "core/util/clock.h"

namespace inferd {

struct TensorInfo {
  TensorId id;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;
  int device = 0;
  uint64_t byte_size = 0;
  std::string owner;     // client id
  absl::Duration lease;  // length; each use restarts it
  absl::Time lease_expiry;
  int pin_count = 0;
  absl::Time created;
};

// What Create registers. `lease` <= 0 takes the store's default.
struct NewTensor {
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;
  int device = 0;
  uint64_t byte_size = 0;
  std::string owner;
  absl::Duration lease = absl::ZeroDuration();
  void* device_ptr = nullptr;
  // Work still initializing the memory (zeroing); the first Pin waits for it.
  std::shared_ptr<Event> ready;
};

struct TensorStoreOptions {
  absl::Duration default_lease = absl::Minutes(10);
  absl::Duration max_lease = absl::Hours(24);
};

struct TensorListOptions {
  std::string owner;       // empty: every owner
  int device = -1;         // -1: every device
  int page_size = 100;     // <= 0: 100; at most 1000
  std::string page_token;  // from a previous page; empty for the first
};

struct TensorPage {
  std::vector<TensorInfo> tensors;
  std::string next_page_token;  // empty on the last page
};

// A tensor taken out of the store; the caller frees its memory.
struct RemovedTensor {
  TensorInfo info;
  void* device_ptr = nullptr;
};

class TensorStore;

// Keeps a tensor pinned for as long as it lives: the device pointer stays
// valid and the tensor is neither freed nor moved. Unpins (renewing the
// lease) on destruction or Reset. Move-only; must not outlive the store.
// Work that uses device_ptr() must have completed before the pin goes.
// Thread-compatible.
class TensorPin {
 public:
  TensorPin() = default;
  TensorPin(TensorPin&& other) noexcept { *this = std::move(other); }
  TensorPin& operator=(TensorPin&& other) noexcept;
  TensorPin(const TensorPin&) = delete;
  TensorPin& operator=(const TensorPin&) = delete;
  ~TensorPin() { Reset(); }

  bool valid() const { return store_ != nullptr; }
  const TensorId& id() const { return id_; }
  void* device_ptr() const { return ptr_; }
  uint64_t byte_size() const { return byte_size_; }
  int device() const { return device_; }
  DataType dtype() const { return dtype_; }
  // Unpins now.
  void Reset();

 private:
  friend class TensorStore;
  TensorStore* store_ = nullptr;
  TensorId id_;
  void* ptr_ = nullptr;
  uint64_t byte_size_ = 0;
  int device_ = 0;
  DataType dtype_ = DataType::kInvalid;
};

// Thread-safe (one mutex). The clock is borrowed.
class TensorStore {
 public:
  TensorStore(Clock* clock, const TensorStoreOptions& options);
  ~TensorStore();

  // Registers a tensor with a fresh id and returns its info.
  // INVALID_ARGUMENT when the lease exceeds max_lease.
  absl::StatusOr<TensorInfo> Create(NewTensor tensor);

  // Returns the tensor's info (does not renew the lease). NOT_FOUND.
  absl::StatusOr<TensorInfo> Lookup(const TensorId& id) const;

  // Pins the tensor and renews its lease. If the tensor was just moved by
  // compaction, waits (unlocked) for the copy to finish first. NOT_FOUND.
  absl::StatusOr<TensorPin> Pin(const TensorId& id);

  // Takes the tensor out. NOT_FOUND; FAILED_PRECONDITION while pinned.
  absl::StatusOr<RemovedTensor> Remove(const TensorId& id);

  // Sets a new lease length (<= 0 keeps the current one) and restarts it;
  // returns the new expiry. NOT_FOUND; INVALID_ARGUMENT above max_lease.
  absl::StatusOr<absl::Time> RenewLease(const TensorId& id, absl::Duration lease);

  // Returns one page of tensors in id order. INVALID_ARGUMENT for a
  // malformed page token.
  absl::StatusOr<TensorPage> List(const TensorListOptions& options) const;

  // Takes out every unpinned tensor of `device` (-1: all) whose lease has
  // expired.
  std::vector<RemovedTensor> RemoveExpired(int device);

  // Takes out every tensor, pinned or not (for shutdown).
  std::vector<RemovedTensor> RemoveAll();

  struct Usage {
    uint64_t tensors = 0;
    uint64_t bytes = 0;
    uint64_t pinned = 0;  // tensors with a pin
  };
  Usage DeviceUsage(int device) const;

  // For compaction. Runs `fn` with the store locked, so that no tensor is
  // pinned, created or removed meanwhile. `fn` gets `movable(ptr)`: true for
  // the pointer of an unpinned tensor of `device`; and `moved(old, new)` to
  // record that such a tensor now lives at `new`. Each moved tensor's next
  // Pin waits for `ready` (which `fn` records after enqueuing the copies).
  // `fn` must not call back into the store.
  void Relocate(int device, const std::shared_ptr<Event>& ready,
                absl::FunctionRef<void(absl::FunctionRef<bool(void*)> movable,
                                       absl::FunctionRef<void(void*, void*)> moved)>
                    fn);

 private:
  friend class TensorPin;
  struct Entry {
    TensorInfo info;
    void* ptr = nullptr;
    std::shared_ptr<Event> ready;  // pending move copy, if any
  };

  void Unpin(const TensorId& id);
  absl::Status CheckLease(absl::Duration lease) const;

  // Constant after construction.
  Clock* const clock_;
  const TensorStoreOptions options_;

  mutable absl::Mutex mu_;
  absl::btree_map<TensorId, Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int, Usage> usage_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_MEMORY_TENSOR_STORE_H_
