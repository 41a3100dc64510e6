// The launchers cuda_kernels.cu exports to cuda_kernels.cc: plain functions
// with no Abseil types, so nvcc compiles only kernels. Each enqueues one
// grid-stride kernel over `n` elements on `stream` (of the current device)
// and returns cudaLaunchKernel's result; cudaErrorInvalidValue for a dtype
// the operation does not support. Thread-safe.
#ifndef INFERD_CORE_DEVICE_CUDA_CUDA_KERNEL_LAUNCH_H_
#define INFERD_CORE_DEVICE_CUDA_CUDA_KERNEL_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "core/device/cuda/elementwise_ops.h"
#include "core/tensor/dtype.h"

namespace inferd::cuda_launch {

cudaError_t Add(DataType dtype, const void* a, const void* b, void* out, size_t n,
                cudaStream_t stream);
cudaError_t Scale(DataType dtype, const void* in, double factor, void* out, size_t n,
                  cudaStream_t stream);
cudaError_t Reduce(DataType dtype, elementwise::ReduceKind op, const void* in, void* inout,
                   size_t n, cudaStream_t stream);
// Not for BOOL.
cudaError_t DivideBy(DataType dtype, void* inout, uint64_t divisor, size_t n,
                     cudaStream_t stream);

}  // namespace inferd::cuda_launch

#endif  // INFERD_CORE_DEVICE_CUDA_CUDA_KERNEL_LAUNCH_H_
