#include "tests/gpu/test_data.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"

namespace inferd::testing_gpu {
namespace {

template <typename T>
void Append(std::vector<uint8_t>& out, T v) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}

template <typename T>
void AppendIntSpecials(std::vector<uint8_t>& out) {
  using L = std::numeric_limits<T>;
  for (T v : {T{0}, T{1}, static_cast<T>(-1), T{2}, L::max(), L::lowest(),
              static_cast<T>(L::max() - 1), static_cast<T>(L::lowest() + 1), static_cast<T>(100),
              static_cast<T>(-100)}) {
    Append(out, v);
  }
}

std::vector<float> FloatSpecials() {
  const float inf = std::numeric_limits<float>::infinity();
  return {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 2.5f, -2.5f, 3.5f, inf, -inf,
          std::numeric_limits<float>::quiet_NaN(), 65504.0f, 65520.0f, 6.1e-5f, 6.0e-8f,
          std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min()};
}

bool IsNan(DataType dtype, const uint8_t* p) {
  switch (dtype) {
    case DataType::kFp16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return std::isnan(HalfToFloat(h));
    }
    case DataType::kBf16: {
      uint16_t b;
      std::memcpy(&b, p, 2);
      return std::isnan(Bf16ToFloat(b));
    }
    case DataType::kFp32: {
      float f;
      std::memcpy(&f, p, 4);
      return std::isnan(f);
    }
    case DataType::kFp64: {
      double d;
      std::memcpy(&d, p, 8);
      return std::isnan(d);
    }
    default:
      return false;
  }
}

}  // namespace

std::vector<uint8_t> SpecialElements(DataType dtype) {
  std::vector<uint8_t> out;
  switch (dtype) {
    case DataType::kBool: Append<uint8_t>(out, 0); Append<uint8_t>(out, 1); break;
    case DataType::kUint8: AppendIntSpecials<uint8_t>(out); break;
    case DataType::kUint16: AppendIntSpecials<uint16_t>(out); break;
    case DataType::kUint32: AppendIntSpecials<uint32_t>(out); break;
    case DataType::kUint64: AppendIntSpecials<uint64_t>(out); break;
    case DataType::kInt8: AppendIntSpecials<int8_t>(out); break;
    case DataType::kInt16: AppendIntSpecials<int16_t>(out); break;
    case DataType::kInt32: AppendIntSpecials<int32_t>(out); break;
    case DataType::kInt64: AppendIntSpecials<int64_t>(out); break;
    case DataType::kFp16:
      for (float f : FloatSpecials()) Append<uint16_t>(out, FloatToHalf(f));
      Append<uint16_t>(out, 0x0001);  // smallest subnormal
      Append<uint16_t>(out, 0x7bff);  // largest finite
      break;
    case DataType::kBf16:
      for (float f : FloatSpecials()) Append<uint16_t>(out, FloatToBf16(f));
      Append<uint16_t>(out, 0x0001);
      break;
    case DataType::kFp32:
      for (float f : FloatSpecials()) Append<float>(out, f);
      break;
    case DataType::kFp64:
      for (float f : FloatSpecials()) Append<double>(out, f);
      Append<double>(out, 1e300);
      Append<double>(out, 9007199254740993.0);
      break;
    default:
      break;
  }
  return out;
}

std::vector<uint8_t> TestElements(DataType dtype, size_t n, uint64_t seed,
                                  int pair_with_specials) {
  const size_t size = DataTypeSize(dtype);
  std::vector<uint8_t> out(n * size);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> small(-300.0, 300.0);
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = out.data() + i * size;
    const uint64_t bits = rng();
    const bool use_small = (rng() & 1) != 0;
    const double v = small(rng);
    switch (dtype) {
      case DataType::kBool: p[0] = bits & 1; break;
      case DataType::kFp16: {
        const uint16_t h = use_small ? FloatToHalf(static_cast<float>(v)) : static_cast<uint16_t>(bits);
        std::memcpy(p, &h, 2);
        break;
      }
      case DataType::kBf16: {
        const uint16_t b = use_small ? FloatToBf16(static_cast<float>(v)) : static_cast<uint16_t>(bits);
        std::memcpy(p, &b, 2);
        break;
      }
      case DataType::kFp32: {
        const float f = static_cast<float>(v * 37.0);
        if (use_small) std::memcpy(p, &f, 4); else std::memcpy(p, &bits, 4);
        break;
      }
      case DataType::kFp64: {
        const double d = v * 1e4;
        if (use_small) std::memcpy(p, &d, 8); else std::memcpy(p, &bits, 8);
        break;
      }
      default: {
        // Integers: full-range bits, or a small signed value.
        const int64_t s = static_cast<int64_t>(v);
        if (use_small) std::memcpy(p, &s, size); else std::memcpy(p, &bits, size);
        break;
      }
    }
  }
  if (pair_with_specials == 1 || pair_with_specials == 2) {
    const std::vector<uint8_t> specials = SpecialElements(dtype);
    const size_t k = specials.size() / size;
    for (size_t i = 0; i < k * k && i < n; ++i) {
      const size_t which = pair_with_specials == 1 ? i / k : i % k;
      std::memcpy(out.data() + i * size, specials.data() + which * size, size);
    }
  }
  return out;
}

std::string CompareElements(DataType dtype, const void* expected, const void* actual, size_t n) {
  const size_t size = DataTypeSize(dtype);
  const auto* e = static_cast<const uint8_t*>(expected);
  const auto* a = static_cast<const uint8_t*>(actual);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* x = e + i * size;
    const uint8_t* y = a + i * size;
    if (std::memcmp(x, y, size) == 0) continue;
    if (IsNan(dtype, x) && IsNan(dtype, y)) continue;
    uint64_t xb = 0, yb = 0;
    std::memcpy(&xb, x, size);
    std::memcpy(&yb, y, size);
    return absl::StrCat(DataTypeName(dtype), " element ", i, ": expected bits 0x",
                        absl::Hex(xb), ", got 0x", absl::Hex(yb));
  }
  return "";
}

std::vector<double> ScaleFactors() {
  return {0.5, 2.5, -1.75, 3.0, 1e10, -1e10, 1e-3, 0.0, -0.0,
          std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
          1.0000001};
}

std::vector<uint64_t> Divisors() { return {1, 2, 3, 7, 1000}; }

}  // namespace inferd::testing_gpu
