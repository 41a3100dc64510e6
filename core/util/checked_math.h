// Overflow-checked arithmetic for sizes that come from requests: shape
// products, byte sizes, offsets. Returns false on overflow or a negative dim.
#ifndef INFERD_CORE_UTIL_CHECKED_MATH_H_
#define INFERD_CORE_UTIL_CHECKED_MATH_H_

#include <cstdint>
#include <span>

namespace inferd {

inline bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool CheckedAdd(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

// Computes the element count of `shape`; false when a dim is negative or the
// product overflows.
inline bool ShapeElementCount(std::span<const int64_t> shape, uint64_t* out) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (!CheckedMul(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *out = n;
  return true;
}

}  // namespace inferd

#endif  // INFERD_CORE_UTIL_CHECKED_MATH_H_
