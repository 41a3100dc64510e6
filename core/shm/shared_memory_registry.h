// SharedMemoryRegistry: the shared-memory regions clients register so that
// tensor data travels through memory instead of gRPC messages (the KServe
// v2 / Triton shared-memory extensions). A system region is a POSIX
// shared-memory object (key, offset, size) mapped into the daemon; a CUDA
// region is GPU memory another process exported with cudaIpcGetMemHandle,
// opened on the device it lives on, so requests read and write it in place.
//
// A region stays mapped while a request uses it: Resolve hands out a
// reference, and Unregister only drops the registry's own, so a running
// request finishes on the memory it started with. Names are bounded
// ([A-Za-z0-9_.:-], at most 128 bytes) and so is the number of regions.
//
// Thread-safety: thread-safe. Registration maps memory with no lock held.
#ifndef INFERD_CORE_SHM_SHARED_MEMORY_REGISTRY_H_
#define INFERD_CORE_SHM_SHARED_MEMORY_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/device/device.h"
#include "core/device/posix_shm.h"

namespace inferd {

enum class RegionKind { kSystem, kCuda };

// What a region's status reports. For system regions `key` and `offset`;
// for CUDA regions `device_id` (the CUDA ordinal, or the host device
// number of a stand-in).
struct RegionInfo {
  std::string name;
  RegionKind kind = RegionKind::kSystem;
  std::string key;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
  int64_t device_id = 0;
};

// One registered region and its mapping. Immutable; unmapped when the last
// reference goes.
class SharedMemoryRegion {
 public:
  const RegionInfo& info() const { return info_; }
  // Host memory (system regions) or memory of device() (CUDA regions).
  uint8_t* base() const { return base_; }
  // The device a CUDA region belongs to; null for system regions.
  Device* device() const { return device_; }

 private:
  friend class SharedMemoryRegistry;
  RegionInfo info_;
  uint8_t* base_ = nullptr;
  Device* device_ = nullptr;
  std::unique_ptr<PosixShmMapping> mapping_;   // system regions
  std::unique_ptr<ImportedMemory> imported_;   // CUDA regions
};

// A byte range of a region in use by one request; holds the region mapped.
struct SharedMemoryView {
  std::shared_ptr<const SharedMemoryRegion> region;
  uint64_t offset = 0;  // within the region
  uint64_t byte_size = 0;
  uint8_t* data() const { return region->base() + offset; }
};

struct SharedMemoryOptions {
  int max_regions = 64;
  // Devices CUDA regions may be opened on (borrowed).
  std::vector<Device*> devices;
};

class SharedMemoryRegistry {
 public:
  explicit SharedMemoryRegistry(SharedMemoryOptions options) : options_(std::move(options)) {}

  // Maps `byte_size` bytes at `offset` of the POSIX object `key` as region
  // `name`. INVALID_ARGUMENT naming the field (name, key, offset,
  // byte_size); ALREADY_EXISTS for a registered name; RESOURCE_EXHAUSTED
  // past shared_memory.max_regions; NOT_FOUND / PERMISSION_DENIED for the
  // object (see PosixShmMapping::Map).
  absl::Status RegisterSystem(absl::string_view name, absl::string_view key, uint64_t offset,
                              uint64_t byte_size);
  // Opens `raw_handle` on the device whose CUDA ordinal (or host number on
  // a daemon without GPUs) is `device_id` as region `name`. Errors as
  // RegisterSystem; NOT_FOUND for an unknown device_id; the device's error
  // for the handle.
  absl::Status RegisterCuda(absl::string_view name, absl::string_view raw_handle,
                            int64_t device_id, uint64_t byte_size);
  // Drops region `name` of `kind` ("" drops every region of that kind).
  // NOT_FOUND for an unknown name. Requests using it keep it mapped.
  absl::Status Unregister(RegionKind kind, absl::string_view name);
  // The regions of `kind`, sorted by name ("" for all, else that one;
  // NOT_FOUND when it is not registered).
  absl::StatusOr<std::vector<RegionInfo>> Status(RegionKind kind, absl::string_view name) const;

  // Returns `byte_size` bytes at `offset` of region `name` for one request.
  // `field` prefixes errors ("inputs[0].parameters"): INVALID_ARGUMENT
  // naming shared_memory_region (unknown), shared_memory_offset or
  // shared_memory_byte_size (past the region's end).
  absl::StatusOr<SharedMemoryView> Resolve(absl::string_view name, uint64_t offset,
                                           uint64_t byte_size, absl::string_view field) const;

 private:
  // Checks `name` is valid, unused and that a region fits.
  absl::Status CheckName(absl::string_view name) const;
  absl::Status CheckFreeLocked(absl::string_view name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Insert(std::shared_ptr<SharedMemoryRegion> region);

  const SharedMemoryOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const SharedMemoryRegion>> regions_
      ABSL_GUARDED_BY(mu_);
};

// True for a valid region name (see the file comment).
bool IsValidRegionName(absl::string_view name);

}  // namespace inferd

#endif  // INFERD_CORE_SHM_SHARED_MEMORY_REGISTRY_H_
