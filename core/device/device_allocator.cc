#include "core/device/device_allocator.h"

#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace inferd {
namespace {

class RawDeviceAllocator final : public DeviceAllocator {
 public:
  ~RawDeviceAllocator() override { Drain(); }

  absl::StatusOr<void*> Allocate(Device& device, Stream& stream, size_t bytes) override {
    Drain();
    return device.AllocateRaw(bytes);
  }

  void Free(Device& device, Stream& stream, void* ptr) override {
    absl::MutexLock lock(&mu_);
    pending_.emplace_back(&device, ptr);
  }

 private:
  void Drain() {
    std::vector<std::pair<Device*, void*>> batch;
    {
      absl::MutexLock lock(&mu_);
      batch.swap(pending_);
    }
    for (auto& [device, ptr] : batch) device->FreeRaw(ptr);
  }

  absl::Mutex mu_;
  std::vector<std::pair<Device*, void*>> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

StagingBlock::StagingBlock(DeviceAllocator& allocator, Device& device, size_t bytes) {
  ptr_ = allocator.AllocateStaging(device, bytes);
  if (ptr_ == nullptr) return;
  allocator_ = &allocator;
  device_ = &device;
  bytes_ = bytes;
}

StagingBlock& StagingBlock::operator=(StagingBlock&& other) noexcept {
  if (this != &other) {
    Reset();
    std::swap(allocator_, other.allocator_);
    std::swap(device_, other.device_);
    std::swap(ptr_, other.ptr_);
    std::swap(bytes_, other.bytes_);
  }
  return *this;
}

void StagingBlock::Reset() {
  if (ptr_ != nullptr) allocator_->FreeStaging(*device_, ptr_, bytes_);
  allocator_ = nullptr;
  device_ = nullptr;
  ptr_ = nullptr;
  bytes_ = 0;
}

std::unique_ptr<DeviceAllocator> NewRawDeviceAllocator() {
  return std::make_unique<RawDeviceAllocator>();
}

}  // namespace inferd
