// PosixShmMapping: a POSIX shared-memory object (shm_open) mapped into this
// process, for the system shared-memory regions clients register and for
// the host devices' stand-in for CUDA IPC handles. Keys are validated here:
// "/name" with name made of [A-Za-z0-9_.-], at most 255 bytes — never a path.
//
// Thread-safety: immutable after Map; unmapped by the destructor.
#ifndef INFERD_CORE_DEVICE_POSIX_SHM_H_
#define INFERD_CORE_DEVICE_POSIX_SHM_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace inferd {

// True for a valid POSIX shared-memory key (see the file comment).
bool IsValidShmKey(absl::string_view key);

class PosixShmMapping {
 public:
  // Maps `byte_size` bytes at `offset` of the object `key`, read-write.
  // Errors name `field` (the request field the key came from):
  // INVALID_ARGUMENT for a bad key, a zero size, or a range past the
  // object's end; NOT_FOUND when no such object exists; PERMISSION_DENIED
  // when it cannot be opened read-write.
  static absl::StatusOr<std::unique_ptr<PosixShmMapping>> Map(absl::string_view key,
                                                              uint64_t offset,
                                                              uint64_t byte_size,
                                                              absl::string_view field);
  ~PosixShmMapping();
  PosixShmMapping(const PosixShmMapping&) = delete;
  PosixShmMapping& operator=(const PosixShmMapping&) = delete;

  // The first byte at the requested offset.
  uint8_t* data() const { return data_; }
  uint64_t byte_size() const { return byte_size_; }

 private:
  PosixShmMapping(void* map, uint64_t map_size, uint8_t* data, uint64_t byte_size)
      : map_(map), map_size_(map_size), data_(data), byte_size_(byte_size) {}

  void* const map_;
  const uint64_t map_size_;
  uint8_t* const data_;
  const uint64_t byte_size_;
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_POSIX_SHM_H_
