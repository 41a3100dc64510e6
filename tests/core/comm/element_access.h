// Element access for the collective tests (unit and GPU): read and write
// one element of any NCCL dtype as a double, and round a reference value the
// way the device stores it. Reference arithmetic lives in the tests.
#ifndef INFERD_TESTS_CORE_COMM_ELEMENT_ACCESS_H_
#define INFERD_TESTS_CORE_COMM_ELEMENT_ACCESS_H_

#include <cmath>
#include <cstdint>

#include "core/tensor/dtype.h"

namespace inferd::testing_comm {

inline double Load(DataType t, const uint8_t* p, size_t i) {
  switch (t) {
    case DataType::kInt8:
      return reinterpret_cast<const int8_t*>(p)[i];
    case DataType::kUint8:
      return p[i];
    case DataType::kInt32:
      return reinterpret_cast<const int32_t*>(p)[i];
    case DataType::kUint32:
      return reinterpret_cast<const uint32_t*>(p)[i];
    case DataType::kInt64:
      return static_cast<double>(reinterpret_cast<const int64_t*>(p)[i]);
    case DataType::kUint64:
      return static_cast<double>(reinterpret_cast<const uint64_t*>(p)[i]);
    case DataType::kFp16:
      return HalfToFloat(reinterpret_cast<const uint16_t*>(p)[i]);
    case DataType::kBf16:
      return Bf16ToFloat(reinterpret_cast<const uint16_t*>(p)[i]);
    case DataType::kFp32:
      return reinterpret_cast<const float*>(p)[i];
    case DataType::kFp64:
      return reinterpret_cast<const double*>(p)[i];
    default:
      return 0;
  }
}

inline void Store(DataType t, uint8_t* p, size_t i, double v) {
  const auto wrap = static_cast<int64_t>(v);
  switch (t) {
    case DataType::kInt8:
      reinterpret_cast<int8_t*>(p)[i] = static_cast<int8_t>(wrap);
      break;
    case DataType::kUint8:
      p[i] = static_cast<uint8_t>(wrap);
      break;
    case DataType::kInt32:
      reinterpret_cast<int32_t*>(p)[i] = static_cast<int32_t>(wrap);
      break;
    case DataType::kUint32:
      reinterpret_cast<uint32_t*>(p)[i] = static_cast<uint32_t>(wrap);
      break;
    case DataType::kInt64:
      reinterpret_cast<int64_t*>(p)[i] = wrap;
      break;
    case DataType::kUint64:
      reinterpret_cast<uint64_t*>(p)[i] = static_cast<uint64_t>(wrap);
      break;
    case DataType::kFp16:
      reinterpret_cast<uint16_t*>(p)[i] = FloatToHalf(static_cast<float>(v));
      break;
    case DataType::kBf16:
      reinterpret_cast<uint16_t*>(p)[i] = FloatToBf16(static_cast<float>(v));
      break;
    case DataType::kFp32:
      reinterpret_cast<float*>(p)[i] = static_cast<float>(v);
      break;
    case DataType::kFp64:
      reinterpret_cast<double*>(p)[i] = v;
      break;
    default:
      break;
  }
}

inline double Round(DataType t, double v) {
  uint8_t tmp[8] = {};
  Store(t, tmp, 0, v);
  return Load(t, tmp, 0);
}

}  // namespace inferd::testing_comm

#endif  // INFERD_TESTS_CORE_COMM_ELEMENT_ACCESS_H_
