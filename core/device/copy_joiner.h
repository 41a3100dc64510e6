// CopyJoiner: turns copies that continue one another into one stream copy.
// Each copy costs microseconds of driver time on a GPU whatever its size,
// so tensors laid out alike on both sides (256-byte aligned, as
// ExecuteOnDevice lays out device buffers and staging blocks) go over in
// one call instead of one call per tensor.
#ifndef INFERD_CORE_DEVICE_COPY_JOINER_H_
#define INFERD_CORE_DEVICE_COPY_JOINER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "core/device/device.h"

namespace inferd {

// The alignment a joined copy may skip between two tensors.
inline constexpr uint64_t kCopyJoinAlign = 256;
inline uint64_t CopyJoinAlignUp(uint64_t v) {
  return (v + kCopyJoinAlign - 1) / kCopyJoinAlign * kCopyJoinAlign;
}

// Not thread-safe; one per run of copies of one kind on one stream. Add
// joins a copy whose source and destination both start where the previous
// ones ended (rounded up to kCopyJoinAlign), else enqueues what it holds
// and starts over; Flush enqueues the rest. The bytes between joined
// tensors are copied too: both ranges must be one allocation each.
class CopyJoiner {
 public:
  using CopyFn = absl::Status (Stream::*)(void*, const void*, size_t);
  CopyJoiner(Stream& stream, CopyFn copy) : stream_(stream), copy_(copy) {}

  absl::Status Add(void* dst, const void* src, uint64_t bytes) {
    if (bytes == 0) return absl::OkStatus();
    auto* d = static_cast<uint8_t*>(dst);
    const auto* s = static_cast<const uint8_t*>(src);
    if (bytes_ > 0 && d == dst_ + CopyJoinAlignUp(bytes_) && s == src_ + CopyJoinAlignUp(bytes_)) {
      bytes_ = static_cast<uint64_t>(d - dst_) + bytes;
      return absl::OkStatus();
    }
    absl::Status st = Flush();
    dst_ = d;
    src_ = s;
    bytes_ = bytes;
    return st;
  }

  absl::Status Flush() {
    if (bytes_ == 0) return absl::OkStatus();
    const uint64_t n = bytes_;
    bytes_ = 0;
    return (stream_.*copy_)(dst_, src_, n);
  }

 private:
  Stream& stream_;
  const CopyFn copy_;
  uint8_t* dst_ = nullptr;
  const uint8_t* src_ = nullptr;
  uint64_t bytes_ = 0;  // from dst_/src_ to the end of the last tensor joined
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_COPY_JOINER_H_
