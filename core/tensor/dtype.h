// DataType: the element types a tensor may have, named as the KServe v2
// protocol names them, with their sizes and host-side conversions for the
// half-precision formats.
#ifndef INFERD_CORE_TENSOR_DTYPE_H_
#define INFERD_CORE_TENSOR_DTYPE_H_

#include <cstdint>
#include <cstring>
#include <optional>
#include "absl/strings/string_view.h"

namespace inferd {

enum class DataType : uint8_t {
  kInvalid = 0,
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kBf16,
  kFp32,
  kFp64,
  kBytes,  // variable-length; each element is a 4-byte LE length + bytes
};

inline constexpr DataType kAllFixedDataTypes[] = {
    DataType::kBool,  DataType::kUint8, DataType::kUint16, DataType::kUint32,
    DataType::kUint64, DataType::kInt8, DataType::kInt16,  DataType::kInt32,
    DataType::kInt64, DataType::kFp16,  DataType::kBf16,   DataType::kFp32,
    DataType::kFp64};

// Returns the bytes per element, or 0 for kBytes and kInvalid.
constexpr size_t DataTypeSize(DataType t) {
  switch (t) {
    case DataType::kBool:
    case DataType::kUint8:
    case DataType::kInt8:
      return 1;
    case DataType::kUint16:
    case DataType::kInt16:
    case DataType::kFp16:
    case DataType::kBf16:
      return 2;
    case DataType::kUint32:
    case DataType::kInt32:
    case DataType::kFp32:
      return 4;
    case DataType::kUint64:
    case DataType::kInt64:
    case DataType::kFp64:
      return 8;
    case DataType::kBytes:
    case DataType::kInvalid:
      return 0;
  }
  return 0;
}

// Returns the protocol name ("FP32", ...); "INVALID" for kInvalid.
absl::string_view DataTypeName(DataType t);
// Parses a protocol name; nullopt when unknown.
std::optional<DataType> ParseDataType(absl::string_view name);

// IEEE half and bfloat16 <-> float on the host (round to nearest even).
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
inline float Bf16ToFloat(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}
inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

}  // namespace inferd

#endif  // INFERD_CORE_TENSOR_DTYPE_H_
