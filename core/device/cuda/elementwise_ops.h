// Per-element semantics of the CUDA Kernels (Add, Scale, Reduce, DivideBy),
// written once for host and device so that the GPU produces bit for bit what
// core/device/host_kernels.cc produces: integer add/prod wrap, Scale computes
// in double (float for fp16/bf16) and rounds to nearest even, saturating
// integers (NaN -> 0), BOOL add is logical or, fp16/bf16 go through float
// with round-to-nearest-even conversions. Plain C++ when not compiled by
// nvcc, so tests check these functions against the host kernels on a CPU.
// Stateless; thread-safe.
#ifndef INFERD_CORE_DEVICE_CUDA_ELEMENTWISE_OPS_H_
#define INFERD_CORE_DEVICE_CUDA_ELEMENTWISE_OPS_H_

#include <math.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/tensor/dtype_dispatch.h"

#if defined(__CUDACC__)
#define INFERD_HD __host__ __device__
#else
#define INFERD_HD
#endif

namespace inferd::elementwise {

// Element storage of FP16 and BF16 tensors (the types DispatchNumeric
// passes).
using Half = ::inferd::Fp16Bits;
using BHalf = ::inferd::Bf16Bits;

// Mirrors Kernels::ReduceOp (kept separate so nvcc needs no Abseil).
enum class ReduceKind : int { kSum = 0, kProd = 1, kMin = 2, kMax = 3 };

template <typename T>
inline constexpr bool kIsHalfLike = std::is_same_v<T, Half> || std::is_same_v<T, BHalf>;
template <typename T>
inline constexpr bool kIsInteger = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// Scale's factor type: float for fp16/bf16, double otherwise.
template <typename T>
using ScaleFactor = std::conditional_t<kIsHalfLike<T>, float, double>;

INFERD_HD inline uint32_t FloatToBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
#endif
}

INFERD_HD inline float BitsToFloat(uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#else
  float f;
  std::memcpy(&f, &b, sizeof(f));
  return f;
#endif
}

// Same results as inferd::HalfToFloat (dtype.cc), NaN included.
INFERD_HD inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  float f;
  if (exp == 0) {
    f = static_cast<float>(mant) * 5.9604644775390625e-8f;  // mant * 2^-24, exact
  } else if (exp == 31) {
    f = BitsToFloat(mant ? 0x7fc00000u : 0x7f800000u);
  } else {
    f = BitsToFloat(((exp + (127u - 15u)) << 23) | (mant << 13));
  }
  return sign ? -f : f;
}

// Same results as inferd::FloatToHalf (dtype.cc): round to nearest even.
INFERD_HD inline uint16_t FloatToHalf(float f) {
  const uint32_t x = FloatToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs < 0x38800000u) {
    const float scaled = BitsToFloat(abs) * 16777216.0f;  // 2^24, exact
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(rintf(scaled)));
  }
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded >> 13) - ((127u - 15u) << 10)));
}

INFERD_HD inline float Bf16ToFloat(uint16_t b) { return BitsToFloat(static_cast<uint32_t>(b) << 16); }

// Same results as inferd::FloatToBf16 (dtype.h).
INFERD_HD inline uint16_t FloatToBf16(float f) {
  const uint32_t bits = FloatToBits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

INFERD_HD inline float ToFloat(Half v) { return HalfToFloat(v.bits); }
INFERD_HD inline float ToFloat(BHalf v) { return Bf16ToFloat(v.bits); }

template <typename T>
INFERD_HD T FromFloat(float f) {
  if constexpr (std::is_same_v<T, Half>) {
    return Half{FloatToHalf(f)};
  } else {
    return BHalf{FloatToBf16(f)};
  }
}

template <typename T>
INFERD_HD double ToDouble(T v) {
  if constexpr (kIsHalfLike<T>) {
    return ToFloat(v);
  } else {
    return static_cast<double>(v);
  }
}

// Lowest and highest values of an integer type (std::numeric_limits is not
// usable in device code without --expt-relaxed-constexpr).
template <typename T>
struct IntRange {
  static constexpr bool kSigned = static_cast<T>(-1) < static_cast<T>(0);
  static constexpr T kMax =
      kSigned ? static_cast<T>((static_cast<uint64_t>(1) << (sizeof(T) * 8 - 1)) - 1)
              : static_cast<T>(~static_cast<T>(0));
  static constexpr T kLowest = kSigned ? static_cast<T>(-kMax - 1) : static_cast<T>(0);
};

// Converts a double to T: round to nearest even and saturate for integers,
// NaN -> 0; float for fp16/bf16; `v != 0` for BOOL.
template <typename T>
INFERD_HD T FromDouble(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0;
  } else if constexpr (kIsHalfLike<T>) {
    return FromFloat<T>(static_cast<float>(v));
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    if (v != v) return T{0};
    const double r = rint(v);
    if (r <= static_cast<double>(IntRange<T>::kLowest)) return IntRange<T>::kLowest;
    if (r >= static_cast<double>(IntRange<T>::kMax)) return IntRange<T>::kMax;
    return static_cast<T>(r);
  }
}

