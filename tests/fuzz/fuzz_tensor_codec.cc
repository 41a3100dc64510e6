// The KServe tensor codec: typed InferTensorContents -> raw bytes and back.
// Input: one byte of datatype, one of element count, then an
// InferTensorContents message. Whatever decodes must encode back to the
// same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/tensor/dtype.h"
#include "server/tensor_codec.h"
#include "tests/fuzz/quiet_protobuf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const auto dtype = static_cast<inferd::DataType>(data[0] % 16);
  const uint64_t elements = data[1];
  inference::InferTensorContents contents;
  if (!contents.ParseFromArray(data + 2, static_cast<int>(size - 2))) return 0;
  std::string raw;
  if (!inferd::DecodeTypedContents(contents, dtype, elements, "inputs[0]", &raw).ok()) return 0;
  inference::InferTensorContents again;
  if (!inferd::EncodeTypedContents(dtype, raw, &again).ok()) return 0;
  std::string raw2;
  if (!inferd::DecodeTypedContents(again, dtype, elements, "inputs[0]", &raw2).ok()) abort();
  if (raw != raw2) abort();
  return 0;
}
