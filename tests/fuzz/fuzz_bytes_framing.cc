// BYTES framing: the whole-buffer check and the chunked checker must agree
// on every input, however the bytes are split. Input: element count byte,
// chunk size byte, then the tensor's bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/tensor/bytes_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint64_t elements = data[0];
  const size_t chunk = data[1] == 0 ? 1 : data[1];
  data += 2;
  size -= 2;
  const bool whole = inferd::CheckBytesFraming(absl::MakeConstSpan(data, size), elements).ok();
  inferd::BytesFramingChecker checker(size, elements);
  bool fed = true;
  for (size_t at = 0; at < size; at += chunk) {
    const size_t n = size - at < chunk ? size - at : chunk;
    fed = checker.Feed(absl::MakeConstSpan(data + at, n)).ok() && fed;
  }
  const bool chunked = fed && checker.Finish().ok();
  // Valid data is consumed whole; the two checks agree on every input.
  if (whole != chunked || (chunked && !checker.complete())) abort();
  return 0;
}
