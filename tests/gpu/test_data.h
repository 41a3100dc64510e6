// Test inputs for every fixed-size dtype (random elements with the awkward
// values first) and a comparison that treats any two NaNs as equal.
#ifndef INFERD_TESTS_GPU_TEST_DATA_H_
#define INFERD_TESTS_GPU_TEST_DATA_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor/dtype.h"

namespace inferd::testing_gpu {

// The special values of `dtype` (zeros of both signs, extremes, NaN, ties
// for rounding...), as elements.
std::vector<uint8_t> SpecialElements(DataType dtype);

// Returns `n` elements of `dtype`. When `pair_with_specials` is 1 or 2 the
// first specials² elements enumerate every pair of special values (as the
// first resp. second operand); the rest are random (half of them small).
// BOOL elements are 0 or 1.
std::vector<uint8_t> TestElements(DataType dtype, size_t n, uint64_t seed,
                                  int pair_with_specials = 1);

// Returns "" when `expected` and `actual` hold the same `n` elements bit for
// bit (two NaNs of any payload count as equal), else the first mismatch.
std::string CompareElements(DataType dtype, const void* expected, const void* actual, size_t n);

// Scale factors worth testing: ties, saturating, tiny, NaN, infinities.
std::vector<double> ScaleFactors();

// DivideBy divisors that are safe for every dtype's host kernel.
std::vector<uint64_t> Divisors();

}  // namespace inferd::testing_gpu

#endif  // INFERD_TESTS_GPU_TEST_DATA_H_
