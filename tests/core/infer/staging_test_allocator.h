// A DeviceAllocator for ExecuteOnDevice tests: raw device buffers, and
// staging blocks from a StagingPool when staging is on (filled with
// garbage, so a result read from a block nobody copied into shows), with
// counts of the blocks taken and given back. Used by the host tests and
// the GPU tests alike.
#ifndef INFERD_TESTS_CORE_INFER_STAGING_TEST_ALLOCATOR_H_
#define INFERD_TESTS_CORE_INFER_STAGING_TEST_ALLOCATOR_H_

#include <atomic>
#include <cstring>
#include <memory>

#include "core/device/device_allocator.h"
#include "core/memory/staging_pool.h"

namespace inferd::testing_infer {

class StagingTestAllocator final : public DeviceAllocator {
 public:
  StagingTestAllocator(Device& device, bool stage) : pool_(device, {}), stage_(stage) {}

  absl::StatusOr<void*> Allocate(Device& device, Stream& stream, size_t bytes) override {
    return raw_->Allocate(device, stream, bytes);
  }
  void Free(Device& device, Stream& stream, void* ptr) override { raw_->Free(device, stream, ptr); }
  void* AllocateStaging(Device&, size_t bytes) override {
    if (!stage_) return nullptr;
    void* p = pool_.Allocate(bytes);
    if (p != nullptr) {
      ++staged_;
      std::memset(p, 0xAB, bytes);
    }
    return p;
  }
  void FreeStaging(Device&, void* ptr, size_t bytes) override {
    ++returned_;
    pool_.Free(ptr, bytes);
  }

  int staged() const { return staged_.load(); }
  int returned() const { return returned_.load(); }

 private:
  std::unique_ptr<DeviceAllocator> raw_ = NewRawDeviceAllocator();
  StagingPool pool_;
  const bool stage_;
  std::atomic<int> staged_{0};
  std::atomic<int> returned_{0};
};

}  // namespace inferd::testing_infer

#endif  // INFERD_TESTS_CORE_INFER_STAGING_TEST_ALLOCATOR_H_
