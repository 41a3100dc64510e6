// DispatchNumeric: the one switch from a fixed-size DataType to the C++ type
// of its elements, for code written once per element type (the host
// kernels, core/device/host_kernels.cc, and the CUDA kernels,
// core/device/cuda/cuda_kernels.cu, through elementwise_ops.h). Header-only
// and free of Abseil types beyond dtype.h, so nvcc compiles it too.
// Stateless; thread-safe.
#ifndef INFERD_CORE_TENSOR_DTYPE_DISPATCH_H_
#define INFERD_CORE_TENSOR_DTYPE_DISPATCH_H_

#include <cstdint>

#include "core/tensor/dtype.h"

namespace inferd {

// Element storage of FP16 and BF16 tensors: the 16 bits, no arithmetic
// (the kernels convert through float).
struct Fp16Bits {
  uint16_t bits;
};
struct Bf16Bits {
  uint16_t bits;
};

// Calls fn(T{}) with the element type T of `dtype` — bool, uint8_t ..
// uint64_t, int8_t .. int64_t, Fp16Bits, Bf16Bits, float, double — and
// returns true; returns false (without calling fn) for BYTES and kInvalid.
template <typename Fn>
bool DispatchNumeric(DataType dtype, Fn&& fn) {
  switch (dtype) {
    case DataType::kBool: fn(bool{}); return true;
    case DataType::kUint8: fn(uint8_t{}); return true;
    case DataType::kUint16: fn(uint16_t{}); return true;
    case DataType::kUint32: fn(uint32_t{}); return true;
    case DataType::kUint64: fn(uint64_t{}); return true;
    case DataType::kInt8: fn(int8_t{}); return true;
    case DataType::kInt16: fn(int16_t{}); return true;
    case DataType::kInt32: fn(int32_t{}); return true;
    case DataType::kInt64: fn(int64_t{}); return true;
    case DataType::kFp16: fn(Fp16Bits{}); return true;
    case DataType::kBf16: fn(Bf16Bits{}); return true;
    case DataType::kFp32: fn(float{}); return true;
    case DataType::kFp64: fn(double{}); return true;
    default: return false;
  }
}

}  // namespace inferd

#endif  // INFERD_CORE_TENSOR_DTYPE_DISPATCH_H_
