// Reference values for the collective tests (unit and GPU): read and write
// one element of any NCCL dtype as a double, round a value the way the
// device stores it, each rank's inputs, and the expected reductions.
#ifndef INFERD_TESTS_CORE_COMM_ELEMENT_ACCESS_H_
#define INFERD_TESTS_CORE_COMM_ELEMENT_ACCESS_H_

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/device/communicator.h"
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

inline bool IsFloat(DataType t) {
  return t == DataType::kFp16 || t == DataType::kBf16 || t == DataType::kFp32 ||
         t == DataType::kFp64;
}

// Rank r's input value at element i: small and exact in every type, so that
// sums do not depend on order.
inline double Input(DataType t, int r, size_t i) {
  const int k = static_cast<int>((i * 7 + static_cast<size_t>(r) * 13 + 3) % 17);
  if (IsFloat(t)) return (k - 8) * 0.25;
  const bool is_signed = t == DataType::kInt8 || t == DataType::kInt32 || t == DataType::kInt64;
  return is_signed ? k % 9 - 4 : k % 9;
}

// The reduction of element i of the ranks' inputs, in rank order, rounded
// after each step as the kernels do.
inline double Reduced(DataType t, CollectiveReduceOp op, size_t i, int ranks) {
  double acc = Input(t, 0, i);
  for (int r = 1; r < ranks; ++r) {
    const double x = Input(t, r, i);
    switch (op) {
      case CollectiveReduceOp::kSum:
      case CollectiveReduceOp::kAvg:
        acc = Round(t, acc + x);
        break;
      case CollectiveReduceOp::kProd:
        acc = Round(t, acc * x);
        break;
      case CollectiveReduceOp::kMin:
        acc = x < acc ? x : acc;
        break;
      case CollectiveReduceOp::kMax:
        acc = acc < x ? x : acc;
        break;
    }
  }
  if (op == CollectiveReduceOp::kAvg) {
    acc = IsFloat(t) ? Round(t, acc / ranks) : std::trunc(acc / ranks);
  }
  return acc;
}

// The dtypes NCCL reduces, and every reduction.
inline constexpr DataType kNcclTypes[] = {
    DataType::kInt8,   DataType::kUint8, DataType::kInt32, DataType::kUint32, DataType::kInt64,
    DataType::kUint64, DataType::kFp16,  DataType::kFp32,  DataType::kFp64,   DataType::kBf16};
inline constexpr CollectiveReduceOp kOps[] = {CollectiveReduceOp::kSum, CollectiveReduceOp::kProd,
                                              CollectiveReduceOp::kMin, CollectiveReduceOp::kMax,
                                              CollectiveReduceOp::kAvg};

}  // namespace inferd::testing_comm

#endif  // INFERD_TESTS_CORE_COMM_ELEMENT_ACCESS_H_
