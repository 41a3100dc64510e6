// Shared set-up of the GPU tests: the CUDA devices of this machine (tests
// skip when there are none) and RAII device buffers.
#ifndef INFERD_TESTS_GPU_GPU_FIXTURE_H_
#define INFERD_TESTS_GPU_GPU_FIXTURE_H_

#include <cstring>
#include <memory>
#include <vector>

#include "core/device/device.h"
#include "core/device/discovery.h"
#include "gtest/gtest.h"

namespace inferd::testing_gpu {

// Memory from Device::AllocateRaw, freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer(Device& device, size_t bytes) : device_(&device) {
    auto p = device.AllocateRaw(bytes);
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) ptr_ = *p;
  }
  ~DeviceBuffer() { device_->FreeRaw(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return ptr_; }
  uint8_t* bytes() const { return static_cast<uint8_t*>(ptr_); }

 private:
  Device* device_;
  void* ptr_ = nullptr;
};

// Pinned host memory from Device::AllocatePinnedHost, freed on destruction.
class PinnedBuffer {
 public:
  PinnedBuffer(Device& device, size_t bytes) : device_(&device) {
    auto p = device.AllocatePinnedHost(bytes);
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) ptr_ = static_cast<uint8_t*>(*p);
  }
  ~PinnedBuffer() { device_->FreePinnedHost(ptr_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  uint8_t* get() const { return ptr_; }

 private:
  Device* device_;
  uint8_t* ptr_ = nullptr;
};

// Fixture whose tests run on every CUDA device found, two streams each.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto devices = DiscoverCudaDevices({}, 2);
    ASSERT_TRUE(devices.ok()) << devices.status();
    if (devices->empty()) GTEST_SKIP() << "no CUDA device";
    devices_ = std::move(*devices);
  }

  Device& gpu(size_t i = 0) { return *devices_[i]; }

  std::vector<std::unique_ptr<Device>> devices_;
};

}  // namespace inferd::testing_gpu

#endif  // INFERD_TESTS_GPU_GPU_FIXTURE_H_
