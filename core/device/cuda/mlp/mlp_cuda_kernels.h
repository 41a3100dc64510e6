// Elementwise kernels of the mlp GPU path that cuBLASLt epilogues lack.
#ifndef INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_KERNELS_H_
#define INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_KERNELS_H_

#include <cuda_runtime.h>

#include <cstdint>

namespace inferd::mlp_cuda {

// Enqueues data[i] = 0.5 * x * (1 + erf(x / sqrt(2))) (the exact GELU of
// torch.nn.GELU()) over `n` elements of `dtype` (INFERD_MLP_FP32/FP16/BF16),
// computed in float. Returns the launch error.
cudaError_t LaunchGeluErf(int32_t dtype, void* data, int64_t n, cudaStream_t stream);

}  // namespace inferd::mlp_cuda

#endif  // INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_KERNELS_H_
