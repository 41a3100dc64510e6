// DeviceAllocator: stream-ordered allocation of short-lived device buffers
// (model inputs, outputs, scratch). The memory engine's caching pools
// implement it; NewRawDeviceAllocator is the fallback that goes to the
// driver for every buffer.
#ifndef INFERD_CORE_DEVICE_DEVICE_ALLOCATOR_H_
#define INFERD_CORE_DEVICE_DEVICE_ALLOCATOR_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "core/device/device.h"

namespace inferd {

// Thread-safe.
class DeviceAllocator {
 public:
  virtual ~DeviceAllocator() = default;
  // Returns `bytes` of device memory usable by work on `stream`.
  // RESOURCE_EXHAUSTED naming the device, requested and free bytes.
  virtual absl::StatusOr<void*> Allocate(Device& device, Stream& stream, size_t bytes) = 0;
  // Returns `ptr`; reuse is ordered after the work already enqueued on
  // `stream`. Makes no driver call, so it may run in a stream callback.
  virtual void Free(Device& device, Stream& stream, void* ptr) = 0;

  // Returns pinned host memory of at least `bytes` through which copies
  // between pageable host memory and `device` are staged, or null when
  // this allocator does not stage for `device` or has none to spare (the
  // caller then copies directly). FreeStaging takes the block back, with
  // the same `bytes`, once the copies using it have run; it makes no driver
  // call.
  virtual void* AllocateStaging(Device& device, size_t bytes) { return nullptr; }
  virtual void FreeStaging(Device& device, void* ptr, size_t bytes) {}
};

// One pinned staging block (DeviceAllocator::AllocateStaging), given back to
// its allocator when reset or destroyed. Empty when none was free. Pinned
// blocks are portable: any device's copies may use them. Not thread-safe;
// move-only.
class StagingBlock {
 public:
  StagingBlock() = default;
  // A block of at least `bytes` (> 0) for `device`; empty when the
  // allocator has none to spare.
  StagingBlock(DeviceAllocator& allocator, Device& device, size_t bytes);
  StagingBlock(StagingBlock&& other) noexcept { *this = std::move(other); }
  StagingBlock& operator=(StagingBlock&& other) noexcept;
  StagingBlock(const StagingBlock&) = delete;
  StagingBlock& operator=(const StagingBlock&) = delete;
  ~StagingBlock() { Reset(); }

  // Gives the block back (after the copies that used it have run).
  void Reset();
  uint8_t* data() const { return static_cast<uint8_t*>(ptr_); }
  size_t size() const { return bytes_; }
  bool empty() const { return ptr_ == nullptr; }

 private:
  DeviceAllocator* allocator_ = nullptr;
  Device* device_ = nullptr;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Allocates with Device::AllocateRaw; frees are deferred to the next
// Allocate (or destruction) so Free never calls the driver.
std::unique_ptr<DeviceAllocator> NewRawDeviceAllocator();

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_DEVICE_ALLOCATOR_H_
