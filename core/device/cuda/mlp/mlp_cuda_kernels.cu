#include "core/device/cuda/mlp/mlp_cuda_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/device/cuda/mlp/mlp_cuda_api.h"

namespace inferd::mlp_cuda {
namespace {

__device__ __forceinline__ float Load(const float* p) { return *p; }
__device__ __forceinline__ float Load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float Load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void Store(float* p, float v) { *p = v; }
__device__ __forceinline__ void Store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void Store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

template <typename T>
__global__ void GeluErfKernel(T* data, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float x = Load(data + i);
    Store(data + i, 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)));
  }
}

template <typename T>
cudaError_t Launch(void* data, int64_t n, cudaStream_t stream) {
  constexpr int kThreads = 256;
  int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 4096) blocks = 4096;
  if (blocks < 1) blocks = 1;
  GeluErfKernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(static_cast<T*>(data),
                                                                            n);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchGeluErf(int32_t dtype, void* data, int64_t n, cudaStream_t stream) {
  switch (dtype) {
    case INFERD_MLP_FP32:
      return Launch<float>(data, n, stream);
    case INFERD_MLP_FP16:
      return Launch<__half>(data, n, stream);
    case INFERD_MLP_BF16:
      return Launch<__nv_bfloat16>(data, n, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace inferd::mlp_cuda
