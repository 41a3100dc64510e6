#include "core/device/posix_shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/util/checked_math.h"

namespace inferd {
namespace {

std::string Shown(absl::string_view s) {
  return absl::CHexEscape(s.substr(0, std::min<size_t>(s.size(), 64)));
}

}  // namespace

bool IsValidShmKey(absl::string_view key) {
  if (key.size() < 2 || key.size() > 255 || key.front() != '/') return false;
  if (key == "/." || key == "/..") return false;
  for (char c : key.substr(1)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<PosixShmMapping>> PosixShmMapping::Map(absl::string_view key,
                                                                       uint64_t offset,
                                                                       uint64_t byte_size,
                                                                       absl::string_view field) {
  if (!IsValidShmKey(key)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": '", Shown(key),
        "' is not a shared-memory key (\"/name\", name of [A-Za-z0-9_.-], no paths)"));
  }
  if (byte_size == 0) return absl::InvalidArgumentError("byte_size: must be > 0");
  uint64_t end = 0;
  if (!CheckedAdd(offset, byte_size, &end)) {
    return absl::InvalidArgumentError("offset + byte_size: overflows");
  }
  const std::string name(key);
  const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat(field, ": no shared-memory object '", name, "' exists"));
    }
    return absl::PermissionDeniedError(
        absl::StrCat(field, ": shared-memory object '", name, "' cannot be opened read-write"));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < 0 || end > static_cast<uint64_t>(st.st_size)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(
        "offset + byte_size: ", offset, " + ", byte_size, " bytes exceed the ",
        static_cast<long long>(st.st_size), " bytes of shared-memory object '", name, "'"));
  }
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t aligned = offset / page * page;
  const uint64_t map_size = end - aligned;
  void* map = ::mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                     static_cast<off_t>(aligned));
  ::close(fd);
  if (map == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat(field, ": shared-memory object '", name, "' cannot be mapped"));
  }
  return std::unique_ptr<PosixShmMapping>(new PosixShmMapping(
      map, map_size, static_cast<uint8_t*>(map) + (offset - aligned), byte_size));
}

PosixShmMapping::~PosixShmMapping() { ::munmap(map_, map_size_); }

}  // namespace inferd
