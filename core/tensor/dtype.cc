#include "core/tensor/dtype.h"

#include <cmath>

namespace inferd {
namespace {
struct NameEntry {
  DataType type;
  absl::string_view name;
};
constexpr NameEntry kNames[] = {
    {DataType::kBool, "BOOL"},     {DataType::kUint8, "UINT8"},
    {DataType::kUint16, "UINT16"}, {DataType::kUint32, "UINT32"},
    {DataType::kUint64, "UINT64"}, {DataType::kInt8, "INT8"},
    {DataType::kInt16, "INT16"},   {DataType::kInt32, "INT32"},
    {DataType::kInt64, "INT64"},   {DataType::kFp16, "FP16"},
    {DataType::kBf16, "BF16"},     {DataType::kFp32, "FP32"},
    {DataType::kFp64, "FP64"},     {DataType::kBytes, "BYTES"},
};
}  // namespace

absl::string_view DataTypeName(DataType t) {
  for (const auto& e : kNames) {
    if (e.type == t) return e.name;
  }
  return "INVALID";
}

std::optional<DataType> ParseDataType(absl::string_view name) {
  for (const auto& e : kNames) {
    if (e.name == name) return e.type;
  }
  return std::nullopt;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    f = mant ? NAN : INFINITY;
  } else {
    f = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  }
  return sign ? -f : f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (abs < 0x38800000u) {  // subnormal or zero in half
    // value * 2^24 rounded to nearest even gives the mantissa.
    float a;
    std::memcpy(&a, &abs, sizeof(a));
    float scaled = a * 16777216.0f;  // 2^24
    uint32_t m = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | m);
  }
  // Normal: rebias exponent and round mantissa to 10 bits, nearest even.
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  uint32_t h = ((rounded >> 13) - ((127u - 15u) << 10));
  return static_cast<uint16_t>(sign | h);
}

}  // namespace inferd
