// BYTES tensors, as the KServe v2 protocol lays them out on the wire and as
// inferd keeps them in memory: element after element, each a 4-byte
// little-endian length followed by that many bytes. This is the one place
// that layout is checked, whole or as the bytes arrive in chunks.
#ifndef INFERD_CORE_TENSOR_BYTES_FRAMING_H_
#define INFERD_CORE_TENSOR_BYTES_FRAMING_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace inferd {

// Checks BYTES data fed in order, in pieces of any size. Thread-compatible.
class BytesFramingChecker {
 public:
  // For a tensor of `total_bytes` that must hold `elements` elements.
  BytesFramingChecker(uint64_t total_bytes, uint64_t elements)
      : total_(total_bytes), elements_(elements) {}

  // Consumes the next bytes. INVALID_ARGUMENT (the message names the
  // element) once they cannot be the layout: an element whose length
  // passes the end of the tensor, more elements than the shape holds, or
  // more bytes than the tensor has. After an error the checker stays failed.
  absl::Status Feed(absl::Span<const uint8_t> data);

  // OK when exactly total_bytes were fed and they hold exactly `elements`
  // elements; INVALID_ARGUMENT otherwise.
  absl::Status Finish() const;

  uint64_t consumed() const { return consumed_; }
  // True once total_bytes were fed (whether or not they are valid).
  bool complete() const { return consumed_ == total_; }

 private:
  uint64_t total_;
  uint64_t elements_;
  uint64_t consumed_ = 0;
  uint64_t count_ = 0;             // element headers read
  uint64_t payload_left_ = 0;      // bytes of the current element still to come
  uint8_t header_[4] = {0, 0, 0, 0};
  int header_have_ = 0;            // bytes of the next header read so far
  absl::Status error_;
};

// Checks a whole buffer: OK when `data` holds exactly `elements` elements.
absl::Status CheckBytesFraming(absl::Span<const uint8_t> data, uint64_t elements);

}  // namespace inferd

#endif  // INFERD_CORE_TENSOR_BYTES_FRAMING_H_
