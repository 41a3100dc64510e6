#include "core/shm/shared_memory_registry.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "core/device/host_device.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;

// Creates (and later removes) a POSIX shared-memory object of `size` bytes.
class ShmObject {
 public:
  ShmObject(const std::string& key, size_t size) : key_(key) {
    ::shm_unlink(key.c_str());
    const int fd = ::shm_open(key.c_str(), O_CREAT | O_RDWR, 0600);
    ok_ = fd >= 0 && ::ftruncate(fd, static_cast<off_t>(size)) == 0;
    if (fd >= 0) ::close(fd);
  }
  ~ShmObject() { ::shm_unlink(key_.c_str()); }
  bool ok() const { return ok_; }

 private:
  std::string key_;
  bool ok_ = false;
};

class SharedMemoryRegistryTest : public ::testing::Test {
 protected:
  SharedMemoryRegistryTest() : device_(HostDeviceOptions{}) {
    SharedMemoryOptions o;
    o.max_regions = 3;
    o.devices = {&device_};
    registry_ = std::make_unique<SharedMemoryRegistry>(o);
  }
  HostDevice device_;
  std::unique_ptr<SharedMemoryRegistry> registry_;
};

TEST_F(SharedMemoryRegistryTest, RegisterResolveAndStatus) {
  ShmObject obj("/inferd_unit_a", 8192);
  ASSERT_TRUE(obj.ok());
  ASSERT_TRUE(registry_->RegisterSystem("a", "/inferd_unit_a", 4096, 1024).ok());
  absl::StatusOr<SharedMemoryView> v = registry_->Resolve("a", 16, 32, "inputs[0].parameters");
  ASSERT_TRUE(v.ok()) << v.status();
  std::memset(v->data(), 7, 32);
  auto status = registry_->Status(RegionKind::kSystem, "");
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 1u);
  EXPECT_EQ((*status)[0].offset, 4096u);
  EXPECT_EQ((*status)[0].byte_size, 1024u);
  EXPECT_TRUE(registry_->Status(RegionKind::kCuda, "").value().empty());
}

TEST_F(SharedMemoryRegistryTest, RangesPastTheRegionNameTheParameter) {
  ShmObject obj("/inferd_unit_b", 4096);
  ASSERT_TRUE(registry_->RegisterSystem("b", "/inferd_unit_b", 0, 100).ok());
  auto off = registry_->Resolve("b", 101, 0, "outputs[1].parameters");
  EXPECT_EQ(off.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(off.status().message(), HasSubstr("outputs[1].parameters.shared_memory_offset"));
  auto size = registry_->Resolve("b", 90, 11, "outputs[1].parameters");
  EXPECT_THAT(size.status().message(), HasSubstr("shared_memory_byte_size"));
  auto huge = registry_->Resolve("b", 1, ~uint64_t{0}, "x");
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  auto none = registry_->Resolve("zz", 0, 1, "x");
  EXPECT_THAT(none.status().message(), HasSubstr("x.shared_memory_region"));
}

TEST_F(SharedMemoryRegistryTest, KeysAndNamesAreValidated) {
  ShmObject obj("/inferd_unit_c", 4096);
  for (const char* key : {"inferd_unit_c", "/a/b", "/..", "/x y", "", "/"}) {
    EXPECT_EQ(registry_->RegisterSystem("c", key, 0, 8).code(), absl::StatusCode::kInvalidArgument)
        << key;
  }
  EXPECT_EQ(registry_->RegisterSystem("bad name/", "/inferd_unit_c", 0, 8).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->RegisterSystem("c", "/inferd_unit_c", 4000, 200).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->RegisterSystem("c", "/inferd_unit_none", 0, 8).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(registry_->RegisterSystem("c", "/inferd_unit_c", 0, 0).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SharedMemoryRegistryTest, DuplicatesAndTheRegionLimitAreRefused) {
  ShmObject obj("/inferd_unit_d", 4096);
  ASSERT_TRUE(registry_->RegisterSystem("d1", "/inferd_unit_d", 0, 8).ok());
  EXPECT_EQ(registry_->RegisterSystem("d1", "/inferd_unit_d", 0, 8).code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry_->RegisterSystem("d2", "/inferd_unit_d", 0, 8).ok());
  ASSERT_TRUE(registry_->RegisterSystem("d3", "/inferd_unit_d", 0, 8).ok());
  absl::Status full = registry_->RegisterSystem("d4", "/inferd_unit_d", 0, 8);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("shared_memory.max_regions"));
}

// Verifies that a view keeps its region mapped after unregistration.
TEST_F(SharedMemoryRegistryTest, ViewOutlivesUnregistration) {
  ShmObject obj("/inferd_unit_e", 4096);
  ASSERT_TRUE(registry_->RegisterSystem("e", "/inferd_unit_e", 0, 64).ok());
  absl::StatusOr<SharedMemoryView> v = registry_->Resolve("e", 0, 64, "x");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(registry_->Unregister(RegionKind::kSystem, "e").ok());
  EXPECT_EQ(registry_->Resolve("e", 0, 1, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::memset(v->data(), 1, 64);  // still mapped
  EXPECT_EQ(registry_->Unregister(RegionKind::kSystem, "e").code(), absl::StatusCode::kNotFound);
}

TEST_F(SharedMemoryRegistryTest, CudaRegionsUseTheHostStandInHandle) {
  ShmObject obj("/inferd_unit_f", 4096);
  std::string handle = std::string(kHostIpcHandlePrefix) + "/inferd_unit_f";
  handle.resize(Device::kIpcHandleBytes, '\0');
  ASSERT_TRUE(registry_->RegisterCuda("f", handle, 0, 256).ok());
  auto v = registry_->Resolve("f", 0, 256, "x");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->region->device(), &device_);
  EXPECT_EQ(registry_->RegisterCuda("g", "short", 0, 8).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->RegisterCuda("g", handle, 3, 8).code(), absl::StatusCode::kNotFound);
  std::string other(Device::kIpcHandleBytes, 'x');
  EXPECT_EQ(registry_->RegisterCuda("g", other, 0, 8).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(registry_->Unregister(RegionKind::kCuda, "").ok());
  EXPECT_TRUE(registry_->Status(RegionKind::kCuda, "").value().empty());
}

}  // namespace
}  // namespace inferd
