#include "core/device/cuda/mlp/mlp_cuda_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

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

// Small-batch dense layer: one warp per output feature streams that
// feature's weight row (contiguous: W is [out][in]) in 16-byte loads, dots
// it with each of the B (<= kGemvMaxBatch) input rows in fp32, reduces
// across the warp, adds the bias and applies the activation. Weight reads
// dominate at batch 1-4, and this reads each weight once, coalesced, from
// every SM at once: a GEMM tiled for large batches leaves most SMs idle
// there (4096 outputs / 128-wide tiles = 32 CTAs).
__device__ __forceinline__ float Activate(float v, int32_t activation) {
  switch (activation) {
    case INFERD_MLP_ACT_RELU:
      return v > 0.0f ? v : 0.0f;
    case INFERD_MLP_ACT_GELU:
      return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case INFERD_MLP_ACT_GELU_TANH: {
      const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
      return 0.5f * v * (1.0f + tanhf(u));
    }
    default:
      return v;
  }
}

template <typename T, int B>
__global__ void GemvKernel(const T* __restrict__ w, const T* __restrict__ bias,
                           const T* __restrict__ x, T* __restrict__ y, int64_t in, int64_t out,
                           int32_t activation) {
  constexpr int kVec = 16 / sizeof(T);
  const int lane = threadIdx.x & 31;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x >> 5);
  if (n >= out) return;
  const T* row = w + n * in;
  float acc[B];
#pragma unroll
  for (int b = 0; b < B; ++b) acc[b] = 0.0f;
  // Unrolled so that each lane keeps several weight loads in flight.
#pragma unroll 4
  for (int64_t k = static_cast<int64_t>(lane) * kVec; k < in; k += 32 * kVec) {
    const uint4 wv = __ldg(reinterpret_cast<const uint4*>(row + k));
    const T* wt = reinterpret_cast<const T*>(&wv);
#pragma unroll
    for (int b = 0; b < B; ++b) {
      const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + b * in + k));
      const T* xt = reinterpret_cast<const T*>(&xv);
#pragma unroll
      for (int j = 0; j < kVec; ++j) acc[b] += Load(wt + j) * Load(xt + j);
    }
  }
#pragma unroll
  for (int b = 0; b < B; ++b) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc[b] += __shfl_down_sync(0xffffffffu, acc[b], off);
  }
  if (lane == 0) {
    const float bv = bias != nullptr ? Load(bias + n) : 0.0f;
#pragma unroll
    for (int b = 0; b < B; ++b) Store(y + b * out + n, Activate(acc[b] + bv, activation));
  }
}

template <typename T, int B>
cudaError_t LaunchGemvB(const void* w, const void* bias, const void* x, void* y, int64_t in,
                        int64_t out, int32_t activation, cudaStream_t stream) {
  constexpr int kThreads = 256;
  constexpr int kWarps = kThreads / 32;
  const int64_t blocks = (out + kWarps - 1) / kWarps;
  GemvKernel<T, B><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const T*>(w), static_cast<const T*>(bias), static_cast<const T*>(x),
      static_cast<T*>(y), in, out, activation);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchGemvT(const void* w, const void* bias, const void* x, void* y, int64_t batch,
                        int64_t in, int64_t out, int32_t activation, cudaStream_t stream) {
  switch (batch) {
    case 1: return LaunchGemvB<T, 1>(w, bias, x, y, in, out, activation, stream);
    case 2: return LaunchGemvB<T, 2>(w, bias, x, y, in, out, activation, stream);
    case 3: return LaunchGemvB<T, 3>(w, bias, x, y, in, out, activation, stream);
    case 4: return LaunchGemvB<T, 4>(w, bias, x, y, in, out, activation, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

bool GemvApplies(int32_t dtype, int64_t batch, int64_t in, const void* w, const void* x) {
  const int64_t elem = dtype == INFERD_MLP_FP32 ? 4 : 2;
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return batch >= 1 && batch <= kGemvMaxBatch && (in * elem) % 16 == 0 && aligned(w) &&
         aligned(x) && (dtype == INFERD_MLP_FP32 || dtype == INFERD_MLP_FP16 ||
                        dtype == INFERD_MLP_BF16);
}

cudaError_t LaunchGemv(int32_t dtype, const void* w, const void* bias, const void* x, void* y,
                       int64_t batch, int64_t in, int64_t out, int32_t activation,
                       cudaStream_t stream) {
  switch (dtype) {
    case INFERD_MLP_FP32:
      return LaunchGemvT<float>(w, bias, x, y, batch, in, out, activation, stream);
    case INFERD_MLP_FP16:
      return LaunchGemvT<__half>(w, bias, x, y, batch, in, out, activation, stream);
    case INFERD_MLP_BF16:
      return LaunchGemvT<__nv_bfloat16>(w, bias, x, y, batch, in, out, activation, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

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