// Unsigned type that integer T promotes to for wrapping arithmetic.
template <typename T>
using WrapType = std::conditional_t<(sizeof(T) <= 4), uint32_t, uint64_t>;

template <typename T>
INFERD_HD T AddOne(T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    return a || b;
  } else if constexpr (kIsHalfLike<T>) {
    return FromFloat<T>(ToFloat(a) + ToFloat(b));
  } else if constexpr (kIsInteger<T>) {
    return static_cast<T>(static_cast<WrapType<T>>(a) + static_cast<WrapType<T>>(b));
  } else {
    return static_cast<T>(a + b);
  }
}

template <typename T>
INFERD_HD T ScaleOne(T x, ScaleFactor<T> factor) {
  if constexpr (kIsHalfLike<T>) {
    return FromDouble<T>(ToFloat(x) * factor);
  } else {
    return FromDouble<T>(ToDouble(x) * factor);
  }
}

INFERD_HD inline bool IsSignalingNan(float f) {
  const uint32_t b = FloatToBits(f);
  return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0 && (b & 0x00400000u) == 0;
}

// fminf / fmaxf as glibc computes them for the host kernels: a signaling
// NaN operand gives NaN, a quiet NaN operand is ignored, and equal operands
// give `y`, so fmin(-0, +0) is +0 (CUDA's own fminf may differ on both).
INFERD_HD inline float HostFmin(float x, float y) {
  if (IsSignalingNan(x) || IsSignalingNan(y)) return x + y;
  if (x != x) return y;
  if (y != y) return x;
  return x < y ? x : y;
}
INFERD_HD inline float HostFmax(float x, float y) {
  if (IsSignalingNan(x) || IsSignalingNan(y)) return x + y;
  if (x != x) return y;
  if (y != y) return x;
  return x > y ? x : y;
}

template <typename T>
INFERD_HD T ReduceOne(ReduceKind op, T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    return (op == ReduceKind::kSum || op == ReduceKind::kMax) ? (a || b) : (a && b);
  } else if constexpr (kIsHalfLike<T>) {
    const float x = ToFloat(a), y = ToFloat(b);
    float r = 0;
    switch (op) {
      case ReduceKind::kSum: r = x + y; break;
      case ReduceKind::kProd: r = x * y; break;
      case ReduceKind::kMin: r = HostFmin(x, y); break;
      case ReduceKind::kMax: r = HostFmax(x, y); break;
    }
    return FromFloat<T>(r);
  } else {
    switch (op) {
      case ReduceKind::kSum:
        if constexpr (kIsInteger<T>) {
          return static_cast<T>(static_cast<WrapType<T>>(a) + static_cast<WrapType<T>>(b));
        } else {
          return static_cast<T>(a + b);
        }
      case ReduceKind::kProd:
        if constexpr (kIsInteger<T>) {
          return static_cast<T>(static_cast<WrapType<T>>(a) * static_cast<WrapType<T>>(b));
        } else {
          return static_cast<T>(a * b);
        }
      case ReduceKind::kMin: return (b < a) ? b : a;  // std::min
      case ReduceKind::kMax: return (a < b) ? b : a;  // std::max
    }
    return a;
  }
}

// Integer division truncates with the divisor converted to T first (as the
// host does); the caller rejects divisors that convert to 0. Not for BOOL.
template <typename T>
INFERD_HD T DivideOne(T x, uint64_t divisor) {
  if constexpr (kIsInteger<T>) {
    return static_cast<T>(x / static_cast<T>(divisor));
  } else {
    return FromDouble<T>(ToDouble(x) / static_cast<double>(divisor));
  }
}

}  // namespace inferd::elementwise

#endif  // INFERD_CORE_DEVICE_CUDA_ELEMENTWISE_OPS_H_
