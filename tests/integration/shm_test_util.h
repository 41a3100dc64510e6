// PosixShm: a POSIX shared-memory object a test creates (as a client
// process would with shm_open + ftruncate + mmap) and removes.
#ifndef INFERD_TESTS_INTEGRATION_SHM_TEST_UTIL_H_
#define INFERD_TESTS_INTEGRATION_SHM_TEST_UTIL_H_

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "core/device/host_device.h"

namespace inferd::testing {

// Not thread-safe; unlinks and unmaps the object on destruction.
class PosixShm {
 public:
  PosixShm(const std::string& key, size_t size) : key_(key), size_(size) {
    ::shm_unlink(key.c_str());
    const int fd = ::shm_open(key.c_str(), O_CREAT | O_RDWR, 0600);
    if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(size)) == 0) {
      void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) data_ = static_cast<uint8_t*>(p);
    }
    if (fd >= 0) ::close(fd);
  }
  ~PosixShm() {
    if (data_ != nullptr) ::munmap(data_, size_);
    ::shm_unlink(key_.c_str());
  }
  bool ok() const { return data_ != nullptr; }
  uint8_t* data() { return data_; }
  const std::string& key() const { return key_; }
  template <typename T>
  void Write(size_t offset, const T* values, size_t count) {
    std::memcpy(data_ + offset, values, count * sizeof(T));
  }
  // The host devices' stand-in for a cudaIpcMemHandle_t naming this object.
  std::string HostIpcHandle() const {
    std::string h = std::string(kHostIpcHandlePrefix) + key_;
    h.resize(Device::kIpcHandleBytes, '\0');
    return h;
  }

 private:
  std::string key_;
  size_t size_;
  uint8_t* data_ = nullptr;
};

}  // namespace inferd::testing

#endif  // INFERD_TESTS_INTEGRATION_SHM_TEST_UTIL_H_
