// Kernels of the mlp GPU path beside cuBLASLt: the exact GELU its epilogues
// lack, and a GEMV for batches of 1-4 where tiled GEMMs leave SMs idle.
#ifndef INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_KERNELS_H_
#define INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_KERNELS_H_

#include <cuda_runtime.h>

#include <cstdint>

namespace inferd::mlp_cuda {

// Enqueues data[i] = 0.5 * x * (1 + erf(x / sqrt(2))) (the exact GELU of
// torch.nn.GELU()) over `n` elements of `dtype` (INFERD_MLP_FP32/FP16/BF16),
// computed in float. Returns the launch error.
cudaError_t LaunchGeluErf(int32_t dtype, void* data, int64_t n, cudaStream_t stream);

// Batches up to this size may take the GEMV path below.
constexpr int64_t kGemvMaxBatch = 4;

// Whether LaunchGemv serves a layer: batch in [1, kGemvMaxBatch], rows of
// `in` elements a multiple of 16 bytes, and `w` and `x` 16-byte aligned.
bool GemvApplies(int32_t dtype, int64_t batch, int64_t in, const void* w, const void* x);

// Enqueues y[b][n] = act(sum_k w[n][k] * x[b][k] + bias[n]) for b < batch,
// n < out (w is [out][in], bias may be null, act an INFERD_MLP_ACT_*),
// accumulating in fp32 — one dense layer at a small batch, bound by the
// weight reads. Returns the launch error.
cudaError_t LaunchGemv(int32_t dtype, const void* w, const void* bias, const void* x, void* y,
                       int64_t batch, int64_t in, int64_t out, int32_t activation,
                       cudaStream_t stream);

}  // namespace inferd::mlp_cuda

#endif  // INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_KERNELS_H_
